"""Alerts (issue #16, item 4): drift found, gate rejected, live performance degraded, approval waiting, model stale.

Real delivery: a local SMTP server and a local HTTP endpoint standing in for Slack's incoming webhook
(``support.alert_receivers``), reached through Airflow connections by the SMTP provider's ``SmtpNotifier`` and
the provider's ``WebhookNotifier``. The operators run their reaction as in a task (``TaskInstanceStandIn``); the
registry is the embedded MLflow store (the ledger that keeps a retry from alerting twice lives there).
"""

from __future__ import annotations

import socket
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mlops_provider.core import alerts
from mlops_provider.core.errors import ConfigurationError
from sample_data import churn_frame
from support.alert_receivers import SmtpReceiver, WebhookReceiver
from support.task_instance import TaskInstanceStandIn

RUN_ID = "manual__2026-03-01T00:00:00+00:00"


@pytest.fixture(scope="module")
def smtp():
    receiver = SmtpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def webhook():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def receivers(smtp, webhook, connection_env):
    """Both receivers, empty, with the connections ``smtp_alerts`` and ``slack_alerts`` pointing at them."""
    smtp.messages.clear()
    webhook.posts.clear()
    connection_env(
        "smtp_alerts",
        conn_type="smtp",
        host="127.0.0.1",
        port=smtp.port,
        extra={"disable_ssl": True, "disable_tls": True, "from_email": "airflow@example.com", "timeout": 5},
    )
    connection_env("slack_alerts", conn_type="slackwebhook", password=webhook.url)
    return smtp, webhook


@pytest.fixture(scope="module")
def registry():
    """The embedded MLflow registry (``$MLOPS_HOME``), where each test registers its own model."""
    from mlops_provider.hooks.mlflow import MlflowHook

    return MlflowHook().get_conn()


