"""Registry operators: promote a challenger through the gate, or roll an alias back, with an audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from mlops_provider.assets import model_alias_asset, model_alias_events
from mlops_provider.core import tags
from mlops_provider.core.errors import ConfigurationError
from mlops_provider.hooks.mlflow import MlflowHook
from mlops_provider.operators.context import airflow_run_tags

PROMOTION_POOL_DOC = (
    "Put promotion tasks in one Airflow pool (e.g. `pool='mlops_promotion'`) to queue them in the scheduler "
    "as well; the registry lock is what guarantees the serialisation."
)


def actor(context: Any) -> dict[str, str]:
    """Who moved an alias: the Airflow task try (and the user who triggered the run, when known)."""
    tags = airflow_run_tags(context)
    who = {key.split(".", 1)[1]: value for key, value in tags.items() if key.startswith("airflow.")}
    dag_run = context.get("dag_run")
    user = getattr(dag_run, "triggering_user_name", None) if dag_run is not None else None
    if user:
        who["user"] = str(user)
    return who


def _with_alias_outlet(kwargs: dict[str, Any]) -> dict[str, Any]:
    outlets = list(kwargs.get("outlets") or [])
    if not any(getattr(o, "name", None) == model_alias_events().name for o in outlets):
        outlets.append(model_alias_events())
    kwargs["outlets"] = outlets
    return kwargs


def emit_alias_moved(context: Any, model_name: str, alias: str, entry: dict[str, Any]) -> None:
    """Raise the Asset event ``mlflow://<model>@<alias>`` for a recorded alias move."""
    context["outlet_events"][model_alias_events()].add(
        model_alias_asset(model_name, alias),
        extra={
            "model_name": model_name,
            "alias": alias,
            "version": entry["to_version"],
            "previous_version": entry["from_version"],
            "action": entry["action"],
            "history_seq": entry["seq"],
        },
    )


def find_own_move(history: list[dict[str, Any]], context: Any, action: str) -> dict[str, Any] | None:
    """The alias move this same task already made in this DAG run (a retry or a cleared task)."""
    ti = context["ti"]
    for entry in reversed(history):
        by = entry.get("by", {})
        if (
            entry.get("action") == action
            and by.get("dag_id") == ti.dag_id
            and by.get("run_id") == ti.run_id
            and by.get("task_id") == ti.task_id
            and by.get("map_index", "-1") == str(getattr(ti, "map_index", -1))
        ):
            return entry
    return None


HOLDOUT_TAG = tags.HOLDOUT
TASK_TYPE_TAG = tags.TASK_TYPE
TARGET_TAG = tags.TARGET_COLUMN
ON_REJECT = ("skip", "fail")


