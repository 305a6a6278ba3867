"""Every trigger survives the triggerer's round trip: ``serialize()`` -> classpath + JSON kwargs -> a new instance.

The triggers are discovered by importing every module of ``mlops_provider.triggers``, so a new trigger is
covered as soon as it exists; it then needs sample arguments in ``SAMPLE_KWARGS`` (the test says so).
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil

import pytest
from airflow.triggers.base import BaseTrigger

import mlops_provider.triggers
from mlops_provider.triggers.registry import is_newer

# Sample arguments per trigger class name: one instance is built from each dict. Give every __init__ argument
# (defaults included) so the round trip shows that serialize() forgets none of them.
SAMPLE_KWARGS: dict[str, list[dict]] = {
    "ModelAliasTrigger": [
        {
            "model_name": "churn-classifier",
            "alias": "champion",
            "after_version": "3",
            "mlflow_conn_id": "mlflow_default",
            "poll_interval": 5.0,
        },
        {
            "model_name": "house-prices",
            "alias": "previous_champion",
            "after_version": None,
            "mlflow_conn_id": "mlflow_prod",
            "poll_interval": 30.0,
        },
    ],
}


def discover_triggers() -> dict[str, type[BaseTrigger]]:
    """Every ``BaseTrigger`` subclass defined (not only imported) in a module of ``mlops_provider.triggers``."""
    found: dict[str, type[BaseTrigger]] = {}
    package = mlops_provider.triggers
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        module = importlib.import_module(info.name)
        for _name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseTrigger) and obj.__module__ == module.__name__:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


TRIGGERS = discover_triggers()


def test_the_triggers_package_defines_triggers():
    assert "mlops_provider.triggers.registry.ModelAliasTrigger" in TRIGGERS


def test_every_sample_belongs_to_a_trigger():
    names = {cls.__name__ for cls in TRIGGERS.values()}
    stale = sorted(set(SAMPLE_KWARGS) - names)
    assert not stale, f"SAMPLE_KWARGS has entries for triggers that no longer exist: {stale}"


@pytest.mark.parametrize("classpath", sorted(TRIGGERS))
def test_trigger_serialize_round_trip(classpath):
    cls = TRIGGERS[classpath]
    samples = SAMPLE_KWARGS.get(cls.__name__)
    if not samples:
        pytest.fail(
            f"{classpath} has no sample arguments: add an entry {cls.__name__!r}: [{{...}}] to SAMPLE_KWARGS in "
            f"{__file__} with a value for every argument of its __init__.",
            pytrace=False,
        )
    parameters = [
        p.name
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    for sample in samples:
        trigger = cls(**sample)
        serialized_path, kwargs = trigger.serialize()

        # The triggerer imports the classpath: it must name this very class.
        module_name, _, attribute = serialized_path.rpartition(".")
        assert getattr(importlib.import_module(module_name), attribute) is cls, serialized_path
        assert serialized_path == classpath

        # Every argument comes back with the value it was given; nothing else is added.
        assert kwargs == sample, f"{classpath}.serialize() returned {kwargs}, built from {sample}"
        assert sorted(kwargs) == sorted(parameters), f"{classpath}.serialize() misses or adds arguments"

        # The kwargs are stored in the metadata DB as JSON: they survive a JSON round trip unchanged.
        assert json.loads(json.dumps(kwargs)) == kwargs

        rebuilt_path, rebuilt_kwargs = cls(**json.loads(json.dumps(kwargs))).serialize()
        assert (rebuilt_path, rebuilt_kwargs) == (serialized_path, kwargs)


# -- is_newer -----------------------------------------------------------------------------------------------

IS_NEWER_CASES = [
    ("no-version-yet", None, None, False),
    ("no-version-after-3", None, "3", False),
    ("any-version-when-no-baseline", "1", None, True),
    ("newer", "4", "3", True),
    ("same", "3", "3", False),
    ("older", "2", "3", False),
    ("numeric-not-lexicographic", "10", "9", True),
    ("numeric-not-lexicographic-older", "9", "10", False),
]


@pytest.mark.parametrize(("version", "after", "expected"), [pytest.param(*c[1:], id=c[0]) for c in IS_NEWER_CASES])
def test_is_newer(version, after, expected):
    assert is_newer(version, after) is expected