def new_model(registry, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    registry.create_registered_model(name)
    return name


def notifiers():
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    from mlops_provider.notifications.webhook import WebhookNotifier

    return [
        SmtpNotifier(to="ml-team@example.com", smtp_conn_id="smtp_alerts"),
        WebhookNotifier(webhook_conn_id="slack_alerts"),
    ]


def context(task_id: str, **extra) -> dict:
    return {"ti": TaskInstanceStandIn(dag_id="alerts_test", run_id=RUN_ID, task_id=task_id), **extra}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the message --------------------------------------------------------------------------------------------------


def test_an_alert_is_one_readable_message_for_email_and_slack():
    alert = alerts.drift_alert(
        {
            "model_name": "churn",
            "drift_detected": True,
            "drift_share": 0.4,
            "drifted_columns": ["monthly_charges", "plan"],
            "columns": {
                "monthly_charges": {"method": "ks", "score": 1e-9, "threshold": 0.01, "drifted": True},
                "plan": {"method": "chi2_homogeneity", "score": 2e-5, "threshold": 0.01, "drifted": True},
                "tenure_months": {"method": "ks", "score": 0.4, "threshold": 0.01, "drifted": False},
            },
            "current": {"uri": "/data/dt=2026-03-01", "rows": 2000},
            "reference": {"uri": "runs:/abc/reference/sample.parquet", "rows": 3000},
            "report_uri": "/reports/drift_report.html",
        },
        threshold=0.25,
    ).with_links(alerts.AlertLink("Report", "file:///reports/drift_report.html"), None)
    assert alert.title == "Drift detected in churn: 2 of 3 columns drifted (share 0.40)"
    assert alert.subject == "[MLOps] " + alert.title
    assert "monthly_charges (ks score 1e-09, threshold 0.01)" in alert.body and "threshold 0.25" in alert.body
    assert "Report: file:///reports/drift_report.html" in alert.text
    assert "<a href='file:///reports/drift_report.html'>Report</a>" in alert.html
    payload = alert.slack_payload()
    assert payload["text"] == "Drift detected: " + alert.title
    assert payload["blocks"][-1]["elements"][0]["text"] == "<file:///reports/drift_report.html|Report>"
    escaped = alerts.Alert(alerts.GATE_REJECTED, "m", "a < b & c", "body").slack_payload()
    assert escaped["blocks"][0]["text"]["text"] == "*a &lt; b &amp; c*"
    assert alert.to_dict() == {"kind": "drift_detected", "model_name": "churn", "title": alert.title,
                               "links": {"Report": "file:///reports/drift_report.html"}}  # fmt: skip


def test_the_webhook_url_comes_from_the_connection_as_slack_users_give_it():
    from airflow.sdk import Connection

    from mlops_provider.notifications.webhook import WebhookDeliveryError, webhook_url

    full = "https://hooks.slack.com/services/T1/B2/C3"
    assert webhook_url(Connection(conn_id="s", conn_type="slackwebhook", password=full)) == full
    assert webhook_url(Connection(conn_id="s", conn_type="slackwebhook", password="T1/B2/C3")) == full
    own = Connection(conn_id="s", conn_type="http", host="127.0.0.1/hooks/alerts", port=8099, schema="http")
    assert webhook_url(own) == "http://127.0.0.1:8099/hooks/alerts"
    with pytest.raises(WebhookDeliveryError, match="'s' holds no webhook URL"):
        webhook_url(Connection(conn_id="s", conn_type="http"))


# -- each event, delivered ----------------------------------------------------------------------------------------


def test_drift_found_is_emailed_and_posted_once_and_a_stable_check_sends_nothing(receivers, registry, tmp_path):
    from mlops_provider.operators.drift import DetectDriftOperator

    smtp, webhook = receivers
    model = new_model(registry, "churn-drift")
    churn_frame(1500, seed=1).to_parquet(tmp_path / "reference.parquet")
    churn_frame(1500, seed=2, drift=True).to_parquet(tmp_path / "drifted.parquet")
    churn_frame(1500, seed=3).to_parquet(tmp_path / "stable.parquet")

    def check(current: str, task_id: str) -> DetectDriftOperator:
        return DetectDriftOperator(
            task_id=task_id,
            current_uri=str(tmp_path / current),
            reference_uri=str(tmp_path / "reference.parquet"),
            model_name=model,
            exclude_columns=["customer_id", "churned"],
            drift_share=0.25,
            on_drift="continue",
            log_to_mlflow=False,
            report_rows=300,
            reports_uri=str(tmp_path / "reports"),
            notifiers=notifiers(),
        )

    drifted = context("detect_drift")
    result = check("drifted.parquet", "detect_drift").execute(drifted)
    assert result["drift_detected"]
    assert len(smtp.messages) == 1 and len(webhook.posts) == 1
    mail = smtp.messages[0]
    assert mail["to"] == ["ml-team@example.com"] and mail["from"] == "airflow@example.com"
    subject = mail["message"]["Subject"]
    assert model in subject and "Drift" in subject
    body = SmtpReceiver.body(mail["message"])
    assert "share 0.40" in body and "monthly_charges" in body
    assert f"file://{result['report_uri']}" in body
    assert f"/dags/alerts_test/runs/{RUN_ID.replace(':', '%3A').replace('+', '%2B')}/tasks/detect_drift" in body
    post = webhook.posts[0]
    assert post["path"] == "/services/T000/B000/XXXX" and post["content_type"] == "application/json"
    assert model in post["json"]["text"] and post["json"]["blocks"]
    assert drifted["ti"].xcoms["mlops_alerts"][0]["delivered"] == [
        "SmtpNotifier(smtp_conn_id='smtp_alerts')",
        "WebhookNotifier(webhook_conn_id='slack_alerts')",
    ]

    # A retry of the same task in the same DAG run finds the alert recorded on the registered model.
    check("drifted.parquet", "detect_drift").execute(context("detect_drift"))
    assert len(smtp.messages) == 1 and len(webhook.posts) == 1
    assert registry.get_registered_model(model).tags["mlops.alerted.drift_detected"] == (
        f"alerts_test/{RUN_ID}/detect_drift"
    )

    stable = check("stable.parquet", "detect_stable").execute(context("detect_stable"))
    assert not stable["drift_detected"]
    assert len(smtp.messages) == 1 and len(webhook.posts) == 1


def rejected_outcome(model: str) -> dict:
    return {
        "model_name": model,
        "version": "3",
        "alias": "champion",
        "promoted": False,
        "reasons": ["roc_auc min_absolute_change 0 not met (-0.019)"],
        "challenger_metrics": {"roc_auc": 0.712, "accuracy": 0.801},
        "champion_metrics": {"roc_auc": 0.731, "accuracy": 0.812},
        "champion_version": "2",
        "history_seq": None,
    }


def test_a_gate_rejection_names_the_metric_and_the_numbers(receivers, registry):
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier
    from airflow.sdk.exceptions import AirflowSkipException

    from mlops_provider.core.registry import PromotionOutcome
    from mlops_provider.operators.registry import EvaluateChallengerOperator

    smtp, webhook = receivers
    model = new_model(registry, "churn-gate")
    own = SmtpNotifier(to="lead@example.com", smtp_conn_id="smtp_alerts",
                       subject="{{ alert.label }}: {{ alert.model_name }}", html_content="<pre>{{ alert.text }}</pre>")  # fmt: skip
    gate = EvaluateChallengerOperator(task_id="gate", model_name=model, version="3", notifiers=[*notifiers(), own])
    with pytest.raises(AirflowSkipException, match="rejected"):
        gate._finish(context("gate"), PromotionOutcome(**rejected_outcome(model)))
    assert own.subject.startswith("{{")  # each delivery renders a copy: the notifier serves the next alert too
    assert smtp.messages[1]["message"]["Subject"] == f"Gate rejected: {model}"
    assert "roc_auc 0.712 vs 0.731" in SmtpReceiver.body(smtp.messages[1]["message"])
    subject = smtp.messages[0]["message"]["Subject"]
    assert subject == f"[MLOps] Gate rejected {model} v3: roc_auc min_absolute_change 0 not met (-0.019)"
    body = SmtpReceiver.body(smtp.messages[0]["message"])
    assert "roc_auc 0.712 vs 0.731" in body and "champion v2" in body
    assert webhook.posts[0]["json"]["text"].startswith(f"Gate rejected: Gate rejected {model} v3")


def test_a_degraded_live_window_alerts(receivers, registry, tmp_path):
    import numpy as np

    from mlops_provider.core.performance.live import Baseline, evaluate_window
    from mlops_provider.operators.performance import EvaluateLivePerformanceOperator

    smtp, webhook = receivers
    model = new_model(registry, "churn-live")
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 600)
    right = rng.random(600) < 0.7  # 70% live accuracy against 90% on the holdout
    joined = pd.DataFrame({"customer_id": range(600), "model_version": "1", "role": "served", "label": labels,
                           "prediction": np.where(right, labels, 1 - labels)})  # fmt: skip
    start = datetime(2026, 2, 1, tzinfo=timezone.utc)
    result = evaluate_window(joined, model_name=model, window_start=start, window_end=start + timedelta(days=1),
                             task_type="classification", id_columns=["customer_id"], champion_version="1",
                             baselines={"1": Baseline(metrics={"accuracy": 0.9}, rows=2000)})  # fmt: skip
    assert result.degraded
    summary = {**result.to_dict(), "report_uri": str(tmp_path / "performance_report.html")}
    operator = EvaluateLivePerformanceOperator(
        task_id="live_performance", model_name=model, labels_uri="x", label_column="label", id_columns=["customer_id"],
        on_degradation="continue", notifiers=notifiers(),
    )  # fmt: skip
    operator._react_to_degradation(context("live_performance"), result, summary)
    subject = smtp.messages[0]["message"]["Subject"]
    assert subject.startswith(f"[MLOps] Live performance of {model} v1 degraded: accuracy 0.7")
    assert "(holdout 0.9)" in subject
    body = SmtpReceiver.body(smtp.messages[0]["message"])
    assert "a drop beyond noise" in body and "file://" + str(tmp_path / "performance_report.html") in body
    assert model in webhook.posts[0]["json"]["text"]


