"""The lifecycle as one reusable TaskGroup: validate -> features -> train -> gate -> [approve] -> promote -> score.

Every reference DAG builds its training path with ``lifecycle_task_group(LifecycleSettings(...))`` instead of
wiring the operators again. Each setting may be a value, a template (``"{{ params.model_name }}"``; render
templates as native objects so lists and dicts stay lists and dicts) or an upstream task's result as an
``XComArg`` (``select.output["dataset_uri"]``). Inside the group, tasks hand each other values the same way:
``features.output["output_uri"]`` is what ``train`` reads, ``train.output["version"]`` what the gate judges.

Tasks (ids inside the group):

* ``validate``: ``ValidateDataOperator`` on the dataset; with no ``expectation_suite`` the suite is inferred
  from the champion's training sample, or, at cold start, from this dataset (saved as the baseline).
* ``features``: ``GetHistoricalFeaturesOperator`` joining ``feature_refs`` point-in-time onto the dataset;
  with no references it passes the dataset through, and training reads it as it is.
* ``train``: ``TrainModelOperator``; a version per DAG run, skipped when nothing changed.
* ``gate``: ``EvaluateChallengerOperator``: challenger and champion scored on the same holdout; a rejected
  challenger skips everything after it, the run stays green.
* ``approve``: when ``require_approval`` is true (a bool, or a template rendering to one),
  Airflow's human-in-the-loop ``ApprovalOperator`` shows both models' metrics and waits; a rejection skips
  the move. With a template the task is always there and passes at once when the run needs no approval.
* ``promote``: ``PromoteModelOperator`` moving the alias under the registry lock (scoring again, so an
  approval never promotes over a champion that changed meanwhile); raises ``mlflow://<model>@<alias>``.
* ``score``: ``BatchPredictOperator`` scoring the dataset with the new champion.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypedDict, cast

from airflow.providers.standard.operators.hitl import ApprovalOperator

from mlops_provider import arguments
from mlops_provider.core import alerts
from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.tracking import mlops_home
from mlops_provider.operators.alerting import (
    ALERTS_XCOM_KEY,
    airflow_task_url,
    alert_arguments,
    check_alert_on,
    check_notifiers,
    send_alert,
)
from mlops_provider.operators.mixins import ResultOperator

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context, TaskGroup
    from airflow.sdk.definitions.xcom_arg import PlainXComArg
    from airflow.sdk.execution_time.hitl import HITLUser

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


@dataclasses.dataclass(frozen=True)
class LifecycleSettings:
    """Everything ``lifecycle_task_group`` wires, in one object; fields as the operators name them.

    The data: ``dataset_uri`` (labelled rows), ``target_column``, and optionally ``feature_columns``,
    ``id_columns`` (never features), ``timestamp_column`` (a time split), ``feature_refs`` (Feast references
    joined point-in-time; empty: the dataset is used as it is) and ``expectation_suite`` (empty: inferred
    from the champion's training sample, its numeric ranges widened by ``range_tolerance``; None: the
    ``ValidateDataOperator`` default). The model: ``model_name``, ``estimator``, ``estimator_params``,
    ``experiment_name``, ``skip_if_unchanged``, ``slice_columns`` and ``sensitive_columns`` (per-slice and
    fairness metrics, which ``thresholds`` may then name). The gate: ``thresholds``, or ``primary_metric`` (empty: by
    task type) with ``min_improvement``; ``live_evidence`` (the challenger must also beat the champion in shadow
    on live labelled rows); ``alias``; ``require_approval``, ``approval_timeout`` and ``approvers`` (who may
    answer; see ``PromotionApprovalOperator``);
    ``promotion_pool`` puts both registry tasks in an Airflow pool, ``training_pool`` the train task (bounding how
    many models train at once across every DAG that names the pool). Where data goes: ``work_uri`` (default
    ``$MLOPS_WORK_URI`` or ``$MLOPS_HOME/work``) receives the training set and the predictions, one folder
    per DAG run. Connections: ``mlflow_conn_id``, ``aws_conn_id``, ``feast_conn_id``, ``feast_repo_path``.
    Alerts: ``notifiers`` (Airflow notifiers, e.g. ``SmtpNotifier`` and ``WebhookNotifier``) told when the gate
    rejects the challenger (``gate_rejected``) and when a promotion waits for approval (``approval_waiting``);
    ``alert_on`` narrows that to some of those kinds (default None: both). See ``operators.alerting``.
    """

    dataset_uri: Any
    target_column: Any
    model_name: Any
    feature_columns: Any = None
    id_columns: Any = None
    timestamp_column: Any = None
    feature_refs: Any = None
    expectation_suite: Any = None
    range_tolerance: float | None = None
    estimator: Any = None
    estimator_params: Any = None
    slice_columns: Any = None
    sensitive_columns: Any = None
    experiment_name: Any = None
    skip_if_unchanged: bool = True
    thresholds: Any = None
    primary_metric: Any = None
    min_improvement: Any = 0.0
    live_evidence: Any = None
    alias: str = "champion"
    require_approval: Any = False
    approval_timeout: timedelta | None = timedelta(days=7)
    approvers: Any = None
    promotion_pool: str | None = None
    training_pool: str | None = None
    work_uri: str | None = None
    feast_repo_path: str | None = None
    mlflow_conn_id: str = "mlflow_default"
    aws_conn_id: str | None = "aws_default"
    feast_conn_id: str = "feast_default"
    notifiers: Any = None
    alert_on: Any = None

    def replace(self, **changes: Any) -> LifecycleSettings:
        return dataclasses.replace(self, **changes)


class _Connections(TypedDict):
    """The connection arguments every MLflow task of the group takes."""

    mlflow_conn_id: str
    aws_conn_id: str | None


def _output(task: BaseOperator, key: str) -> Any:
    """``task.output[key]``: the value ``task`` returns under ``key``, as an XComArg.

    Typed ``Any`` like the settings: operator arguments are annotated with their rendered type (``str``), and
    the XComArg stands in for that value until the task runs.
    """
    # ``BaseOperator.output`` is annotated as the base XComArg, but it is built as ``XComArg(operator=task)``,
    # which always gives a PlainXComArg: the kind that supports ``[key]``.
    return cast("PlainXComArg", task.output)[key]


def lifecycle_task_group(settings: LifecycleSettings, *, group_id: str = "lifecycle") -> TaskGroup:
    """Build the lifecycle TaskGroup in the current DAG context and return it (use it like any task)."""
    from airflow.sdk import TaskGroup

    from mlops_provider.core import validation
    from mlops_provider.operators.features import GetHistoricalFeaturesOperator
    from mlops_provider.operators.prediction import BatchPredictOperator
    from mlops_provider.operators.registry import EvaluateChallengerOperator, PromoteModelOperator
    from mlops_provider.operators.training import TrainModelOperator
    from mlops_provider.operators.validation import ValidateDataOperator

    s = settings
    if s.require_approval is False and not arguments.is_unset(s.approvers) and s.approvers != []:
        raise ConfigurationError(
            f"approvers={s.approvers!r} is given but require_approval is False, so nobody is asked; set "
            "require_approval=True (or a template) or remove approvers."
        )
    work = (s.work_uri or default_work_uri()).rstrip("/")
    run_folder = "{{ dag.dag_id }}/{{ run_id | replace(':', '-') | replace('+', '-') }}"
    connections: _Connections = {"mlflow_conn_id": s.mlflow_conn_id, "aws_conn_id": s.aws_conn_id}
    gate_settings = {
        "model_name": s.model_name,
        "thresholds": s.thresholds,
        "primary_metric": s.primary_metric,
        "min_improvement": s.min_improvement,
        "live_evidence": s.live_evidence,
        "alias": s.alias,
        "on_reject": "skip",
        **alert_arguments(s.notifiers, s.alert_on, alerts.GATE_REJECTED),
        **({"pool": s.promotion_pool} if s.promotion_pool else {}),
        **connections,
    }

    with TaskGroup(group_id=group_id) as group:
        validate = ValidateDataOperator(
            task_id="validate",
            dataset_uri=s.dataset_uri,
            expectation_suite=s.expectation_suite,
            baseline_model=s.model_name,
            champion_alias=s.alias,
            on_failure="fail",
            range_tolerance=validation.DEFAULT_RANGE_TOLERANCE if s.range_tolerance is None else s.range_tolerance,
            **connections,
        )
        features = GetHistoricalFeaturesOperator(
            task_id="features",
            entity_uri=s.dataset_uri,
            features=s.feature_refs,
            output_uri=f"{work}/training_sets/{run_folder}/",
            timestamp_column=s.timestamp_column,
            pass_through_without_features=True,
            repo_path=s.feast_repo_path,
            feast_conn_id=s.feast_conn_id,
            aws_conn_id=s.aws_conn_id,
        )
        train = TrainModelOperator(
            task_id="train",
            dataset_uri=_output(features, "output_uri"),
            target_column=s.target_column,
            model_name=s.model_name,
            feature_columns=s.feature_columns,
            id_columns=s.id_columns,
            timestamp_column=s.timestamp_column,
            estimator=s.estimator,
            estimator_params=s.estimator_params,
            experiment_name=s.experiment_name,
            champion_alias=s.alias,
            skip_if_unchanged=s.skip_if_unchanged,
            gate_metrics=list(s.thresholds) if isinstance(s.thresholds, dict) else s.primary_metric,
            slice_columns=s.slice_columns,
            sensitive_columns=s.sensitive_columns,
            pool=s.training_pool,  # None: Airflow's default_pool
            **connections,
        )
        gate = EvaluateChallengerOperator(task_id="gate", version=_output(train, "version"), **gate_settings)
        validate >> features
        if s.require_approval is False:
            promote = PromoteModelOperator(task_id="promote", version=_output(train, "version"), **gate_settings)
            gate >> promote
        else:
            gate_xcom = "{% set gate = ti.xcom_pull(task_ids='" + group.child_id("gate") + "') %}"
            approve = PromotionApprovalOperator(
                task_id="approve",
                required=s.require_approval,
                subject=gate_xcom + "Promote {{ gate.model_name }} version {{ gate.version }} to @{{ gate.alias }}?",
                body=gate_xcom + APPROVAL_BODY,
                response_timeout=s.approval_timeout,
                model_name=s.model_name,
                approvers=s.approvers,
                **alert_arguments(s.notifiers, s.alert_on, alerts.APPROVAL_WAITING),
            )
            promote = PromoteModelOperator(
                task_id="promote",
                version=_output(train, "version"),
                approved_by=_output(approve, "responded_by_user"),
                **gate_settings,
            )
            gate >> approve >> promote
        score = BatchPredictOperator(
            task_id="score",
            model_name=s.model_name,
            alias=s.alias,
            dataset_uri=s.dataset_uri,
            output_uri=f"{work}/predictions/{run_folder}/",
            **connections,
        )
        promote >> score
    return group


class PromotionApprovalOperator(ApprovalOperator):
    """Airflow's ``ApprovalOperator``, asked only when ``required`` (templated) renders true.

    When not required it returns at once as approved by nobody, so a per-run param decides whether a human is
    asked without a branch task in the graph. A rejection skips the promotion.

    :param model_name: the model to promote (templated; named in the alert).
    :param approvers: who may answer (templated): Airflow user ids, as a list or comma-separated text, or
        ``HITLUser`` dicts. Airflow's API refuses an answer from anyone else (403), in the UI as through the
        REST API. Empty or None: anyone allowed to answer the DAG's Required actions may approve.
    :param notifiers: Airflow notifiers told once the request is written (the alert ``approval_waiting``: the
        request's subject and body, when it times out, and the link to the task's Required actions page). Unlike
        the notifiers of Airflow's ``HITLOperator``, a notifier that fails is logged and the request still waits.
    :param alert_on: ``["approval_waiting"]`` (default) or ``[]``.
    """

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "required", "model_name", "approvers")
    alert_events = (alerts.APPROVAL_WAITING,)

    def __init__(
        self,
        *,
        required: bool | str = True,
        model_name: str | None = None,
        approvers: Any = None,
        notifiers: Any = None,
        alert_on: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        alert_notifiers = check_notifiers(notifiers, "PromotionApprovalOperator")
        alert_kinds = check_alert_on(alert_on, "PromotionApprovalOperator", self.alert_events)
        kwargs.setdefault("multiple_outputs", True)  # promote takes approve.output["responded_by_user"]
        super().__init__(**kwargs)  # HITLOperator's own notifiers stay empty: ours go through notify_waiting
        if kwargs.get("assigned_users"):
            raise ConfigurationError(
                "PromotionApprovalOperator takes approvers= (Airflow user ids), not assigned_users=; pass the ids "
                "as approvers=['alice', 'bob']."
            )
        self.required = required
        self.model_name = model_name
        self.approvers = approvers
        if arguments.is_literal(approvers):
            approver_users(approvers)  # a bad literal fails when the DAG is parsed, not when a human is asked
        self.alert_notifiers = alert_notifiers
        self.alert_on = alert_kinds

    def execute(self, context: Context) -> Any:
        if arguments.as_bool(self.required, "required"):
            self.assigned_users = approver_users(self.approvers) or None
            if self.assigned_users:
                self.log.info("Only %s may answer.", ", ".join(user["id"] for user in self.assigned_users))
            # HITLOperator calls its notifiers once the request is written, before the task waits.
            self.notifiers = [self.notify_waiting] if self.alert_notifiers else []  # type: ignore[list-item]
            return super().execute(context)
        self.log.info("No approval required for this run (require_approval=%s): promoting without asking.",
                      self.required)  # fmt: skip
        return {"chosen_options": [self.APPROVE], "params_input": {}, "responded_at": None, "responded_by_user": None}

    def notify_waiting(self, context: Context) -> dict[str, Any] | None:
        """The alert ``approval_waiting``, with the link to the task's Required actions page in the Airflow UI."""
        from airflow.configuration import conf

        base_url = conf.get("api", "base_url", fallback="") or "http://localhost:8080"
        link = self.generate_link_to_ui(task_instance=context["ti"], base_url=base_url)
        model_name = arguments.optional_text(self.model_name, "model_name")
        timeout = self.hitl_summary_extra.get("timeout_datetime")
        alert = alerts.approval_alert(model_name, str(self.subject), str(self.body or ""), timeout=timeout)
        alert = alert.with_links(
            alerts.AlertLink("Required actions", link),
            alerts.AlertLink("Airflow task", airflow_task_url(context) or ""),
        )
        outcome = send_alert(self, context, alert, notifiers=self.alert_notifiers, alert_on=self.alert_on)
        if outcome is not None:
            context["ti"].xcom_push(key=ALERTS_XCOM_KEY, value=[outcome])
        return outcome


