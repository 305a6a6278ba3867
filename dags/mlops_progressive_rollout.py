"""
### mlops_progressive_rollout

A challenger version reaches live traffic in steps, each judged on its labelled live predictions, with the
scoring service `mlops-serve` following the registry's aliases:

gate (challenger vs champion on the holdout) -> **shadow** (`<model>@shadow`: the challenger scores every request
on the side, its answers are logged, never sent) -> judged on the ids both scored (paired test) -> **canary**
(`<model>@canary`: it answers `canary_share` of the requests) -> judged against the champion's answers (unpaired
test, plus error rate and p99 latency from the service's `/metrics`) -> promoted to `@champion`, or rolled back.

A challenger shown worse, or breaking a guardrail, is rolled back at once; one with too few labelled rows, or
before `soak_hours`, waits (deferred) up to `max_soak_hours` from the start of its stage, then is rolled back.
Every alias move is recorded in the model's history (`rollout_start`, `rollout_promote`, `rollout_rollback`).
Trigger with `version` (the challenger). `shadow_window` / `canary_window` (`[start, end]`, ISO 8601 with a time
zone) judge a fixed window of logged predictions instead of "since the stage started".
"""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import DAG, Param

from mlops_provider.operators.lifecycle import CheckRunConfOperator
from mlops_provider.operators.registry import EvaluateChallengerOperator
from mlops_provider.operators.rollout import AnalyzeRolloutOperator, StartRolloutOperator
from mlops_provider.reference import START_DATE, reference_settings

settings = reference_settings(os.path.dirname(__file__))


def _window(name: str, edge: int) -> str:
    return f"{{{{ params.{name}[{edge}] if params.{name} else '' }}}}"


with DAG(
    dag_id="mlops_progressive_rollout",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["mlops", "rollout", "serving"],
    doc_md=__doc__,
    render_template_as_native_obj=True,
    params={
        "model_name": Param(
            settings.model_name,
            type="string",
            minLength=1,
            pattern=r"^[A-Za-z0-9_.\-]+$",
            description="The registered model that mlops-serve serves.",
        ),  # fmt: skip
        "version": Param(
            None,
            type=["null", "string", "integer"],
            description="The challenger version to roll out (e.g. the newest one training registered).",
        ),  # fmt: skip
        "gate_metric": Param(
            settings.primary_metric,
            type="string",
            enum=["roc_auc", "f1_macro", "accuracy", "log_loss", "rmse", "mae", "r2"],
            description="The metric the holdout gate compares before any live traffic.",
        ),  # fmt: skip
        "gate_min_improvement": Param(
            settings.min_improvement,
            type="number",
            description="How much the challenger must beat the champion on the holdout (absolute; 0 = as good).",
        ),  # fmt: skip
        "canary_share": Param(
            0.1, type="number", minimum=0, maximum=1, description="The share of requests the canary answers."
        ),
        "primary_metric": Param(
            None,
            type=["null", "string"],
            enum=[None, "accuracy", "f1_macro", "roc_auc", "log_loss", "brier", "rmse", "mae", "r2"],
            description="The live metric the stages compare; empty: accuracy (rmse for regressors). Shadow needs a "
            "row-by-row metric: accuracy, log_loss, brier, rmse or mae.",
        ),  # fmt: skip
        "min_improvement": Param(
            0.0,
            type="number",
            description="Live: promote when better than the champion by more than this; negative: a tolerance "
            "(promote when not worse by more than it).",
        ),  # fmt: skip
        "soak_hours": Param(
            24, type="number", minimum=0, description="The least time in each stage before it may pass."
        ),  # fmt: skip
        "max_soak_hours": Param(
            72,
            type=["null", "number"],
            minimum=0,
            description="How long a stage waits for a verdict before it is rolled back; empty: never wait.",
        ),  # fmt: skip
        "labels_uri": Param(settings.labels_uri, type="string", minLength=1, description="The labels as they arrive."),
        "label_column": Param(settings.target_column, type="string", minLength=1, description="The label column."),
        "label_timestamp_column": Param(
            "label_timestamp", type=["null", "string"], description="When each label became known (optional)."
        ),  # fmt: skip
        "id_columns": Param(
            list(settings.id_columns),
            type="array",
            items={"type": "string"},
            minItems=1,
            description="The key that labels and logged predictions share.",
        ),  # fmt: skip
        "prediction_log_uri": Param(
            None, type=["null", "string"], description="The prediction log's root; empty: $MLOPS_HOME/prediction_log."
        ),  # fmt: skip
        "service_urls": Param(
            [],
            type="array",
            items={"type": "string"},
            description="Base URLs of the mlops-serve replicas: refreshed after each move, their /metrics judged.",
        ),  # fmt: skip
        "shadow_window": Param(
            None,
            type=["null", "array"],
            items={"type": "string"},
            minItems=2,
            maxItems=2,
            description="[start, end) of the prediction times the shadow stage judges; empty: since it started.",
        ),  # fmt: skip
        "canary_window": Param(
            None,
            type=["null", "array"],
            items={"type": "string"},
            minItems=2,
            maxItems=2,
            description="[start, end) of the prediction times the canary stage judges; empty: since it started.",
        ),  # fmt: skip
    },
) as dag:
    common: dict[str, Any] = {"model_name": "{{ params.model_name }}", "service_urls": "{{ params.service_urls }}"}
    live: dict[str, Any] = {
        **common,
        "labels_uri": "{{ params.labels_uri }}",
        "label_column": "{{ params.label_column }}",
        "label_timestamp_column": "{{ params.label_timestamp_column }}",
        "id_columns": "{{ params.id_columns }}",
        "prediction_log_uri": "{{ params.prediction_log_uri }}",
        "primary_metric": "{{ params.primary_metric }}",
        "min_improvement": "{{ params.min_improvement }}",
        "soak_time": "{{ params.soak_hours * 3600 }}",
        "max_soak": "{{ params.max_soak_hours * 3600 if params.max_soak_hours is not none else '' }}",
        "on_timeout": "rollback",
    }
    gate = EvaluateChallengerOperator(
        task_id="gate",
        model_name="{{ params.model_name }}",
        version="{{ params.version }}",
        primary_metric="{{ params.gate_metric }}",
        min_improvement="{{ params.gate_min_improvement }}",
    )
    version = gate.output["version"]
    start_shadow = StartRolloutOperator(task_id="start_shadow", mode="shadow", version=version, **common)
    analyse_shadow = AnalyzeRolloutOperator(
        task_id="analyse_shadow",
        mode="shadow",
        version=version,
        promote=False,  # a shadow that passes goes on to the canary; it does not become champion yet
        skip_on=["rollback", "extend"],
        window_start=_window("shadow_window", 0),
        window_end=_window("shadow_window", 1),
        **live,
    )
    start_canary = StartRolloutOperator(
        task_id="start_canary", mode="canary", version=version, canary_share="{{ params.canary_share }}", **common
    )
    analyse_canary = AnalyzeRolloutOperator(
        task_id="analyse_canary",
        mode="canary",
        version=version,
        window_start=_window("canary_window", 0),
        window_end=_window("canary_window", 1),
        **live,
    )
    CheckRunConfOperator(task_id="check_conf") >> gate >> start_shadow >> analyse_shadow >> start_canary
    start_canary >> analyse_canary
