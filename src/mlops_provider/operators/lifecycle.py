"""The lifecycle as one reusable TaskGroup: validate -> features -> train -> gate -> [approve] -> promote -> score.

Every reference DAG builds its training path with ``lifecycle_task_group`` instead of wiring the operators
again. Each argument is templated, so a DAG can hand it ``"{{ params.model_name }}"`` or an upstream XCom.

Tasks (ids inside the group):

* ``validate``: ``ValidateDataOperator`` on the dataset; with no ``expectation_suite`` the suite is inferred
  from the champion's training sample, or, at cold start, from this dataset (saved as the baseline).
* ``features``: ``GetHistoricalFeaturesOperator`` joining ``feature_refs`` point-in-time onto the dataset;
  with no references it passes the dataset through, and training reads it as it is.
* ``train``: ``TrainModelOperator``; a version per DAG run, skipped when nothing changed.
* ``gate``: ``PromoteModelOperator(evaluate_only=True)``: challenger and champion scored on the same
  holdout; a rejected challenger skips everything after it, the run stays green.
* ``approve``: when ``require_approval`` is true (a bool, or a template rendering to ``True``/``true``),
  Airflow's human-in-the-loop ``ApprovalOperator`` shows both models' metrics and waits; a rejection skips
  the move. With a template the task is always there and passes at once when the run needs no approval.
* ``promote``: ``PromoteModelOperator`` moving the alias under the registry lock (scoring again, so an
  approval never promotes over a champion that changed meanwhile); raises ``mlflow://<model>@<alias>``.
* ``score``: ``BatchPredictOperator`` scoring the dataset with the new champion.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from mlops_provider.core.tracking import mlops_home

APPROVAL_BODY = """\
**{{ gate.model_name }}** version **{{ gate.version }}** passed the gate against
{% if gate.champion_version %}champion version **{{ gate.champion_version }}**{% else %}no champion (cold start){% endif %}.