def test_an_approval_waiting_alerts_with_the_required_actions_link(receivers, monkeypatch):
    from airflow.providers.standard.operators import hitl

    from mlops_provider.operators.lifecycle import PromotionApprovalOperator

    smtp, webhook = receivers
    written = []
    # Only the request's write to Airflow's API is stood in for: the task runs outside a worker here.
    monkeypatch.setattr(hitl, "upsert_hitl_detail", lambda **request: written.append(request))
    approve = PromotionApprovalOperator(
        task_id="approve",
        subject="Promote churn version 3 to @champion?",
        body="| metric | challenger | champion |\n|---|---|---|\n| roc_auc | 0.7410 | 0.7312 |",
        model_name="churn",
        approvers="release-manager, 7",
        response_timeout=timedelta(days=7),
        notifiers=notifiers(),
    )
    ctx = context("approve", task_instance=type("TI", (), {"id": uuid.uuid4()})())
    with pytest.raises(BaseException) as waiting:  # the task now waits for its human (TaskAwaitingInput)
        approve.execute(ctx)
    assert type(waiting.value).__name__ in ("TaskAwaitingInput", "TaskDeferred")
    assert len(written) == 1 and len(smtp.messages) == 1 and len(webhook.posts) == 1
    assert written[0]["assigned_users"] == [
        {"id": "release-manager", "name": "release-manager"},
        {"id": "7", "name": "7"},
    ]
    assert smtp.messages[0]["message"]["Subject"] == "[MLOps] Approval waiting: Promote churn version 3 to @champion?"
    body = SmtpReceiver.body(smtp.messages[0]["message"])
    assert f"/dags/alerts_test/runs/{RUN_ID}/tasks/approve/required_actions?map_index=-1" in body
    assert "roc_auc | 0.7410 | 0.7312" in body and "times out" in body
    links = webhook.posts[0]["json"]["blocks"][-1]["elements"][0]["text"]
    assert "required_actions" in links and "|Required actions>" in links

    smtp.messages.clear()
    not_asked = PromotionApprovalOperator(task_id="approve", subject="s", required=False, notifiers=notifiers())
    assert not_asked.execute(context("approve"))["responded_by_user"] is None
    assert smtp.messages == []


