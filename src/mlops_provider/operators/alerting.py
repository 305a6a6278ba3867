"""Alerts from operators: ``notifiers=`` and ``alert_on=``, checked once, and the delivery of one ``Alert``.

An operator that raises an event (see ``core.alerts``) takes

* ``notifiers``: Airflow notifiers (``BaseNotifier`` instances), e.g. the SMTP provider's
  ``SmtpNotifier(to="ml-team@example.com")`` and this provider's ``WebhookNotifier(webhook_conn_id="slack_alerts")``;
* ``alert_on``: which of its events notify (default None: every event the operator raises; ``[]``: none).

At the event each notifier is called with the task's context plus ``alert`` (the ``Alert``), so its templated
fields can use ``{{ alert.title }}``, ``{{ alert.body }}``, ``{{ alert.text }}``, ``{{ alert.html }}``,
``{{ alert.subject }}``. An ``SmtpNotifier`` without ``subject`` / ``html_content`` sends the alert's own
(``alert.subject``, ``alert.html``); a ``WebhookNotifier`` without ``text`` posts the alert's Slack message.

Delivery never changes the task's outcome: a notifier that fails is logged as a warning naming the notifier, the
event and the error, and the task goes on (the event is also in XCom, in the Asset event and in the report). Each
call works on a copy of the notifier (rendering a notifier's templates changes it in place).

Once per event and DAG run: the operators that talk to MLflow record a delivered alert on the registered model
(tag ``mlops.alerted.<kind>`` = ``<dag_id>/<run_id>/<task_id>``); a retry or a cleared try of the same task in the
same DAG run finds it and does not notify again. The XCom ``mlops_alerts`` lists what the task sent.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mlops_provider.core.alerts import ALERT_KINDS, Alert, AlertLink, check_alert_kinds
from mlops_provider.core.errors import ConfigurationError
from mlops_provider.operators.mixins import ResultOperator

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.bases.notifier import BaseNotifier

    from mlops_provider.hooks.mlflow import MlflowHook

ALERTS_XCOM_KEY = "mlops_alerts"
LEDGER_TAG_PREFIX = "mlops.alerted."
NOTIFIERS_EXAMPLE = (
    "notifiers=[SmtpNotifier(to='ml-team@example.com'), WebhookNotifier(webhook_conn_id='slack_alerts')] "
    "(SmtpNotifier from airflow.providers.smtp.notifications.smtp, WebhookNotifier from "
    "mlops_provider.notifications.webhook)"
)


def check_notifiers(value: Any, owner: str) -> list[BaseNotifier]:
    """``notifiers`` as a list of Airflow notifiers; a ``ConfigurationError`` naming the argument and the fix."""
    from airflow.sdk.bases.notifier import BaseNotifier

    if value is None:
        return []
    if isinstance(value, BaseNotifier):
        return [value]
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, Iterable):
        raise ConfigurationError(
            f"{owner}: notifiers={value!r} is not a list of Airflow notifiers; write {NOTIFIERS_EXAMPLE}."
        )
    notifiers = list(value)
    for item in notifiers:
        if not isinstance(item, BaseNotifier):
            hint = (
                " (an address: wrap it, SmtpNotifier(to=...))"
                if isinstance(item, str) and "@" in item
                else " (a connection id: wrap it, WebhookNotifier(webhook_conn_id=...))"
                if isinstance(item, str)
                else ""
            )
            raise ConfigurationError(
                f"{owner}: notifiers holds {item!r}, a {type(item).__name__}, which is not an Airflow notifier"
                f"{hint}; write {NOTIFIERS_EXAMPLE}."
            )
    return notifiers


def check_alert_on(value: Any, owner: str, events: Sequence[str]) -> tuple[str, ...]:
    """``alert_on`` as the kinds to notify on (None: every one of ``events``); refuses unknown kinds and kinds the
    operator never raises."""
    try:
        kinds = check_alert_kinds(value)
    except ValueError as error:
        raise ConfigurationError(f"{owner}: {error}.") from None
    if kinds is None:
        return tuple(events)
    foreign = [kind for kind in kinds if kind not in events]
    if foreign:
        raise ConfigurationError(
            f"{owner}: alert_on names {foreign[0]!r}, which {owner} never raises, so it would never notify; it "
            f"raises {', '.join(events)}: write alert_on={list(events)} or leave alert_on out (every event of the "
            f"operator). The other kinds ({', '.join(k for k in ALERT_KINDS if k not in events)}) come from their "
            "own operators (docs/governance.md)."
        )
    return kinds


def alert_arguments(notifiers: Any, alert_on: Any, kind: str) -> dict[str, Any]:
    """The ``notifiers`` argument for the operator that raises ``kind``, when ``alert_on`` (None: every kind)
    includes it; ``{}`` otherwise. For the builders that hand one configuration to several operators."""
    try:
        kinds = check_alert_kinds(alert_on)
    except ValueError as error:
        raise ConfigurationError(f"{error}.") from None
    if not notifiers or (kinds is not None and kind not in kinds):
        return {}
    return {"notifiers": list(notifiers)}


def airflow_task_url(context: Context) -> str | None:
    """The task's page in the Airflow UI (``[api] base_url``, as the task's log URL is built)."""
    from airflow.configuration import conf

    ti = context.get("ti")
    if ti is None:
        return None
    base = (conf.get("api", "base_url", fallback="") or "http://localhost:8080").rstrip("/")
    return f"{base}/dags/{quote(ti.dag_id)}/runs/{quote(str(ti.run_id))}/tasks/{quote(ti.task_id)}"


def mlflow_model_url(base_ui_url: str | None, model_name: str | None) -> str | None:
    if not base_ui_url or not model_name:
        return None
    return f"{base_ui_url.rstrip('/')}/#/models/{quote(model_name, safe='')}"


def _marker(context: Context) -> str:
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    mapped = f"/{map_index}" if map_index is not None and map_index >= 0 else ""
    return f"{ti.dag_id}/{ti.run_id}/{ti.task_id}{mapped}"


class MlflowAlertLedger:
    """Which alerts a task already delivered in its DAG run, as the registered model's tag ``mlops.alerted.<kind>``."""

    def __init__(self, hook: MlflowHook) -> None:
        self.hook = hook

    def sent(self, alert: Alert, marker: str) -> bool:
        if not alert.model_name:
            return False
        model = self.hook.get_conn().get_registered_model(alert.model_name)
        return (model.tags or {}).get(LEDGER_TAG_PREFIX + alert.kind) == marker

    def record(self, alert: Alert, marker: str) -> None:
        if alert.model_name:
            self.hook.get_conn().set_registered_model_tag(alert.model_name, LEDGER_TAG_PREFIX + alert.kind, marker)


