"""How every operator is wired: connection ids are template fields, one hook per task, results per key, the
gate as its own operator, the platform's deferral default. No service is started."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import subprocess
import sys
import warnings

import pytest

import mlops_provider.operators
import mlops_provider.sensors
from mlops_provider.operators.mixins import DatasetHookMixin, FeastHookMixin, MlflowHookMixin

CONNECTION_FIELDS = {
    MlflowHookMixin: {"mlflow_conn_id"},
    DatasetHookMixin: {"aws_conn_id"},
    FeastHookMixin: {"feast_conn_id", "repo_path"},
}


def provider_operators() -> list[type]:
    from airflow.sdk import BaseOperator

    found = {}
    for package in (mlops_provider.operators, mlops_provider.sensors):
        for info in pkgutil.iter_modules(package.__path__, prefix=f"{package.__name__}."):
            module = importlib.import_module(info.name)
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if issubclass(obj, BaseOperator) and obj.__module__ == module.__name__:
                    found[obj.__qualname__] = obj
    return [cls for name, cls in sorted(found.items()) if name not in {m.__name__ for m in CONNECTION_FIELDS}]


@pytest.mark.parametrize("operator", provider_operators(), ids=lambda cls: cls.__name__)
def test_connection_arguments_are_template_fields(operator):
    for mixin, fields in CONNECTION_FIELDS.items():
        if issubclass(operator, mixin):
            assert fields <= set(operator.template_fields), f"{operator.__name__} misses {fields}"


def test_every_external_system_is_reached_through_its_mixin():
    """No operator or sensor module builds a hook inline: the mixins do, once per task."""
    import re
    from pathlib import Path

    for package in (mlops_provider.operators, mlops_provider.sensors):
        for path in Path(package.__path__[0]).glob("*.py"):
            if path.name == "mixins.py":
                continue
            built = re.findall(r"\b(MlflowHook|FeastHook|DatasetHook|S3Hook)\(", path.read_text())
            assert not built, f"{path.name} builds {built} inline; use the mixin's hook"


def test_the_hook_and_its_client_are_made_once_per_task(connection_env):
    from mlops_provider.operators.prediction import BatchPredictOperator

    # A tracking server's address, never contacted: making a client for it talks to nobody, where the embedded
    # default would first create and migrate its SQLite database (seconds).
    connection_env("mlflow_default", conn_type="mlflow", host="127.0.0.1", port=5000)
    task = BatchPredictOperator(task_id="score", model_name="m", dataset_uri="/in", output_uri="/out")
    assert task.mlflow_hook is task.mlflow_hook
    assert task.dataset_hook is task.dataset_hook
    assert task.mlflow_hook.get_conn() is task.mlflow_hook.get_conn()


def test_connection_ids_come_from_default_args():
    from airflow.sdk import DAG

    from mlops_provider.operators.training import TrainModelOperator

    with DAG("defaults", schedule=None, default_args={"mlflow_conn_id": "mlflow_prod", "aws_conn_id": "aws_prod"}):
        task = TrainModelOperator(task_id="train", dataset_uri="/d", target_column="y", model_name="m")
    assert (task.mlflow_conn_id, task.aws_conn_id) == ("mlflow_prod", "aws_prod")


def test_results_are_pushed_per_key_so_xcomargs_can_take_one():
    from airflow.sdk import DAG

    from mlops_provider.operators.registry import EvaluateChallengerOperator
    from mlops_provider.operators.training import TrainModelOperator

    with DAG("values", schedule=None):
        train = TrainModelOperator(task_id="train", dataset_uri="/d", target_column="y", model_name="m")
        gate = EvaluateChallengerOperator(task_id="gate", model_name="m", version=train.output["version"])
    assert train.multiple_outputs and gate.multiple_outputs
    assert train.output["version"].key == "version"
    assert gate.upstream_task_ids == {"train"}


def test_the_gate_operator_moves_no_alias_and_raises_no_alias_event():
    from mlops_provider.assets import model_alias_events
    from mlops_provider.operators.registry import EvaluateChallengerOperator, PromoteModelOperator

    gate = EvaluateChallengerOperator(task_id="gate", model_name="m", version="3", primary_metric="rmse")
    promote = PromoteModelOperator(task_id="promote", model_name="m", version="3", primary_metric="rmse")
    assert not gate.moves_alias and not gate.outlets
    assert promote.moves_alias and [o.name for o in promote.outlets] == [model_alias_events().name]


def test_evaluate_only_still_works_for_one_release_and_says_so():
    from mlops_provider.operators.registry import PromoteModelOperator

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = PromoteModelOperator(task_id="gate", model_name="m", version="3", evaluate_only=True)
    assert any(issubclass(w.category, DeprecationWarning) and "EvaluateChallengerOperator" in str(w.message)
               for w in caught)  # fmt: skip
    assert not old.moves_alias and not old.outlets


def test_a_literal_gate_is_checked_when_the_dag_is_parsed():
    from mlops_provider.core.errors import ConfigurationError
    from mlops_provider.operators.registry import EvaluateChallengerOperator

    with pytest.raises(ConfigurationError, match=r"thresholds\['roc_auc'\] has unknown keys \['minimum'\]"):
        EvaluateChallengerOperator(task_id="gate", model_name="m", version="1", thresholds={"roc_auc": {"minimum": 1}})


def test_the_alias_sensor_defers_as_the_platform_decides():
    from mlops_provider.sensors.registry import ModelAliasSensor

    assert "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE" not in os.environ
    assert ModelAliasSensor(task_id="wait", model_name="m").deferrable is False  # Airflow's default
    probe = (
        "import json; from mlops_provider.sensors.registry import ModelAliasSensor as S; "
        "print(json.dumps([S(task_id='a', model_name='m').deferrable, "
        "S(task_id='b', model_name='m', deferrable=False).deferrable]))"
    )
    env = {**os.environ, "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "true"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == [True, False]


def test_slice_data_interval_is_a_task_with_its_name_and_its_override():
    from datetime import datetime, timezone

    from airflow.sdk import DAG

    from mlops_provider.operators.features import MaterializeFeaturesOperator, slice_data_interval

    with DAG("slicing", schedule="@monthly", start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)) as dag:
        slices = slice_data_interval(slices=4)
        MaterializeFeaturesOperator.partial(task_id="materialize", repo_path="repo").expand_kwargs(slices)
        slice_data_interval.override(task_id="hourly_slices")(slice_length=3600)
    assert set(dag.task_ids) == {"slice_data_interval", "materialize", "hourly_slices"}
    assert dag.get_task("materialize").upstream_task_ids == {"slice_data_interval"}