def test_a_stale_model_of_the_fleet_alerts_its_own_addresses(receivers, registry, tmp_path):
    from mlops_provider.fleet import load_catalogue
    from mlops_provider.fleet.report import fleet_report
    from mlops_provider.operators.fleet import FleetReportOperator

    smtp, webhook = receivers
    model = new_model(registry, "churn-stale")
    registry.create_model_version(model, source=str(tmp_path))
    fresh = new_model(registry, "churn-fresh")
    registry.create_model_version(fresh, source=str(tmp_path))
    entry = {"dataset_uri": "/data/churn", "target_column": "churned"}
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"models": {
        model: {**entry, "schedule": "@daily", "alerts": {"email": ["owner@example.com"], "smtp_conn_id": "smtp_alerts",
                                                          "webhook_conn_id": "slack_alerts", "on": ["model_stale"]}},
        fresh: {**entry, "schedule": "@yearly", "alerts": {"email": ["other@example.com"], "smtp_conn_id": "smtp_alerts"}},
    }}, sort_keys=False))  # fmt: skip
    catalogue = load_catalogue(str(path))
    assert not catalogue.errors, catalogue.error()
    report = fleet_report(registry, catalogue, now=datetime.now(timezone.utc) + timedelta(days=5))
    assert [m["flags"] for m in report["models"]] == [["no_champion", "stale"], ["no_champion"]]

    operator = FleetReportOperator(task_id="fleet_report", catalogue_path=str(path))  # no notifiers of its own
    ctx = context("fleet_report")
    operator._alert_stale(ctx, catalogue, report, str(tmp_path / "fleet_report.html"))
    assert len(smtp.messages) == 1 and smtp.messages[0]["to"] == ["owner@example.com"]
    subject = smtp.messages[0]["message"]["Subject"]
    assert subject.startswith(f"[MLOps] {model} is stale: not retrained since") and "(schedule @daily)" in subject
    body = SmtpReceiver.body(smtp.messages[0]["message"])
    assert "file://" + str(tmp_path / "fleet_report.html") in body and f"/dags/mlops_fleet_{model}" in body
    assert len(webhook.posts) == 1 and model in webhook.posts[0]["json"]["text"]
    assert [a["model_name"] for a in ctx["ti"].xcoms["mlops_alerts"]] == [model]