def _fill_email_defaults(notifier: Any) -> None:
    """An SmtpNotifier without a subject or body sends the alert's own (its defaults describe a failed task)."""
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    if isinstance(notifier, SmtpNotifier):
        if notifier.subject is None:
            notifier.subject = "{{ alert.subject }}"
        if notifier.html_content is None:
            notifier.html_content = "{{ alert.html }}"


def _describe(notifier: Any) -> str:
    for attribute in ("webhook_conn_id", "smtp_conn_id", "slack_webhook_conn_id"):
        conn_id = getattr(notifier, attribute, None)
        if isinstance(conn_id, str):
            return f"{type(notifier).__name__}({attribute}={conn_id!r})"
    return type(notifier).__name__


def send_alert(
    task: Any,
    context: Context,
    alert: Alert,
    *,
    notifiers: Sequence[BaseNotifier],
    alert_on: Sequence[str],
    ledger: MlflowAlertLedger | None = None,
) -> dict[str, Any] | None:
    """Deliver ``alert`` through each notifier (see the module's docstring); what happened, or None when the task
    does not notify on this kind. Never raises for a delivery problem."""
    if not notifiers or alert.kind not in alert_on:
        return None
    log = task.log
    ti = context["ti"]
    alert = alert.with_source(dag_id=ti.dag_id, run_id=str(ti.run_id), task_id=ti.task_id)
    marker = _marker(context)
    outcome: dict[str, Any] = {**alert.to_dict(), "delivered": [], "failed": []}
    if ledger is not None:
        try:
            if ledger.sent(alert, marker):
                log.info("Alert %r was already delivered by an earlier try of this task in this DAG run (%s); "
                         "not sending it again.", alert.title, marker)  # fmt: skip
                return {**outcome, "already_sent": True}
        except Exception as error:  # the ledger is a convenience: without it, deliver (at least once)
            log.warning("Could not read whether alert %r was already sent (%s: %s); sending it.",
                        alert.title, type(error).__name__, error)  # fmt: skip
    log.info("Alert (%s): %s", alert.kind, alert.text)
    alert_context: Any = {**context, "alert": alert}
    for notifier in notifiers:
        name = _describe(notifier)
        attempt = copy.deepcopy(notifier)
        _fill_email_defaults(attempt)
        try:
            attempt(alert_context)
        except Exception as error:
            log.warning(
                "Alert %r (%s) was NOT delivered by %s: %s: %s. The task keeps its outcome; the event is in its XCom "
                "and report. Check the notifier's connection.",
                alert.title, alert.kind, name, type(error).__name__, error,
            )  # fmt: skip
            outcome["failed"].append({"notifier": name, "error": f"{type(error).__name__}: {error}"[:300]})
        else:
            log.info("Alert %r delivered by %s.", alert.title, name)
            outcome["delivered"].append(name)
    if ledger is not None and outcome["delivered"]:
        try:
            ledger.record(alert, marker)
        except Exception as error:
            log.warning("Could not record that alert %r was sent (%s: %s); a retry may send it again.",
                        alert.title, type(error).__name__, error)  # fmt: skip
    return outcome


