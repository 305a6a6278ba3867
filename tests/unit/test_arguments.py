"""Rendered operator arguments -> typed values: one table per conversion, and names that look like markers.

Names containing ``null``, ``None``, ``true`` or a comma are data. They must reach the operator unchanged on
every path a value takes: a literal, an XComArg's value, a param rendered natively, a param rendered to text
with ``| tojson`` or without it.
"""

from __future__ import annotations

import pendulum
import pytest
from airflow.sdk import DAG, Param

from mlops_provider import arguments
from mlops_provider.core.errors import ConfigurationError

TRICKY_NAMES = ["view:nullable_rate", "view:None_seen", "true_count", "amount, in EUR", "null"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ([], []),
        (("a", "b"), ["a", "b"]),
        (["a", 7], ["a", "7"]),
        ("a", ["a"]),
        ("a, b ,c", ["a", "b", "c"]),
        ('["a", "b"]', ["a", "b"]),
        ("['a', 'b']", ["a", "b"]),
        ('["view:nullable_rate"]', ["view:nullable_rate"]),
        ("['view:None_seen']", ["view:None_seen"]),
        ('["amount, in EUR"]', ["amount, in EUR"]),
        ("view:nullable_rate", ["view:nullable_rate"]),
        ("None_seen,true_count", ["None_seen", "true_count"]),
        ("[]", []),
    ],
)
def test_optional_list(value, expected):
    assert arguments.optional_list(value, "columns") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[1, ", "columns='\\[1,' is neither JSON nor a Python literal"),
        ('["a"] + ["b"]', "is neither JSON nor a Python literal"),
        ([None], "columns holds \\[None\\]"),
        ([""], "columns holds"),
        ([True], "columns holds \\[True\\]"),
        (3.5, "columns=3.5 is a float; give a list of names"),
        ({"a": 1}, "is a dict; give a list of names"),
    ],
)
def test_optional_list_refuses(value, message):
    with pytest.raises(ConfigurationError, match=message):
        arguments.optional_list(value, "columns")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ({"a": 1}, {"a": 1}),
        ('{"max_iter": 50, "flag": null}', {"max_iter": 50, "flag": None}),
        ("{'max_iter': 50, 'flag': None}", {"max_iter": 50, "flag": None}),
        ("{}", {}),
    ],
)
def test_optional_dict(value, expected):
    assert arguments.optional_dict(value, "estimator_params") == expected


@pytest.mark.parametrize("value", ["max_depth=3", "[1, 2]", 5, ["a"]])
def test_optional_dict_refuses(value):
    with pytest.raises(ConfigurationError, match="estimator_params="):
        arguments.optional_dict(value, "estimator_params")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True), (False, False), ("True", True), ("true", True), (" yes ", True), ("1", True), (1, True),
        ("False", False), ("false", False), ("off", False), ("0", False), (0, False), (None, False), ("", False),
    ],
)  # fmt: skip
def test_as_bool(value, expected):
    assert arguments.as_bool(value, "require_approval") is expected


@pytest.mark.parametrize("value", ["maybe", 2, "None", [True]])
def test_as_bool_refuses(value):
    with pytest.raises(ConfigurationError, match="require_approval=.* is not a yes/no value"):
        arguments.as_bool(value, "require_approval")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), (" x ", "x"), ("None", "None"), ("null", "null"), (7, "7"), (2.5, "2.5")],
)
def test_optional_text_keeps_marker_words(value, expected):
    assert arguments.optional_text(value, "target_column") == expected


@pytest.mark.parametrize("value", [True, ["a"], {"a": 1}])
def test_optional_text_refuses(value):
    with pytest.raises(ConfigurationError, match="target_column="):
        arguments.optional_text(value, "target_column")


def test_required_text_names_the_argument():
    with pytest.raises(ConfigurationError, match="model_name is empty"):
        arguments.required_text("  ", "model_name")


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("", None), ("7", 7), (7, 7), (7.0, 7), (" 12 ", 12)])
def test_optional_int(value, expected):
    assert arguments.optional_int(value, "last") == expected


@pytest.mark.parametrize(("value", "message"), [("seven", "not a whole number"), (7.5, "not a whole number"),
                                                (True, "not a whole number"), (0, "must be at least 1")])  # fmt: skip
def test_optional_int_refuses(value, message):
    with pytest.raises(ConfigurationError, match=f"last=.*{message}"):
        arguments.optional_int(value, "last", minimum=1)


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("0.02", 0.02), (1, 1.0), (" 3 ", 3.0)])
def test_optional_float(value, expected):
    assert arguments.optional_float(value, "min_improvement") == expected


@pytest.mark.parametrize("value", ["a lot", True, [1]])
def test_optional_float_refuses(value):
    with pytest.raises(ConfigurationError, match="min_improvement=.* is not a number"):
        arguments.optional_float(value, "min_improvement")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ({"id": "7", "name": "Ada"}, "Ada"), ({"id": "7", "name": ""}, "7"), ("Ada", "Ada"), ("", None)],
)
def test_user_name(value, expected):
    assert arguments.user_name(value) == expected


# -- every path a list of tricky names takes from a DAG to the operator -------------------------------------


def _rendered(template, *, native: bool, params: dict):
    """Render ``template`` as a task of a DAG with ``render_template_as_native_obj=native`` would."""
    from mlops_provider.operators.features import GetHistoricalFeaturesOperator

    with DAG(
        f"render_{native}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        render_template_as_native_obj=native,
        params={name: Param(value) for name, value in params.items()},
    ):
        task = GetHistoricalFeaturesOperator(
            task_id="features", entity_uri="/data", features=template, output_uri="/out"
        )
    task.render_template_fields({"params": params})
    return task.features


@pytest.mark.parametrize(
    ("template", "native"),
    [
        (TRICKY_NAMES, False),  # a literal list
        (TRICKY_NAMES, True),
        ("{{ params.refs }}", True),  # a param rendered natively: the list itself
        ("{{ params.refs | tojson }}", False),  # JSON text
        ("{{ params.refs }}", False),  # Python's repr of the list
    ],
)
def test_tricky_names_survive_every_rendering_path(template, native):
    rendered = _rendered(template, native=native, params={"refs": TRICKY_NAMES})
    assert arguments.optional_list(rendered, "features") == TRICKY_NAMES


def test_an_unset_param_renders_to_not_given_on_both_paths():
    assert arguments.optional_list(_rendered("{{ params.refs }}", native=True, params={"refs": None}), "f") is None
    assert (
        arguments.optional_list(_rendered("{{ params.refs | tojson }}", native=False, params={"refs": []}), "f") == []
    )