# -- failures and bad arguments -----------------------------------------------------------------------------------


def test_a_notifier_that_cannot_reach_its_server_is_a_warning_and_the_task_keeps_its_outcome(
    receivers, registry, connection_env, capsys
):
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier
    from airflow.sdk.exceptions import AirflowSkipException

    from mlops_provider.core.registry import PromotionOutcome
    from mlops_provider.notifications.webhook import WebhookNotifier
    from mlops_provider.operators.registry import EvaluateChallengerOperator

    smtp, webhook = receivers
    down = closed_port()
    connection_env("smtp_down", conn_type="smtp", host="127.0.0.1", port=down,
                   extra={"disable_ssl": True, "disable_tls": True, "from_email": "a@example.com", "timeout": 2})  # fmt: skip
    connection_env("slack_down", conn_type="slackwebhook", password=f"http://127.0.0.1:{down}/services/T/B/SECRET")
    model = new_model(registry, "churn-down")
    gate = EvaluateChallengerOperator(
        task_id="gate",
        model_name=model,
        version="3",
        notifiers=[
            SmtpNotifier(to="a@example.com", smtp_conn_id="smtp_down"),
            WebhookNotifier(webhook_conn_id="slack_down"),
            WebhookNotifier(webhook_conn_id="slack_alerts"),
        ],
    )
    ctx = context("gate")
    capsys.readouterr()
    with pytest.raises(AirflowSkipException, match="rejected"):
        gate._finish(ctx, PromotionOutcome(**rejected_outcome(model)))
    logged = capsys.readouterr()
    warnings = [
        line for line in (logged.out + logged.err).splitlines() if "warning" in line and "NOT delivered" in line
    ]
    assert len(warnings) == 2
    assert "by SmtpNotifier(smtp_conn_id='smtp_down'): ConnectionRefusedError" in warnings[0]
    assert "The task keeps its outcome" in warnings[0] and f"Gate rejected {model} v3" in warnings[0]
    assert "WebhookNotifier(webhook_conn_id='slack_down'): WebhookDeliveryError" in warnings[1]
    assert "SECRET" not in " ".join(warnings)  # the webhook URL is a credential
    assert len(webhook.posts) == 1  # the notifier that works still delivers
    sent = ctx["ti"].xcoms["mlops_alerts"][0]
    assert sent["delivered"] == ["WebhookNotifier(webhook_conn_id='slack_alerts')"] and len(sent["failed"]) == 2
    assert ctx["ti"].xcoms["gate_decision"]["reasons"] == rejected_outcome(model)["reasons"]


def test_a_receiver_that_refuses_the_post_is_a_clear_error(connection_env):
    from mlops_provider.notifications.webhook import WebhookDeliveryError, WebhookNotifier

    refusing = WebhookReceiver(status=403)
    try:
        # The Slack provider's argument name works too (a drop-in for its SlackWebhookNotifier).
        connection_env("refusing", conn_type="http", host="127.0.0.1/services/T/B/X", port=refusing.port, schema="http")
        notifier = WebhookNotifier(slack_webhook_conn_id="refusing", text="hello {{ ti.task_id }}")
        with pytest.raises(WebhookDeliveryError, match="'refusing' answered HTTP 403: 'invalid_token'"):
            notifier(context("report"))
        assert refusing.posts[0] == {"path": "/services/T/B/X", "content_type": "application/json",
                                     "json": {"text": "hello report"}}  # fmt: skip
    finally:
        refusing.close()