def approver_users(value: Any) -> list[HITLUser]:
    """``approvers`` as Airflow's ``HITLUser`` dicts (id and name); empty when anyone may answer."""
    if isinstance(value, dict):
        value = [value]
    users: list[HITLUser]
    if isinstance(value, (list, tuple)) and any(isinstance(item, dict) for item in value):
        users = []
        for item in value:
            user_id = item.get("id") if isinstance(item, dict) else item
            if not isinstance(user_id, (str, int)) or isinstance(user_id, bool) or str(user_id).strip() == "":
                raise ConfigurationError(
                    f"approvers holds {item!r}, which names no user; give Airflow user ids such as ['alice'] or "
                    "dicts such as {'id': 'alice', 'name': 'Alice'}."
                )
            name = item.get("name") if isinstance(item, dict) else None
            users.append({"id": str(user_id).strip(), "name": str(name or user_id).strip()})
    else:
        users = [{"id": user, "name": user} for user in arguments.optional_list(value, "approvers") or []]
    ids = [user["id"] for user in users]
    repeated = sorted({user_id for user_id in ids if ids.count(user_id) > 1})
    if repeated:
        raise ConfigurationError(f"approvers names {repeated} more than once; name each approver once.")
    return users


class CheckRunConfOperator(ResultOperator):
    """Refuse a run whose conf names keys the DAG has no param for (a typo such as ``target`` for
    ``target_column`` would otherwise run on the defaults). Put it first in a DAG triggered with conf.
    Returns ``{conf_keys}``."""

    ui_color = "#eeeeee"

    def execute(self, context: Context) -> dict[str, Any]:
        import difflib

        dag_run = context.get("dag_run")
        conf = dict(getattr(dag_run, "conf", None) or {})
        # The DAG's declared params: the context's params also hold every conf key, known or not.
        known = sorted(self.dag.params.keys()) if self.has_dag() else []
        unknown = sorted(key for key in conf if key not in known)
        if unknown:
            hints = [
                f"{key!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(key, known, n=1)) else repr(key)
                for key in unknown
            ]  # fmt: skip
            raise ConfigurationError(
                f"The run's conf names {', '.join(hints)}, which this DAG has no param for; use its params: {known}."
            )
        return {"conf_keys": sorted(conf)}