class AlertingMixin(ResultOperator):
    """``notifiers`` and ``alert_on`` for an operator that raises the events in ``alert_events``.

    :param notifiers: Airflow notifiers called at the event, e.g. ``[SmtpNotifier(to="ml@example.com"),
        WebhookNotifier(webhook_conn_id="slack_alerts")]`` (see ``operators.alerting``).
    :param alert_on: which of the operator's events notify (default: all of them).
    """

    alert_events: tuple[str, ...] = ()

    def __init__(self, *, notifiers: Any = None, alert_on: Sequence[str] | None = None, **kwargs: Any) -> None:
        owner = type(self).__name__
        checked = check_notifiers(notifiers, owner)
        kinds = check_alert_on(alert_on, owner, self.alert_events)
        super().__init__(**kwargs)
        self.notifiers = checked
        self.alert_on = kinds

    def alert_ledger(self) -> MlflowAlertLedger | None:
        hook = getattr(self, "mlflow_hook", None)
        return MlflowAlertLedger(hook) if hook is not None else None

    def alert_links(self, context: Context, model_name: str | None, report_uri: str | None = None) -> list[AlertLink]:
        """The report, the MLflow model page and the Airflow task, as far as they are known."""
        from mlops_provider.core.reports import browser_url

        links = []
        if report_uri:
            links.append(AlertLink("Report", browser_url(report_uri)))
        ui_url = None
        if model_name and getattr(self, "mlflow_conn_id", None):
            try:
                ui_url = self.mlflow_hook.settings.base_ui_url  # type: ignore[attr-defined]
            except Exception:  # a link is not worth failing for
                ui_url = None
        model_url = mlflow_model_url(ui_url, model_name)
        if model_url:
            links.append(AlertLink("MLflow model", model_url))
        task_url = airflow_task_url(context)
        if task_url:
            links.append(AlertLink("Airflow task", task_url))
        return links

    def send_alert(self, context: Context, alert: Alert) -> dict[str, Any] | None:
        """Deliver ``alert`` (when this operator notifies on its kind) and list it in the XCom ``mlops_alerts``."""
        if not self.notifiers or alert.kind not in self.alert_on:
            return None
        outcome = send_alert(
            self, context, alert, notifiers=self.notifiers, alert_on=self.alert_on, ledger=self.alert_ledger()
        )
        if outcome is not None:
            sent = [*getattr(self, "_alerts_sent", []), outcome]
            self._alerts_sent = sent
            context["ti"].xcom_push(key=ALERTS_XCOM_KEY, value=sent)
        return outcome