@pytest.mark.parametrize(
    ("arguments", "fragments"),
    [
        ({"notifiers": "ml-team@example.com"}, ["notifiers='ml-team@example.com' is not a list of Airflow notifiers",
                                                "write notifiers=[SmtpNotifier(to="]),
        ({"notifiers": ["ml-team@example.com"]}, ["notifiers holds 'ml-team@example.com', a str",
                                                  "an address: wrap it, SmtpNotifier(to=...)"]),
        ({"notifiers": [print]}, ["notifiers holds <built-in function print>", "not an Airflow notifier"]),
        ({"alert_on": "drift_detected"}, ["alert_on='drift_detected' must be a list", "alert_on=['drift_detected']"]),
        ({"alert_on": ["drift_detcted"]}, ["no alert kind; did you mean 'drift_detected'?"]),
        ({"alert_on": ["gate_rejected"]}, ["DetectDriftOperator: alert_on names 'gate_rejected', which "
                                           "DetectDriftOperator never raises", "alert_on=['drift_detected']"]),
    ],
)  # fmt: skip
def test_bad_notifiers_or_alert_on_are_refused_when_the_dag_is_parsed(arguments, fragments):
    from mlops_provider.operators.drift import DetectDriftOperator

    with pytest.raises(ConfigurationError) as error:
        DetectDriftOperator(task_id="d", current_uri="x.parquet", model_name="m", **arguments)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_approval_refuses_bad_approvers_and_notifiers():
    from mlops_provider.operators.lifecycle import PromotionApprovalOperator

    with pytest.raises(ConfigurationError, match=r"approvers names \['alice'\] more than once; name each approver"):
        PromotionApprovalOperator(task_id="approve", subject="s", approvers=["alice", {"id": "alice"}])
    with pytest.raises(ConfigurationError, match=r"approvers holds \{'name': 'Ann'\}, which names no user"):
        PromotionApprovalOperator(task_id="approve", subject="s", approvers=[{"name": "Ann"}])
    with pytest.raises(ConfigurationError, match="takes approvers= .Airflow user ids., not assigned_users="):
        PromotionApprovalOperator(task_id="approve", subject="s", assigned_users=[{"id": "a", "name": "a"}])
    with pytest.raises(ConfigurationError, match="PromotionApprovalOperator: notifiers holds 'slack_alerts'"):
        PromotionApprovalOperator(task_id="approve", subject="s", notifiers=["slack_alerts"])
    with pytest.raises(ConfigurationError, match="never raises"):
        PromotionApprovalOperator(task_id="approve", subject="s", alert_on=["model_stale"])


# -- the catalogue ------------------------------------------------------------------------------------------------

GOOD = {"dataset_uri": "/data/churn", "target_column": "churned", "id_columns": ["customer_id", "dt"]}