| metric | challenger | champion |
|---|---|---|
{% for name, value in gate.challenger_metrics.items() -%}
| {{ name }} | {{ '%.4f' % value }} | {{ '%.4f' % gate.champion_metrics[name] if gate.champion_metrics and name in gate.champion_metrics else '-' }} |
{% endfor %}
Approve to move **{{ gate.model_name }}@{{ gate.alias }}** to version {{ gate.version }}; reject to keep the current champion.
"""


def default_work_uri() -> str:
    """Where runs write intermediate data (training sets, predictions): ``$MLOPS_WORK_URI`` or under MLOPS_HOME."""
    return os.environ.get("MLOPS_WORK_URI") or str(mlops_home() / "work")


def _xcom(task_id: str, key: str) -> str:
    return f"(ti.xcom_pull(task_ids='{task_id}') or {{}}).get('{key}')"


def lifecycle_task_group(
    *,
    dataset_uri: str,
    target_column: str,
    model_name: str,
    thresholds: dict[str, Any] | str,
    group_id: str = "lifecycle",
    feature_columns: list[str] | str | None = None,
    id_columns: list[str] | str | None = None,
    timestamp_column: str | None = None,
    estimator: str | None = None,
    estimator_params: dict[str, Any] | str | None = None,
    expectation_suite: str | None = None,
    feature_refs: list[str] | str | None = None,
    require_approval: bool | str = False,
    approval_timeout: timedelta | None = timedelta(days=7),
    alias: str = "champion",
    experiment_name: str | None = None,
    skip_if_unchanged: bool = True,
    work_uri: str | None = None,
    feast_repo_path: str | None = None,
    mlflow_conn_id: str = "mlflow_default",
    aws_conn_id: str | None = "aws_default",
    feast_conn_id: str = "feast_default",
    promotion_pool: str | None = None,
) -> Any:
    """Build the lifecycle TaskGroup in the current DAG context and return it (use it like any task).

    ``thresholds`` is the gate, as ``PromoteModelOperator`` takes it. ``work_uri`` (default
    ``$MLOPS_WORK_URI`` or ``$MLOPS_HOME/work``) receives the training set built by Feast and the
    predictions, one folder per DAG run. ``promotion_pool`` puts both registry tasks in an Airflow pool.
    """
    from airflow.sdk import TaskGroup

    from mlops_provider.operators.features import GetHistoricalFeaturesOperator
    from mlops_provider.operators.prediction import BatchPredictOperator
    from mlops_provider.operators.registry import PromoteModelOperator
    from mlops_provider.operators.training import TrainModelOperator
    from mlops_provider.operators.validation import ValidateDataOperator

    work = (work_uri or default_work_uri()).rstrip("/")
    run_folder = "{{ dag.dag_id }}/{{ run_id | replace(':', '-') | replace('+', '-') }}"
    registry_kwargs = {"pool": promotion_pool} if promotion_pool else {}

    with TaskGroup(group_id=group_id) as group:

        def task_id(name: str) -> str:
            return group.child_id(name)

        validate = ValidateDataOperator(
            task_id="validate",
            dataset_uri=dataset_uri,
            expectation_suite=expectation_suite,
            baseline_model=model_name,
            champion_alias=alias,
            on_failure="fail",
            aws_conn_id=aws_conn_id,
            mlflow_conn_id=mlflow_conn_id,
        )
        features = GetHistoricalFeaturesOperator(
            task_id="features",
            entity_uri=dataset_uri,
            features=feature_refs or "",
            output_uri=f"{work}/training_sets/{run_folder}/",
            timestamp_column=timestamp_column or "event_timestamp",
            pass_through_without_features=True,
            repo_path=feast_repo_path,
            feast_conn_id=feast_conn_id,
            aws_conn_id=aws_conn_id,
        )
        train = TrainModelOperator(
            task_id="train",
            dataset_uri="{{ " + _xcom(task_id("features"), "output_uri") + " }}",
            target_column=target_column,
            model_name=model_name,
            feature_columns=feature_columns,
            id_columns=id_columns,
            timestamp_column=timestamp_column,
            estimator=estimator,
            estimator_params=estimator_params,
            experiment_name=experiment_name,
            champion_alias=alias,
            skip_if_unchanged=skip_if_unchanged,
            aws_conn_id=aws_conn_id,
            mlflow_conn_id=mlflow_conn_id,
        )
        gate = PromoteModelOperator(
            task_id="gate",
            model_name=model_name,
            version="{{ " + _xcom(task_id("train"), "version") + " }}",
            thresholds=thresholds,
            alias=alias,
            evaluate_only=True,
            on_reject="skip",
            mlflow_conn_id=mlflow_conn_id,
            aws_conn_id=aws_conn_id,
            **registry_kwargs,
        )
        promote = PromoteModelOperator(
            task_id="promote",
            model_name=model_name,
            version="{{ " + _xcom(task_id("train"), "version") + " }}",
            thresholds=thresholds,
            alias=alias,
            on_reject="skip",
            approved_by="{{ ((" + _xcom(task_id("approve"), "responded_by_user") + ") or {}).get('name', '') }}",
            mlflow_conn_id=mlflow_conn_id,
            aws_conn_id=aws_conn_id,
            **registry_kwargs,
        )
        score = BatchPredictOperator(
            task_id="score",
            model_name=model_name,
            alias=alias,
            dataset_uri=dataset_uri,
            output_uri=f"{work}/predictions/{run_folder}/",
            mlflow_conn_id=mlflow_conn_id,
            aws_conn_id=aws_conn_id,
        )
        validate >> features >> train

        if require_approval is False:
            gate >> promote
        else:
            approve = PromotionApprovalOperator(
                task_id="approve",
                required=require_approval,
                subject=(
                    "{% set gate = ti.xcom_pull(task_ids='" + task_id("gate") + "') %}"
                    "Promote {{ gate.model_name }} version {{ gate.version }} to @{{ gate.alias }}?"
                ),
                body="{% set gate = ti.xcom_pull(task_ids='" + task_id("gate") + "') %}" + APPROVAL_BODY,
                response_timeout=approval_timeout,
            )
            gate >> approve >> promote
        train >> gate
        promote >> score
    return group


class PromotionApprovalOperator(ApprovalOperator):
    """Airflow's ``ApprovalOperator``, asked only when ``required`` (templated) renders true.

    When not required it returns at once as approved by nobody, so a per-run param decides whether a human is
    asked without a branch task in the graph. A rejection skips the promotion.
    """

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "required")

    def __init__(self, *, required: bool | str = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.required = required

    def execute(self, context: Any) -> Any:
        if str(self.required).strip().lower() in ("true", "1", "yes", "on"):
            return super().execute(context)
        self.log.info("No approval required for this run (require_approval=%s): promoting without asking.",
                      self.required)  # fmt: skip
        return {"chosen_options": [self.APPROVE], "params_input": {}, "responded_at": None, "responded_by_user": None}
