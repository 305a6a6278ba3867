"""Registry operators: judge a challenger (the gate), promote it, or roll an alias back, with an audit trail."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider import arguments
from mlops_provider.assets import model_alias_asset, model_alias_events
from mlops_provider.core import alerts, tags
from mlops_provider.core.errors import ConfigurationError
from mlops_provider.links.model_card import ModelCardLink
from mlops_provider.operators.alerting import AlertingMixin
from mlops_provider.operators.context import task_identity, triggering_user
from mlops_provider.operators.mixins import DATASET_FIELDS, MLFLOW_FIELDS, DatasetHookMixin, MlflowHookMixin

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops_provider.core.registry import PromotionOutcome
    from mlops_provider.hooks.datasets import DatasetHook
    from mlops_provider.hooks.mlflow import MlflowHook

ON_REJECT = ("skip", "fail")


def _with_alias_outlet(kwargs: dict[str, Any]) -> dict[str, Any]:
    outlets = list(kwargs.get("outlets") or [])
    if not any(getattr(o, "name", None) == model_alias_events().name for o in outlets):
        outlets.append(model_alias_events())
    kwargs["outlets"] = outlets
    return kwargs


def emit_alias_moved(context: Context, model_name: str, alias: str, entry: dict[str, Any]) -> None:
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


def _check_lock_stale_after(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigurationError(
            f"lock_stale_after={value!r} must be a positive number of seconds: how old a registry lock must be "
            "before a promotion takes it over from a holder that died (default 1800)."
        )


def score_version(
    hook: MlflowHook,
    model_name: str,
    version: str,
    frame: Any,
    target: str,
    task_type: str,
    *,
    slice_columns: list[str] | None = None,
    sensitive_columns: list[str] | None = None,
    explanations: dict[str, str] | None = None,
) -> dict:
    """A version's metrics on ``frame``; with slice/sensitive columns also its per-slice and fairness metrics,
    computed as training computes them (``explanations`` receives the groups and numbers behind them)."""
    from mlops_provider.core.training import score_model

    model = hook.load_sklearn_model(f"models:/{model_name}/{version}")
    return score_model(
        model, frame, target, task_type,
        slice_columns=slice_columns, sensitive_columns=sensitive_columns, explanations=explanations,
    )  # fmt: skip


def group_settings(version: Any) -> tuple[list[str], list[str]]:
    """The ``slice_columns`` and ``sensitive_columns`` a version was trained with (from its tags)."""
    import json

    return tuple(  # type: ignore[return-value]
        [str(c) for c in json.loads(version.tags.get(tag) or "[]")]
        for tag in (tags.SLICE_COLUMNS, tags.SENSITIVE_COLUMNS)
    )


def read_holdout(
    hook: MlflowHook,
    dataset_hook: DatasetHook,
    version: Any,
    *,
    given_uri: str | None = None,
    fix: str = "pass evaluation_dataset_uri with labelled data neither model trained on",
) -> tuple[Any, str]:
    """The rows a registered version was held out on, and their URI: ``given_uri`` when given, else the holdout
    TrainModelOperator stored with the version (tag ``HOLDOUT``) with its rows' other columns (``HOLDOUT_CONTEXT``)
    joined back, so that a model trained on other features can be scored on the same rows. ``fix`` ends the
    error for a version without a stored holdout."""
    uri = given_uri or version.tags.get(tags.HOLDOUT)
    if not uri:
        raise ConfigurationError(f"{version.name} v{version.version} has no stored holdout ({tags.HOLDOUT}); {fix}.")
    frame = hook.read_dataset(uri, dataset_hook)
    context_uri = None if given_uri else version.tags.get(tags.HOLDOUT_CONTEXT)
    if context_uri:  # the holdout rows' other columns, for a champion that uses other features
        from mlops_provider.core.training import holdout_with_context

        frame = holdout_with_context(frame, hook.read_dataset(context_uri, dataset_hook))
    return frame, uri


class ChallengerGateBase(AlertingMixin, MlflowHookMixin, DatasetHookMixin):
    """The arguments and the run of the gate, shared by EvaluateChallengerOperator and PromoteModelOperator.

    :param model_name: the registered model.
    :param version: the challenger version (templated), e.g. ``train.output["version"]``.
    :param thresholds: the gate (templated dict), per metric: ``min`` / ``max`` value thresholds, and change
        thresholds against the champion, ``min_absolute_change`` / ``min_relative_change`` (with
        ``greater_is_better``, inferred from the metric name). Metric names as TrainModelOperator logs
        them: accuracy, f1_macro, roc_auc, log_loss; rmse, mae, r2; and, for a challenger trained with
        ``slice_columns`` / ``sensitive_columns``, ``slice.<column>.worst_<metric>``,
        ``fairness.<column>.demographic_parity_difference`` and the like (``core.slicing``), computed for both
        models on the challenger's groups; a rejection on one names the group and the numbers.
    :param primary_metric / min_improvement: the usual gate without writing ``thresholds``: the challenger
        must beat the champion on ``primary_metric`` by ``min_improvement`` (default 0: at least as good).
        Without ``primary_metric`` the metric follows the challenger's task type (roc_auc for
        classification, rmse for regression). Ignored when ``thresholds`` is given.
    :param evaluation_dataset_uri: labelled data neither model trained on (templated); default: the
        challenger's holdout, stored with it by TrainModelOperator.
    :param target_column: the label column of the evaluation data (default: the challenger's target).
    :param alias: the alias the challenger competes for (default ``champion``).
    :param on_reject: ``skip`` (default: this task and downstream deploy steps are skipped, the run stays
        green) or ``fail``.
    :param live_evidence: also require the challenger, scored in shadow, to beat the champion on the same
        labelled live rows (templated dict: ``metric``, ``min_rows``, ``min_windows``, ``min_improvement``,
        ``significance``; see ``core.performance.evidence``). Too little evidence yet is the decision
        ``waiting``: recorded like any other, downstream steps skipped, the run green whatever ``on_reject``.
    :param notifiers: Airflow notifiers told of a rejection (the alert ``gate_rejected``: the failed checks and
        both models' numbers, links to the MLflow model and the task); see ``operators.alerting``.
    :param alert_on: ``["gate_rejected"]`` (default) or ``[]``.

    A retry of the same task in the same DAG run returns the decision already made. The challenger's model card
    (and, after a promotion, the replaced champion's) is regenerated with the decision; the "Model card" link
    opens it. A card that cannot be written is a warning and the tag ``mlops.card.stale``, never a failed gate.
    """

    template_fields: Sequence[str] = (
        "model_name",
        "version",
        "thresholds",
        "primary_metric",
        "min_improvement",
        "evaluation_dataset_uri",
        "target_column",
        "alias",
        "live_evidence",
        *MLFLOW_FIELDS,
        *DATASET_FIELDS,
    )
    template_fields_renderers = {"thresholds": "json", "live_evidence": "json"}
    operator_extra_links = (ModelCardLink(),)
    ui_color = "#c9e4de"
    alert_events = (alerts.GATE_REJECTED,)
    moves_alias: bool = False  # class default; an instance may override it (see PromoteModelOperator)

    def __init__(
        self,
        *,
        model_name: str,
        version: str | int,
        thresholds: dict[str, dict[str, Any]] | str | None = None,
        primary_metric: str | None = None,
        min_improvement: float | str = 0.0,
        evaluation_dataset_uri: str | None = None,
        target_column: str | None = None,
        alias: str = "champion",
        on_reject: str = "skip",
        max_conflict_retries: int = 10,
        lock_timeout: float = 600.0,
        lock_stale_after: float = 1800.0,
        live_evidence: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        from mlops_provider.core.performance.evidence import check_live_evidence
        from mlops_provider.core.registry import check_scored_metrics, validate_thresholds

        if on_reject not in ON_REJECT:
            raise ConfigurationError(f"on_reject={on_reject!r} is not one of {ON_REJECT}.")
        _check_lock_stale_after(lock_stale_after)
        if isinstance(thresholds, dict):  # a literal gate is checked when the DAG is parsed
            check_scored_metrics(validate_thresholds(thresholds))
        if arguments.is_literal(model_name):
            arguments.model_name(model_name)
        if isinstance(live_evidence, dict):
            check_live_evidence(live_evidence)
        super().__init__(**kwargs)
        self.model_name = model_name
        self.live_evidence = live_evidence
        self.version = version
        self.thresholds = thresholds
        self.primary_metric = primary_metric
        self.min_improvement = min_improvement
        self.evaluation_dataset_uri = evaluation_dataset_uri
        self.target_column = target_column
        self.alias = alias
        self.on_reject = on_reject
        self.max_conflict_retries = max_conflict_retries
        self.lock_timeout = lock_timeout
        self.lock_stale_after = lock_stale_after

    def approver(self) -> str | None:
        return None

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.performance.evidence import check_live_evidence, decide_on_live_evidence
        from mlops_provider.core.registry import check_scored_metrics, promote_version

        model_name = arguments.model_name(self.model_name)
        self.alias = arguments.required_text(self.alias, "alias")
        version = arguments.optional_text(self.version, "version")
        if version is None:
            raise ConfigurationError(
                f"No challenger version given for {model_name!r}; pass version (from the training task)."
            )
        challenger = self.mlflow_hook.get_model_version(model_name, version)
        thresholds = self._thresholds(challenger)
        slices, sensitive = group_settings(challenger)  # both models are measured on the challenger's groups
        check_scored_metrics(  # before anything is scored
            thresholds, challenger.tags.get(tags.TASK_TYPE), slice_columns=slices, sensitive_columns=sensitive
        )
        live_settings = check_live_evidence(arguments.optional_dict(self.live_evidence, "live_evidence"))
        frame, target, task_type = self._evaluation_data(challenger)
        identity = task_identity(context)
        explained: dict[str, dict[str, str]] = {}  # version -> metric -> the groups and numbers behind it
        outcome = promote_version(
            self.mlflow_hook.get_conn(),
            model_name,
            version,
            thresholds=thresholds,
            score=lambda v: score_version(
                self.mlflow_hook,
                model_name,
                v,
                frame,
                target,
                task_type,
                slice_columns=slices,
                sensitive_columns=sensitive,
                explanations=explained.setdefault(v, {}),
            ),
            explain=explained.get,
            alias=self.alias,
            identity=identity,
            actor=identity.actor(user=triggering_user(context) or "", approved_by=self.approver() or ""),
            max_conflict_retries=self.max_conflict_retries,
            lock_timeout=self.lock_timeout,
            lock_stale_after=self.lock_stale_after,
            log=self.log,
            move=self.moves_alias,
            live_evidence=(
                None
                if live_settings is None
                else lambda champion: decide_on_live_evidence(
                    self.mlflow_hook.get_model_version(model_name, version).tags, champion, live_settings
                )
            ),
        )
        if outcome.replayed:
            self.log.info("This task already decided on %s v%s in this DAG run; returning that decision.",
                          model_name, version)  # fmt: skip
        self._refresh_model_cards(context, outcome)
        return self._finish(context, outcome)

    def _refresh_model_cards(self, context: Context, outcome: PromotionOutcome) -> None:
        """The challenger's card shows the decision; after a move, the replaced champion's shows it was replaced.
        Before ``_finish``, which may skip or fail the task: a rejection is on the card too."""
        from mlops_provider.operators.model_card import refresh_model_cards

        replaced = outcome.champion_version if outcome.promoted and outcome.history_seq is not None else None
        refresh_model_cards(
            self, context, self.mlflow_hook, outcome.model_name, [outcome.version, replaced],
            trigger="promotion" if outcome.promoted else "gate decision", link_version=outcome.version,
        )  # fmt: skip

    def _finish(self, context: Context, outcome: PromotionOutcome) -> dict[str, Any]:
        result = outcome.to_dict()
        self.lineage_result = result  # OpenLineage reports the decision also when it skips or fails the task
        if outcome.waiting:
            context["ti"].xcom_push(key="gate_decision", value=result)
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(
                f"{outcome.model_name} v{outcome.version} waits for live evidence: {'; '.join(outcome.reasons)} "
                "(decision 'waiting': downstream deploy steps are skipped; a later run decides)"
            )
        if not outcome.gate_passed:
            context["ti"].xcom_push(key="gate_decision", value=result)
            message = f"{outcome.model_name} v{outcome.version} rejected: {'; '.join(outcome.reasons)}"
            if outcome.note:
                message += f" ({outcome.note})"
            alert = alerts.gate_alert(result)
            self.send_alert(context, alert.with_links(*self.alert_links(context, outcome.model_name)))
            if self.on_reject == "fail":
                from airflow.sdk.exceptions import AirflowFailException

                raise AirflowFailException(message)
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(message + " (on_reject='skip': downstream deploy steps are skipped)")
        self.log.info("%s v%s passed the gate; %s@%s stays at v%s until a promotion moves it.",
                      outcome.model_name, outcome.version, outcome.model_name, self.alias,
                      outcome.champion_version)  # fmt: skip
        return result

    def _thresholds(self, challenger: Any) -> dict[str, dict[str, Any]]:
        from mlops_provider.core.registry import primary_metric_gate, validate_thresholds

        given = arguments.optional_dict(self.thresholds, "thresholds")
        if given is not None:
            return validate_thresholds(given)
        improvement = arguments.optional_float(self.min_improvement, "min_improvement") or 0.0
        metric = arguments.optional_text(self.primary_metric, "primary_metric")
        return primary_metric_gate(metric, improvement, challenger.tags.get(tags.TASK_TYPE))

    def _evaluation_data(self, challenger: Any) -> tuple[Any, str, str]:
        target = arguments.optional_text(self.target_column, "target_column") or challenger.tags.get(tags.TARGET_COLUMN)
        task_type = challenger.tags.get(tags.TASK_TYPE)
        if not target or not task_type:
            raise ConfigurationError(
                f"{challenger.name} v{challenger.version} has no {tags.TARGET_COLUMN}/{tags.TASK_TYPE} tags (it "
                "was not trained by TrainModelOperator); pass target_column and train it with TrainModelOperator."
            )
        given = arguments.optional_text(self.evaluation_dataset_uri, "evaluation_dataset_uri")
        frame, uri = read_holdout(self.mlflow_hook, self.dataset_hook, challenger, given_uri=given)
        if target not in frame.columns:
            raise ConfigurationError(
                f"The evaluation data {uri!r} has no target column {target!r}; it has {list(frame.columns)[:20]}."
            )
        self.log.info("Scoring on %s (%d rows, target %r).", uri, len(frame), target)
        return frame, target, task_type


class EvaluateChallengerOperator(ChallengerGateBase):
    """Run the gate on a challenger version and record the decision, without moving any alias.

    The challenger and the current ``alias`` holder are scored on the same data; the decision (``passed``
    or ``rejected``, with the numbers) goes to the challenger version's tags. Put it before a human approval
    and a ``PromoteModelOperator``, which scores again under the registry lock before it moves the alias, so
    an approval never promotes over a champion that changed meanwhile. A rejection skips downstream tasks
    (``on_reject="skip"``) or fails (``"fail"``). Returns ``{model_name, version, alias, promoted (False),
    gate_passed, reasons, challenger_metrics, champion_metrics, champion_version, ...}``. Arguments: see
    ``ChallengerGateBase``.
    """


class PromoteModelOperator(ChallengerGateBase):
    """Score a challenger version and the current champion on the same data; move the alias if the gate passes.

    Promotions of one model never interleave: the alias moves under a registry-wide lock and only if it still
    points where it pointed when scoring started (else the challenger is re-scored against the new champion).
    Every decision is written to the challenger version's tags; every alias move to the model's history,
    with the task's identity and ``approved_by``; the replaced version keeps ``previous_<alias>``. A retry of
    the same task in the same DAG run returns the decision already made. Returns ``{model_name, version,
    alias, promoted, reasons, challenger_metrics, champion_metrics, champion_version, history_seq}``.

    :param approved_by: who approved the move (templated; text, or an approval's ``responded_by_user``).
    :param max_conflict_retries: how often to re-score when another promotion moved the alias meanwhile.
    :param lock_timeout: seconds to wait for the registry lock.
    :param lock_stale_after: a registry lock older than this many seconds (default 1800) belongs to a promotion
        that died holding it: it is taken over, and the takeover recorded in the model's history.
    :param evaluate_only: deprecated: use ``EvaluateChallengerOperator``, which does the same.

    Other arguments: see ``ChallengerGateBase``.
    """

    template_fields: Sequence[str] = (*ChallengerGateBase.template_fields, "approved_by")
    moves_alias: bool = True

    def __init__(self, *, approved_by: Any = None, evaluate_only: bool = False, **kwargs: Any) -> None:
        if evaluate_only:
            warnings.warn(
                "PromoteModelOperator(evaluate_only=True) is deprecated and goes in the next release; use "
                "EvaluateChallengerOperator, which records the gate decision without moving the alias.",
                DeprecationWarning,
                stacklevel=3,
            )
        super().__init__(**(kwargs if evaluate_only else _with_alias_outlet(kwargs)))
        self.evaluate_only = evaluate_only
        self.moves_alias = not evaluate_only
        self.approved_by = approved_by

    def approver(self) -> str | None:
        return arguments.user_name(self.approved_by)

    def _finish(self, context: Context, outcome: PromotionOutcome) -> dict[str, Any]:
        if not self.moves_alias or not outcome.promoted:
            return super()._finish(context, outcome)
        if outcome.history_seq is not None:
            # Also on a replay: the earlier try's event was lost if that try did not succeed (at least once).
            entry = {"to_version": outcome.version, "from_version": outcome.champion_version,
                     "action": "promote", "seq": outcome.history_seq}  # fmt: skip
            emit_alias_moved(context, outcome.model_name, self.alias, entry)
        self.log.info("%s v%s is %s@%s.", outcome.model_name, outcome.version, outcome.model_name, self.alias)
        return outcome.to_dict()


class RollbackModelOperator(MlflowHookMixin):
    """Move ``model_name@alias`` back to the version it pointed at before, or to ``to_version``.

    Without ``to_version`` the target is the ``from_version`` of the history entry that put the current
    version in place. The move is recorded in the same history as promotions, keeps the replaced version
    under ``previous_<alias>``, and raises the Asset event ``mlflow://<model>@<alias>``. A retry of the same
    task in the same DAG run does not roll back twice. Both versions' model cards are regenerated (the one moved
    off says "rolled back"). Returns ``{model_name, alias, from_version,
    to_version, history_seq}``.

    :param lock_timeout: seconds to wait for the registry lock.
    :param lock_stale_after: a registry lock older than this many seconds (default 1800) belongs to a promotion
        that died holding it: it is taken over, and the takeover recorded in the model's history.
    """

    template_fields: Sequence[str] = ("model_name", "alias", "to_version", "reason", *MLFLOW_FIELDS)
    ui_color = "#f6c1c1"

    def __init__(
        self,
        *,
        model_name: str,
        alias: str = "champion",
        to_version: str | int | None = None,
        reason: str = "manual rollback",
        lock_timeout: float = 600.0,
        lock_stale_after: float = 1800.0,
        **kwargs: Any,
    ) -> None:
        _check_lock_stale_after(lock_stale_after)
        super().__init__(**_with_alias_outlet(kwargs))
        self.model_name = model_name
        self.alias = alias
        self.to_version = to_version
        self.reason = reason
        self.lock_timeout = lock_timeout
        self.lock_stale_after = lock_stale_after

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.registry import PromotionLock, alias_version, find_own_move, move_alias, read_history

        self.model_name = arguments.model_name(self.model_name)
        self.alias = arguments.required_text(self.alias, "alias")
        self.mlflow_hook.get_registered_model(self.model_name)  # before the lock: no lock for a missing model
        target_version = arguments.optional_text(self.to_version, "to_version")
        if target_version is not None:
            self.mlflow_hook.get_model_version(self.model_name, target_version)
        client = self.mlflow_hook.get_conn()
        identity = task_identity(context)
        with PromotionLock(
            client, self.model_name, owner=identity.owner, timeout=self.lock_timeout, stale_after=self.lock_stale_after
        ):
            history = read_history(client, self.model_name)
            done = find_own_move(history, identity, "rollback")
            if done is not None:
                self.log.info("This task already rolled back %s@%s (history #%s); nothing to do.",
                              self.model_name, self.alias, done["seq"])  # fmt: skip
                self._refresh_model_cards(context, done)  # the try that moved it may have died before its cards
                return self._result(done)
            current = alias_version(client, self.model_name, self.alias)
            if current is None:
                aliases = sorted(self.mlflow_hook.get_registered_model(self.model_name).aliases)
                raise ConfigurationError(
                    f"{self.model_name}@{self.alias} points at no version; there is nothing to roll back. Check "
                    f"alias: the model's aliases are {aliases or 'none'}."
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
                actor=identity.actor(user=triggering_user(context) or ""),
            )
        self.log.info("Rolled %s@%s back from version %s to %s (history #%s): %s",
                      self.model_name, self.alias, current, target, entry["seq"], self.reason)  # fmt: skip
        emit_alias_moved(context, self.model_name, self.alias, entry)
        self._refresh_model_cards(context, entry)
        return self._result(entry)

    def _refresh_model_cards(self, context: Context, entry: dict[str, Any]) -> None:
        from mlops_provider.operators.model_card import refresh_model_cards

        refresh_model_cards(
            self, context, self.mlflow_hook, self.model_name, [entry["from_version"], entry["to_version"]],
            trigger="rollback",
        )  # fmt: skip

    def _target(self, history: list[dict[str, Any]], current: str) -> str:
        target = arguments.optional_text(self.to_version, "to_version")
        if target is not None:
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