@pytest.mark.parametrize(
    ("alerts_field", "fragments"),
    [
        ("ml-team@example.com", ["alerts must be a mapping of its settings, got text"]),
        ({"emails": ["a@example.com"]}, ["alerts has no setting 'emails'; did you mean 'email'?"]),
        ({"email": "a@example.com"}, ["alerts.email must be a list of email addresses, got text",
                                      "write alerts.email: [a@example.com]"]),
        ({"email": ["ml-team"]}, ["alerts.email holds 'ml-team', which is not an email address"]),
        ({"webhook_conn_id": "slack", "on": ["drift"]}, ["alerts.on names 'drift', which is no alert kind",
                                                         "did you mean 'drift_detected'?"]),
        ({"on": ["drift_detected"]}, ["alerts says where to send nothing; give email, webhook_conn_id or both"]),
        ({"smtp_conn_id": "smtp", "webhook_conn_id": "slack"}, ["alerts.smtp_conn_id is set but email is empty"]),
    ],
)  # fmt: skip
def test_a_bad_alerts_field_names_the_model_the_field_and_the_fix(tmp_path, alerts_field, fragments):
    from mlops_provider.fleet import load_catalogue

    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"models": {"churn": {**GOOD, "alerts": alerts_field}, "ok": GOOD}}))
    catalogue = load_catalogue(str(path))
    assert list(catalogue.models) == ["ok"]
    (error,) = catalogue.errors
    assert error.model == "churn" and error.field == "alerts"
    assert str(error).startswith("model 'churn': ")
    for fragment in fragments:
        assert fragment in str(error)


def test_catalogue_alerts_reach_the_operators_of_the_generated_dags(tmp_path):
    from mlops_provider.fleet import load_catalogue
    from mlops_provider.fleet.dags import model_dags

    path = tmp_path / "catalog.yaml"
    entry = {
        **GOOD,
        "require_approval": True,
        "triggers": {"drift": {"share": 0.3}, "performance": {"labels_uri": "/labels/churn"}},
        "alerts": {"email": ["ml@example.com"], "webhook_conn_id": "slack_alerts",
                   "on": ["drift_detected", "gate_rejected", "approval_waiting", "performance_degraded"]},
    }  # fmt: skip
    path.write_text(yaml.safe_dump({"models": {"churn": entry, "quiet": GOOD}}))
    catalogue = load_catalogue(str(path))
    assert catalogue.models["churn"].alerts.webhook_conn_id == "slack_alerts"
    dags = model_dags(catalogue.models["churn"])

    def kinds(dag_id: str, task_id: str, attribute: str = "notifiers") -> list[str]:
        return [type(n).__name__ for n in getattr(dags[dag_id].get_task(task_id), attribute)]

    both = ["SmtpNotifier", "WebhookNotifier"]
    assert kinds("mlops_fleet_churn", "lifecycle.gate") == both
    assert kinds("mlops_fleet_churn", "lifecycle.promote") == both
    assert kinds("mlops_fleet_churn", "lifecycle.approve", "alert_notifiers") == both
    assert kinds("mlops_fleet_churn_retrain_on_drift", "lifecycle.gate") == both
    assert kinds("mlops_fleet_churn_drift", "detect_drift") == both
    assert kinds("mlops_fleet_churn_performance", "live_performance") == both
    assert kinds("mlops_fleet_churn_performance", "input_drift") == []  # a supporting check, not the monitor
    assert dags["mlops_fleet_churn"].get_task("lifecycle.gate").notifiers[0].to == ["ml@example.com"]

    quiet = model_dags(catalogue.models["quiet"])
    assert quiet["mlops_fleet_quiet"].get_task("lifecycle.gate").notifiers == []


def test_a_catalogue_entry_with_alerts_parses_in_the_dagbag(tmp_path, monkeypatch):
    """The sample catalogue (with its commented alerts) and an entry with alerts still load as DAGs."""
    from airflow.dag_processing.dagbag import DagBag

    from mlops_provider.fleet.entries import ENV_VAR

    path = tmp_path / "catalog.yaml"
    alerts_field = {"email": ["ml@example.com"], "webhook_conn_id": "slack_alerts"}
    path.write_text(yaml.safe_dump({"models": {"churn": {**GOOD, "alerts": alerts_field}}}))
    monkeypatch.setenv(ENV_VAR, str(path))
    bag = DagBag(str(Path(__file__).resolve().parents[1] / "dags" / "mlops_fleet.py"))
    assert not bag.import_errors, bag.import_errors
    assert [type(n).__name__ for n in bag.dags["mlops_fleet_churn"].get_task("lifecycle.gate").notifiers] == [
        "SmtpNotifier", "WebhookNotifier",
    ]  # fmt: skip