class PromoteModelOperator(BaseOperator):
    """Score a challenger version and the current champion on the same data; move the alias if the gate passes.

    :param model_name: the registered model.
    :param version: the challenger version (templated), usually ``{{ ti.xcom_pull('train')['version'] }}``.
    :param thresholds: the gate (templated dict), per metric: ``min`` / ``max`` value thresholds, and change
        thresholds against the champion, ``min_absolute_change`` / ``min_relative_change`` (with
        ``greater_is_better``, inferred from the metric name). Metric names as TrainModelOperator logs
        them: accuracy, f1_macro, roc_auc, log_loss; rmse, mae, r2. Required: a gate that passes every
        challenger is refused.
    :param evaluation_dataset_uri: labelled data neither model trained on (templated); default: the
        challenger's holdout, stored with it by TrainModelOperator.
    :param target_column: the label column of the evaluation data (default: the challenger's target).
    :param alias: the alias to move (default ``champion``); the replaced version keeps ``previous_<alias>``.
    :param on_reject: ``skip`` (default: this task and downstream deploy steps are skipped, the run stays
        green) or ``fail``.
    :param max_conflict_retries: how often to re-score when another promotion moved the alias meanwhile.
    :param evaluate_only: run the gate and record its decision (``passed`` / ``rejected``) without moving the
        alias, for a human approval step between the gate and a second PromoteModelOperator that moves it
        (that one scores again under the lock, so an approval never promotes over a newer champion).
    :param approved_by: who approved the move (templated, e.g. from an ``ApprovalOperator``'s XCom); kept
        in the promotion history with the Airflow identity.

    Promotions of one model never interleave: the alias moves under a registry-wide lock and only if it still
    points where it pointed when scoring started (else the challenger is re-scored against the new champion).
    Every decision is written to the challenger version's tags; every alias move to the model's history.
    A retry of the same task in the same DAG run returns the decision already made. Returns ``{model_name,
    version, alias, promoted, reasons, challenger_metrics, champion_metrics, champion_version, history_seq}``.
    """

    template_fields: Sequence[str] = (
        "model_name",
        "version",
        "thresholds",
        "evaluation_dataset_uri",
        "target_column",
        "alias",
        "approved_by",
    )
    template_fields_renderers = {"thresholds": "json"}
    ui_color = "#c9e4de"

    def __init__(
        self,
        *,
        model_name: str,
        version: str | int,
        thresholds: dict[str, dict[str, Any]] | str,
        evaluation_dataset_uri: str | None = None,
        target_column: str | None = None,
        alias: str = "champion",
        on_reject: str = "skip",
        max_conflict_retries: int = 10,
        lock_timeout: float = 600.0,
        evaluate_only: bool = False,
        approved_by: str | None = None,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ) -> None:
        from mlops_provider.core.registry import validate_thresholds

        if on_reject not in ON_REJECT:
            raise ConfigurationError(f"on_reject={on_reject!r} is not one of {ON_REJECT}.")
        if not isinstance(thresholds, str) or "{{" not in thresholds:
            validate_thresholds(_as_dict(thresholds))  # refuse a gate without thresholds when the DAG is parsed
        super().__init__(**(kwargs if evaluate_only else _with_alias_outlet(kwargs)))
        self.evaluate_only = evaluate_only
        self.approved_by = approved_by
        self.model_name = model_name
        self.version = version
        self.thresholds = thresholds
        self.evaluation_dataset_uri = evaluation_dataset_uri
        self.target_column = target_column
        self.alias = alias
        self.on_reject = on_reject
        self.max_conflict_retries = max_conflict_retries
        self.lock_timeout = lock_timeout
        self.mlflow_conn_id = mlflow_conn_id
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        from mlops_provider.core.registry import promote_version, validate_thresholds

        thresholds = validate_thresholds(_as_dict(self.thresholds))
        hook = MlflowHook(mlflow_conn_id=self.mlflow_conn_id)
        version = str(self.version).strip()
        challenger = _model_version(hook.get_conn(), self.model_name, version)
        frame, target, task_type = self._evaluation_data(hook, challenger)
        who = actor(context)
        approver = str(self.approved_by or "").strip()
        if approver and approver.lower() not in ("none", "null"):
            who["approved_by"] = approver
        outcome = promote_version(
            hook.get_conn(),
            self.model_name,
            version,
            thresholds=thresholds,
            score=lambda v: score_version(hook, self.model_name, v, frame, target, task_type),
            alias=self.alias,
            actor=who,
            max_conflict_retries=self.max_conflict_retries,
            lock_timeout=self.lock_timeout,
            log=self.log,
            move=not self.evaluate_only,
        )
        result = outcome.to_dict()
        if outcome.replayed:
            self.log.info("This task already decided on %s v%s in this DAG run; returning that decision.",
                          self.model_name, version)  # fmt: skip
        if self.evaluate_only and outcome.gate_passed and not outcome.promoted:
            self.log.info("%s v%s passed the gate; %s@%s stays at v%s until the move is approved.",
                          self.model_name, version, self.model_name, self.alias, outcome.champion_version)  # fmt: skip
            return result
        if not outcome.promoted:
            context["ti"].xcom_push(key="gate_decision", value=result)
            message = f"{self.model_name} v{version} rejected: {'; '.join(outcome.reasons)}"
            if self.on_reject == "fail":
                from airflow.sdk.exceptions import AirflowFailException

                raise AirflowFailException(message)
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(message + " (on_reject='skip': downstream deploy steps are skipped)")
        if outcome.history_seq is not None:
            # Also on a replay: the earlier try's event was lost if that try did not succeed (at least once).
            entry = {"to_version": version, "from_version": outcome.champion_version,
                     "action": "promote", "seq": outcome.history_seq}  # fmt: skip
            emit_alias_moved(context, self.model_name, self.alias, entry)
        self.log.info("%s v%s is %s@%s.", self.model_name, version, self.model_name, self.alias)
        return result

    def _evaluation_data(self, hook: MlflowHook, challenger: Any) -> tuple[Any, str, str]:
        from mlops_provider.hooks.datasets import DatasetHook

        target = self.target_column or challenger.tags.get(TARGET_TAG)
        task_type = challenger.tags.get(TASK_TYPE_TAG)
        if not target or not task_type:
            raise ConfigurationError(
                f"{self.model_name} v{challenger.version} has no {TARGET_TAG}/{TASK_TYPE_TAG} tags (it was not "
                "trained by TrainModelOperator); pass target_column and train it with TrainModelOperator."
            )
        storage = DatasetHook(aws_conn_id=self.aws_conn_id)
        uri = self.evaluation_dataset_uri or challenger.tags.get(HOLDOUT_TAG)
        if not uri:
            raise ConfigurationError(
                f"{self.model_name} v{challenger.version} has no stored holdout ({HOLDOUT_TAG}); pass "
                "evaluation_dataset_uri with labelled data neither model trained on."
            )
        frame = hook.read_dataset(uri, storage)
        if target not in frame.columns:
            raise ConfigurationError(
                f"The evaluation data {uri!r} has no target column {target!r}; it has {list(frame.columns)[:20]}."
            )
        self.log.info("Scoring on %s (%d rows, target %r).", uri, len(frame), target)
        return frame, target, task_type


