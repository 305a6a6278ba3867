"""Progressive rollout: put a gated challenger in shadow or canary (StartRolloutOperator), then judge it on live
traffic and promote it or roll it back (AnalyzeRolloutOperator). The decision is ``core.rollout``'s; the scoring
service ``mlops-serve`` follows the aliases and the canary share these operators write."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from mlops_provider import arguments
from mlops_provider.core import tags
from mlops_provider.core.durations import as_duration
from mlops_provider.core.errors import ConfigurationError, ServiceUnreachableError
from mlops_provider.core.rollout import (
    ACTION_PROMOTE,
    ACTION_ROLLBACK,
    ACTION_START,
    ALIASES,
    CANARY,
    EXTEND,
    OUTCOMES,
    PROMOTE,
    ROLLBACK,
    SHADOW,
    RolloutSettings,
    check_gate_passed,
    check_mode,
    check_share,
    share_text,
)
from mlops_provider.operators.context import task_identity, triggering_user
from mlops_provider.operators.mixins import MLFLOW_FIELDS, MlflowHookMixin
from mlops_provider.operators.performance import LIVE_WINDOW_FIELDS, LiveWindow

if TYPE_CHECKING:
    from airflow.sdk import Context

SERVICE_TIMEOUT = 10.0


def _service_call(url: str, path: str, *, method: str = "GET") -> str:
    """The body of ``{url}{path}``; an unreachable service or an error status is a ``ServiceUnreachableError``."""
    from urllib.error import URLError
    from urllib.request import Request, urlopen

    target = url.rstrip("/") + path
    request = Request(target, data=b"" if method == "POST" else None, method=method)
    try:
        with urlopen(request, timeout=SERVICE_TIMEOUT) as response:  # noqa: S310 - the operator's own service URLs
            return response.read().decode("utf-8", errors="replace")
    except (URLError, OSError, ValueError) as error:
        raise ServiceUnreachableError(
            f"{method} {target} failed ({error}); check service_urls (the base URLs of the running mlops-serve "
            "replicas, e.g. http://scoring:8080)."
        ) from None


def _service_urls(value: Any) -> list[str]:
    urls = arguments.optional_list(value, "service_urls") or []
    bad = [u for u in urls if not u.startswith(("http://", "https://"))]
    if bad:
        raise ConfigurationError(
            f"service_urls {bad} are not http(s) URLs; give the base URL of each mlops-serve replica, e.g. "
            "['http://scoring:8080']."
        )
    return urls


class _RolloutMoves:
    """The lock and the audit shared by both operators (mixed into MlflowHookMixin subclasses)."""

    model_name: str
    lock_timeout: float
    lock_stale_after: float
    service_urls: Any
    mlflow_hook: Any
    log: Any

    def _lock(self, client: Any, context: Context) -> Any:
        from mlops_provider.core.registry import PromotionLock

        identity = task_identity(context)
        return PromotionLock(client, self.model_name, owner=identity.owner, timeout=self.lock_timeout,
                             stale_after=self.lock_stale_after, actor=self._actor(context))  # fmt: skip

    @staticmethod
    def _actor(context: Context) -> dict[str, str]:
        return task_identity(context).actor(user=triggering_user(context) or "")

    def _refresh(self, urls: list[str]) -> list[dict[str, Any]]:
        """POST /refresh to each replica so it follows the move at once; a replica that does not answer follows
        within its own --refresh-seconds anyway, so this only logs a warning."""
        done = []
        for url in urls:
            try:
                _service_call(url, "/refresh", method="POST")
                done.append({"url": url, "refreshed": True})
            except ServiceUnreachableError as error:
                self.log.warning("%s The service picks the change up at its next periodic refresh.", error)
                done.append({"url": url, "refreshed": False, "error": str(error)})
        return done

    def _end_stage(self, client: Any, alias: str, version: str) -> None:
        """Remove ``alias`` when it still points at ``version``; no canary traffic for a canary that ended."""
        from mlops_provider.core.registry import alias_version

        if alias_version(client, self.model_name, alias) == version:
            client.delete_registered_model_alias(self.model_name, alias)
        if alias == ALIASES[CANARY]:
            client.set_registered_model_tag(self.model_name, tags.CANARY_SHARE, "0")


class StartRolloutOperator(_RolloutMoves, MlflowHookMixin):
    """Put a challenger the gate passed in shadow or canary: move ``model_name@shadow`` (or ``@canary``) to it.

    In ``mode="shadow"`` the scoring service scores every request with the challenger too and logs its answers
    (role ``shadow``) without sending them; in ``mode="canary"`` the challenger answers ``canary_share`` of the
    requests (the registered-model tag ``mlops.rollout.canary_share``). A version the gate did not pass (tag
    ``mlops.gate.decision`` not ``passed``/``promoted``), a model without a champion, or the champion itself is
    refused before anything moves. The move runs under the promotion lock and is recorded in the model's history
    (action ``rollout_start``); starting the canary of a version removes its shadow alias (and starting a shadow
    removes its canary alias and share). A retry of the task in the same DAG run moves nothing twice. With
    ``service_urls``, each replica is told to ``POST /refresh`` after the move.

    :param model_name: the registered model (templated).
    :param version: the challenger (templated), e.g. ``gate.output["version"]``.
    :param mode: ``"shadow"`` or ``"canary"`` (templated).
    :param canary_share: the share of requests the canary answers, in [0, 1] (templated; default 0.1).
    :param service_urls: base URLs of the ``mlops-serve`` replicas to refresh (templated list; optional).
    :param lock_timeout / lock_stale_after: as for PromoteModelOperator.

    Returns ``{model_name, version, mode, alias, canary_share, champion_version, history_seq, replayed,
    refreshed}``.
    """

    template_fields: Sequence[str] = ("model_name", "version", "mode", "canary_share", "service_urls", *MLFLOW_FIELDS)
    ui_color = "#e8dff5"

    def __init__(
        self,
        *,
        model_name: str,
        version: Any,
        mode: str = SHADOW,
        canary_share: Any = 0.1,
        service_urls: Any = None,
        lock_timeout: float = 600.0,
        lock_stale_after: float = 1800.0,
        **kwargs: Any,
    ) -> None:
        if arguments.is_literal(mode):
            check_mode(mode)
        if arguments.is_literal(canary_share):
            check_share(canary_share)
        if arguments.is_literal(model_name):
            arguments.model_name(model_name)
        if arguments.is_literal(service_urls):
            _service_urls(service_urls)
        super().__init__(**kwargs)
        self.model_name = model_name
        self.version = version
        self.mode = mode
        self.canary_share = canary_share
        self.service_urls = service_urls
        self.lock_timeout = lock_timeout
        self.lock_stale_after = lock_stale_after

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.registry import alias_version, find_own_move, move_alias, read_history

        self.model_name = arguments.model_name(self.model_name)
        mode = check_mode(self.mode)
        share = check_share(self.canary_share) if mode == CANARY else 0.0
        urls = _service_urls(self.service_urls)
        version = arguments.optional_text(self.version, "version")
        if version is None:
            raise ConfigurationError(
                f"No version to roll out for {self.model_name!r}; pass version (the gate's output['version'])."
            )
        self.mlflow_hook.get_registered_model(self.model_name)
        check_gate_passed(self.model_name, version, self.mlflow_hook.get_model_version(self.model_name, version).tags)
        client = self.mlflow_hook.get_conn()
        champion = alias_version(client, self.model_name, tags.CHAMPION_ALIAS)
        if champion is None:
            raise ConfigurationError(
                f"{self.model_name} has no @{tags.CHAMPION_ALIAS}: there is nothing to compare the challenger with "
                "in shadow or canary. Promote a first version with PromoteModelOperator."
            )
        if champion == version:
            raise ConfigurationError(
                f"{self.model_name} v{version} is already @{tags.CHAMPION_ALIAS}; roll out another version."
            )
        alias, other = ALIASES[mode], ALIASES[CANARY if mode == SHADOW else SHADOW]
        identity = task_identity(context)
        with self._lock(client, context):
            done = find_own_move(read_history(client, self.model_name), identity, ACTION_START)
            entry = done or move_alias(
                client, self.model_name, alias, version,
                expected_from=alias_version(client, self.model_name, alias), action=ACTION_START,
                reason=f"{mode} rollout of v{version} against champion v{champion}"
                + (f", {share:.0%} of requests" if mode == CANARY else ""),
                actor=self._actor(context),
            )  # fmt: skip
            self._end_stage(client, other, version)
            if mode == CANARY:
                client.set_registered_model_tag(self.model_name, tags.CANARY_SHARE, share_text(share))
        self.log.info("%s v%s is @%s (champion v%s%s); history #%s%s.", self.model_name, version, alias, champion,
                      f", canary share {share:g}" if mode == CANARY else "", entry["seq"],
                      " (recorded by an earlier try)" if done else "")  # fmt: skip
        return {
            "model_name": self.model_name,
            "version": version,
            "mode": mode,
            "alias": alias,
            "canary_share": share,
            "champion_version": champion,
            "history_seq": entry["seq"],
            "started_at": entry["time"],
            "replayed": done is not None,
            "refreshed": self._refresh(urls),
        }


class AnalyzeRolloutOperator(_RolloutMoves, LiveWindow):
    """Judge the challenger in shadow or canary on its labelled live predictions; promote it, keep it, or roll it
    back (``core.rollout``: the tests, thresholds and outcomes).

    The data arguments are ``LiveWindow``'s (``labels_uri``, ``label_column``, ``id_columns``,
    ``prediction_log_uri``, ``label_timestamp_column``); the window of prediction times defaults to
    ``[the stage's start (its rollout_start history entry), now)``. Outcomes:

    * ``promote``: with ``promote=True`` (default) ``@champion`` moves to the challenger under the lock (history
      ``rollout_promote``, Asset event ``mlflow://<model>@champion``), the stage's alias is removed and the canary
      share set to 0; with ``promote=False``
      (a shadow stage before a canary) nothing moves;
    * ``rollback``: the stage's alias is removed, the share set to 0, history ``rollout_rollback``;
    * ``extend``: nothing changes. With ``max_soak``, the task waits instead (deferring, ``poll_interval`` at a
      time) until the outcome is not ``extend`` or ``max_soak`` has passed since the stage started; then
      ``on_timeout`` (default ``"rollback"``) is the outcome.

    Outcomes in ``skip_on`` skip the task after acting (downstream tasks skip), e.g. ``skip_on=["rollback",
    "extend"]`` for a shadow stage. A retry in the same DAG run that already moved returns the recorded decision.

    :param mode: ``"shadow"`` or ``"canary"`` (templated).
    :param version: the challenger (templated); default: the version the stage's alias points at.
    :param primary_metric: what the comparison is on (default accuracy, rmse for regressors).
    :param significance / min_improvement: the one-sided tests' level and threshold (negative: a tolerance).
    :param min_labelled_rows: labelled rows of each version a decision needs (default 200).
    :param soak_time: the least time in the stage before a promotion (timedelta or seconds; templated).
    :param service_urls: ``mlops-serve`` replicas whose ``/metrics`` give the error-rate and latency guardrails
        (``max_error_rate_increase``, ``max_latency_ratio``, ``min_requests``) and that are refreshed after a move.

    Returns ``{outcome, statement, mode, champion_version, challenger_version, metric, test, challenger_rows,
    champion_rows, better, worse, guardrails, history_seq, window_start, window_end, ...}`` (also pushed as the XCom
    ``rollout_decision``).
    """

    template_fields: Sequence[str] = (
        *LIVE_WINDOW_FIELDS, "mode", "version", "primary_metric", "min_improvement", "soak_time", "max_soak",
        "service_urls",
    )  # fmt: skip
    ui_color = "#e8dff5"

    def __init__(
        self,
        *,
        mode: str = CANARY,
        version: Any = None,
        primary_metric: str | None = None,
        significance: float = 0.05,
        min_improvement: Any = 0.0,
        min_labelled_rows: int = 200,
        max_error_rate_increase: float = 0.0,
        max_latency_ratio: float = 1.5,
        min_requests: int = 100,
        soak_time: Any = 0,
        max_soak: Any = None,
        poll_interval: Any = timedelta(minutes=30),
        on_timeout: str = ROLLBACK,
        promote: bool = True,
        skip_on: Sequence[str] = (),
        service_urls: Any = None,
        lock_timeout: float = 600.0,
        lock_stale_after: float = 1800.0,
        **kwargs: Any,
    ) -> None:
        if arguments.is_literal(mode):
            check_mode(mode)
        if on_timeout not in OUTCOMES:
            raise ConfigurationError(f"on_timeout={on_timeout!r} is not one of {list(OUTCOMES)}.")
        unknown = sorted(set(skip_on) - set(OUTCOMES))
        if isinstance(skip_on, str) or unknown:
            raise ConfigurationError(f"skip_on={skip_on!r} must be a list of outcomes among {list(OUTCOMES)}.")
        if arguments.is_literal(soak_time):
            as_duration(soak_time, "soak_time")
        if arguments.is_literal(service_urls):
            _service_urls(service_urls)
        if arguments.is_literal(max_soak) and not arguments.is_unset(max_soak):
            as_duration(max_soak, "max_soak")
        self.poll_interval = as_duration(poll_interval, "poll_interval")
        if self.poll_interval <= timedelta(0):
            raise ConfigurationError(f"poll_interval={poll_interval!r} must be longer than 0, e.g. 30 minutes.")
        from mlops_provider.operators.registry import _with_alias_outlet

        super().__init__(min_rows=min_labelled_rows, **(_with_alias_outlet(kwargs) if promote else kwargs))
        self.rollout_settings: dict[str, Any] = dict(
            metric=primary_metric, significance=significance, min_rows=min_labelled_rows,
            max_error_rate_increase=max_error_rate_increase, max_latency_ratio=max_latency_ratio,
            min_requests=min_requests,
        )  # fmt: skip
        if arguments.is_literal(primary_metric) and arguments.is_literal(min_improvement):
            given = arguments.optional_float(min_improvement, "min_improvement")
            RolloutSettings(**self.rollout_settings, min_improvement=given or 0.0)
        self.mode = mode
        self.version = version
        self.primary_metric = primary_metric
        self.min_improvement = min_improvement
        self.soak_time = soak_time
        self.max_soak = max_soak
        self.on_timeout = on_timeout
        self.promote = promote
        self.skip_on = tuple(skip_on)
        self.service_urls = service_urls
        self.lock_timeout = lock_timeout
        self.lock_stale_after = lock_stale_after
        self._stage_start: datetime | None = None

    def live_window(self, context: Context) -> tuple[datetime, datetime]:
        from mlops_provider.core.windows import resolve_window

        window = resolve_window(self.window_start, self.window_end, default_start=self._stage_start,
                                default_end=datetime.now(timezone.utc), allow_naive=False)  # fmt: skip
        return window.start, window.end

    def execute(self, context: Context, event: Any = None) -> dict[str, Any]:
        from mlops_provider.core.registry import alias_version, find_own_move, read_history
        from mlops_provider.core.rollout import decide_rollout

        self.model_name = arguments.model_name(self.model_name)
        mode = check_mode(self.mode)
        alias = ALIASES[mode]
        settings = RolloutSettings(
            **{**self.rollout_settings, "metric": arguments.optional_text(self.primary_metric, "primary_metric")},
            min_improvement=arguments.optional_float(self.min_improvement, "min_improvement") or 0.0,
        )
        soak_time = as_duration(self.soak_time if not arguments.is_unset(self.soak_time) else 0, "soak_time")
        max_soak = None if arguments.is_unset(self.max_soak) else as_duration(self.max_soak, "max_soak")
        urls = _service_urls(self.service_urls)
        self.mlflow_hook.get_registered_model(self.model_name)
        client = self.mlflow_hook.get_conn()
        identity = task_identity(context)
        history = read_history(client, self.model_name)
        done = find_own_move(history, identity, ACTION_PROMOTE) or find_own_move(history, identity, ACTION_ROLLBACK)
        if done is not None:
            return self._replay(context, client, done, alias, urls)
        champion = alias_version(client, self.model_name, tags.CHAMPION_ALIAS)
        if champion is None:
            raise ConfigurationError(
                f"{self.model_name} has no @{tags.CHAMPION_ALIAS} to compare the {mode} with; promote one first."
            )
        staged = alias_version(client, self.model_name, alias)
        challenger = arguments.optional_text(self.version, "version") or staged
        if challenger is None or staged != challenger:
            where = f"@{alias} points at v{staged}" if staged else f"no version is @{alias}"
            raise ConfigurationError(
                f"{self.model_name}: {where}, so v{challenger} is not in {mode}; start the stage with "
                f"StartRolloutOperator(mode={mode!r}) first (or pass the version it rolled out)."
            )
        started = next((e for e in reversed(history) if e.get("action") == ACTION_START and e.get("alias") == alias
                        and str(e.get("to_version")) == challenger), None)  # fmt: skip
        self._stage_start = datetime.fromisoformat(started["time"]) if started else None
        if self._stage_start is None and (soak_time or arguments.is_unset(self.window_start)):
            raise ConfigurationError(
                f"{self.model_name} v{challenger} was put @{alias} outside StartRolloutOperator, so when the stage "
                "started is not recorded: pass window_start (and soak_time=0), or start it with StartRolloutOperator."
            )
        task_type = self.mlflow_hook.get_model_version(self.model_name, challenger).tags.get(tags.TASK_TYPE)
        if not task_type:
            raise ConfigurationError(
                f"{self.model_name} v{challenger} has no {tags.TASK_TYPE} tag (not trained by TrainModelOperator), so "
                "how to compare it is unknown; roll out versions trained by TrainModelOperator."
            )
        metrics_texts = [_service_call(url, "/metrics") for url in urls]
        joined, start, end, empty_reason, id_columns = self.labelled_predictions(context, missing_is_empty=True)
        now = datetime.now(timezone.utc)
        elapsed = now - self._stage_start if self._stage_start else timedelta(0)
        decision = decide_rollout(
            joined, mode=mode, model_name=self.model_name, champion_version=champion, challenger_version=challenger,
            task_type=task_type, id_columns=id_columns, settings=settings, soak_elapsed=elapsed, soak_time=soak_time,
            service_metrics=metrics_texts, window=f"[{start.isoformat()}, {end.isoformat()})",
        )  # fmt: skip
        if empty_reason:
            decision.statement += f" ({empty_reason}.)"
        if decision.outcome == EXTEND and max_soak is not None:
            if elapsed < max_soak:
                return self._wait(decision.statement, max_soak - elapsed, max_soak)
            decision.outcome = self.on_timeout
            decision.statement += (
                f" The stage has run {elapsed} (max_soak {max_soak}) without a verdict: "
                f"{self.on_timeout.upper()} (on_timeout)."
            )
        self.log.info("Rollout decision:\n%s", decision.statement)
        result = {**decision.to_dict(), "window_start": start.isoformat(), "window_end": end.isoformat(),
                  "history_seq": None, "replayed": False, "refreshed": []}  # fmt: skip
        if decision.outcome == ROLLBACK or (decision.outcome == PROMOTE and self.promote):
            result["history_seq"] = self._act(context, client, decision.outcome, alias, champion, challenger,
                                              decision.statement, mode)  # fmt: skip
            result["refreshed"] = self._refresh(urls)
        return self._finish(context, result)

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Back from a wait of the soak: judge again with the data that arrived meanwhile."""
        return self.execute(context)

    def _wait(self, statement: str, remaining: timedelta, max_soak: timedelta) -> dict[str, Any]:
        from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger

        delay = min(self.poll_interval, remaining)
        self.log.info("Rollout: %s Waiting %s before judging again (max_soak %s).", statement, delay, max_soak)
        self.defer(trigger=TimeDeltaTrigger(delay), method_name="execute_complete")
        raise AssertionError("defer() does not return")  # pragma: no cover

    def _act(self, context: Context, client: Any, outcome: str, alias: str, champion: str, challenger: str,
             statement: str, mode: str) -> int:  # fmt: skip
        """Promote or roll back under the lock; the history entry's sequence number."""
        from mlops_provider.core.registry import append_history, move_alias

        with self._lock(client, context):
            if outcome == PROMOTE:
                entry = move_alias(
                    client, self.model_name, tags.CHAMPION_ALIAS, challenger, expected_from=champion,
                    action=ACTION_PROMOTE, reason=statement[:3000], actor=self._actor(context),
                )  # fmt: skip
            else:
                entry = append_history(client, self.model_name, {
                    "action": ACTION_ROLLBACK, "alias": alias, "from_version": challenger, "to_version": None,
                    "reason": statement[:3000], "by": self._actor(context),
                })  # fmt: skip
            self._end_stage(client, alias, challenger)
        self.log.info("%s v%s: %s (history #%s, mode %s).", self.model_name, challenger, outcome, entry["seq"], mode)
        if outcome == PROMOTE:
            from mlops_provider.operators.registry import emit_alias_moved

            emit_alias_moved(context, self.model_name, tags.CHAMPION_ALIAS, entry)
        return int(entry["seq"])

    def _replay(self, context: Context, client: Any, done: dict[str, Any], alias: str, urls: list[str]) -> dict:
        """A retry after the move: finish what the earlier try may not have (the stage's alias, the share)."""
        outcome = PROMOTE if done["action"] == ACTION_PROMOTE else ROLLBACK
        challenger = str(done["to_version"] if outcome == PROMOTE else done["from_version"])
        with self._lock(client, context):
            self._end_stage(client, alias, challenger)
        self.log.info("This task already decided %s for %s v%s in this DAG run (history #%s).", outcome,
                      self.model_name, challenger, done["seq"])  # fmt: skip
        result = {"outcome": outcome, "statement": done.get("reason", ""), "mode": check_mode(self.mode),
                  "model_name": self.model_name, "challenger_version": challenger,
                  "champion_version": done["from_version"] if outcome == PROMOTE else None,
                  "history_seq": done["seq"], "replayed": True, "refreshed": self._refresh(urls)}  # fmt: skip
        return self._finish(context, result)

    def _finish(self, context: Context, result: dict[str, Any]) -> dict[str, Any]:
        result = json.loads(json.dumps(result, default=str))  # plain JSON for XCom
        self.lineage_result = result
        context["ti"].xcom_push(key="rollout_decision", value=result)
        if result["outcome"] in self.skip_on:
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(f"{result['statement']} (outcome {result['outcome']!r} is in skip_on)")
        return result