def _as_dict(value: Any) -> Any:
    import json

    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise ConfigurationError(f"thresholds is not valid JSON: {error}.") from error
    return value


def _model_version(client: Any, model_name: str, version: str) -> Any:
    from mlflow.exceptions import MlflowException

    if not version or version in ("None", "null"):
        raise ConfigurationError(f"No challenger version given for {model_name!r}; pass version (from the training task).")
    try:
        return client.get_model_version(model_name, version)
    except MlflowException as error:
        raise ConfigurationError(
            f"{model_name!r} has no version {version!r} in the registry ({error.error_code}); check model_name "
            "and the version passed from the training task."
        ) from error


def score_version(hook: MlflowHook, model_name: str, version: str, frame: Any, target: str, task_type: str) -> dict:
    from mlops_provider.core.training import score_model

    model = hook.load_sklearn_model(f"models:/{model_name}/{version}")
    return score_model(model, frame, target, task_type)


class RollbackModelOperator(BaseOperator):
    """Move ``model_name@alias`` back to the version it pointed at before, or to ``to_version``.

    Without ``to_version`` the target is the ``from_version`` of the history entry that put the current
    version in place. The move is recorded in the same history as promotions, keeps the replaced version
    under ``previous_<alias>``, and raises the Asset event ``mlflow://<model>@<alias>``. A retry of the same
    task in the same DAG run does not roll back twice. Returns ``{model_name, alias, from_version,
    to_version, history_seq}``.
    """

    template_fields: Sequence[str] = ("model_name", "alias", "to_version", "reason")
    ui_color = "#f6c1c1"

    def __init__(
        self,
        *,
        model_name: str,
        alias: str = "champion",
        to_version: str | int | None = None,
        reason: str = "manual rollback",
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        lock_timeout: float = 600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**_with_alias_outlet(kwargs))
        self.model_name = model_name
        self.alias = alias
        self.to_version = to_version
        self.reason = reason
        self.mlflow_conn_id = mlflow_conn_id
        self.lock_timeout = lock_timeout

    def execute(self, context: Any) -> dict[str, Any]:
        from mlops_provider.core.registry import PromotionLock, alias_version, move_alias, read_history

        client = MlflowHook(mlflow_conn_id=self.mlflow_conn_id).get_conn()
        owner = f"{context['ti'].dag_id}/{context['ti'].run_id}/{context['ti'].task_id}"
        with PromotionLock(client, self.model_name, owner=owner, timeout=self.lock_timeout):
            history = read_history(client, self.model_name)
            done = find_own_move(history, context, "rollback")
            if done is not None:
                self.log.info("This task already rolled back %s@%s (history #%s); nothing to do.",
                              self.model_name, self.alias, done["seq"])  # fmt: skip
                return self._result(done)
            current = alias_version(client, self.model_name, self.alias)
            if current is None:
                raise ConfigurationError(
                    f"{self.model_name}@{self.alias} points at no version; there is nothing to roll back."
                )
            target = self._target(history, current)
            entry = move_alias(
                client,
                self.model_name,
                self.alias,
                target,
                expected_from=current,
                action="rollback",
                reason=str(self.reason),
                actor=actor(context),
            )
        self.log.info("Rolled %s@%s back from version %s to %s (history #%s): %s",
                      self.model_name, self.alias, current, target, entry["seq"], self.reason)  # fmt: skip
        emit_alias_moved(context, self.model_name, self.alias, entry)
        return self._result(entry)

    def _target(self, history: list[dict[str, Any]], current: str) -> str:
        if self.to_version not in (None, "", "None"):
            target = str(self.to_version)
            if target == current:
                raise ConfigurationError(
                    f"{self.model_name}@{self.alias} already points at version {target}; choose another version."
                )
            return target
        for entry in reversed(history):
            if entry.get("alias") == self.alias and entry.get("to_version") == current and entry.get("from_version"):
                return str(entry["from_version"])
        raise ConfigurationError(
            f"The history of {self.model_name!r} records no earlier version of @{self.alias} than {current}; "
            "pass to_version to choose the version to go back to."
        )

    def _result(self, entry: dict[str, Any]) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "alias": self.alias,
            "from_version": entry["from_version"],
            "to_version": entry["to_version"],
            "history_seq": entry["seq"],
        }
