"""Model cards on the real MLflow server: written when training registers a version, rewritten when a promotion,
a rollback or a live evaluation changes what the version is; hostile text escaped; absent sections say how to
compute them; a card that cannot be written leaves the promotion alone and marks the card stale."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import urlsplit

import numpy as np
import pytest

from mlops_provider.core import model_card, tags
from mlops_provider.core.model_card_render import render_html, render_markdown
from mlops_provider.hooks.mlflow import MlflowHook
from sample_data import churn_frame
from support.task_instance import OutletEventsStandIn, TaskInstanceStandIn

HOSTILE = "<script>alert('x')</script>"
CARD_MD = f"{model_card.CARD_FOLDER}/{model_card.MARKDOWN_NAME}"
CARD_HTML = f"{model_card.CARD_FOLDER}/{model_card.HTML_NAME}"


def context(task_id: str, run: str) -> dict:
    return {
        "ti": TaskInstanceStandIn(dag_id="cards", task_id=task_id, run_id=run),
        "outlet_events": OutletEventsStandIn(),
        "dag_run": SimpleNamespace(triggering_user_name="carol", run_id=run),
    }


def read_card(client, version, tmp_path, name: str = CARD_MD) -> str:
    folder = tmp_path / uuid.uuid4().hex
    folder.mkdir()
    return open(client.download_artifacts(version.run_id, name, str(folder)), encoding="utf-8").read()


@pytest.fixture(scope="module")
def world(mlflow_server, tmp_path_factory):
    """Two versions of one model, trained by TrainModelOperator; the second one on more data."""
    import os

    from mlops_provider.operators.training import TrainModelOperator

    url = urlsplit(mlflow_server.url)
    name = "AIRFLOW_CONN_MLFLOW_DEFAULT"
    os.environ[name] = json.dumps({"conn_type": "mlflow", "host": url.hostname, "port": url.port})
    model_name = f"carded-{uuid.uuid4().hex[:8]}"
    folder = tmp_path_factory.mktemp("cards")
    contexts, results = [], []
    for i, rows in enumerate((1200, 1600)):
        frame = churn_frame(rows, seed=30 + i)
        frame[HOSTILE] = np.random.default_rng(i).normal(size=rows)  # a feature whose name is markup
        path = folder / f"churn{i}.parquet"
        frame.to_parquet(path, index=False)
        train = TrainModelOperator(
            task_id="train", dataset_uri=str(path), target_column="churned", id_columns=["customer_id"],
            timestamp_column="event_timestamp", model_name=model_name,
            estimator="sklearn.ensemble.RandomForestClassifier", estimator_params={"n_estimators": 10, "max_depth": 4},
            model_owner="team-retention", model_purpose="weekly churn risk for the retention campaign",
            known_limits="not for customers younger than one month", reference_sample_rows=200,
        )  # fmt: skip
        contexts.append(context("train", f"manual__{i}"))
        results.append(train.execute(contexts[-1]))
    yield SimpleNamespace(
        hook=MlflowHook(), model_name=model_name, results=results, contexts=contexts, ui=mlflow_server.url
    )
    os.environ.pop(name, None)


def test_training_writes_the_card_with_data_features_and_holdout_metrics(world, tmp_path):
    client = world.hook.get_conn()
    result = world.results[0]
    version = client.get_model_version(world.model_name, result["version"])
    card = read_card(client, version, tmp_path)

    assert f"# Model card: {world.model_name} v1" in card.replace("\\-", "-")
    assert version.tags[tags.CARD_STATUS] == "registered" and version.tags[tags.CARD_TRIGGER] == "registration"
    assert version.tags[tags.CARD_URI] == f"runs:/{result['run_id']}/{CARD_HTML}"
    assert tags.CARD_GENERATED_AT in version.tags
    assert f"`{version.tags[tags.DATASET_URI]}`" in card
    assert f"`{result['data_fingerprint']}`" in card
    assert "1200 (960 train, 240 holdout; time split)" in card
    assert "`tenure_months`" in card and "`plan`" in card
    for metric, value in result["metrics"].items():
        assert f"| `{metric}` | {value:.4g} |" in card
    assert "team-retention (given to training as model_owner)" in card
    assert "weekly churn risk for the retention campaign" in card and "not for customers younger" in card
    # The time span training saw, from the timestamp column.
    span = json.loads(version.tags[tags.DATA_TIME_RANGE])
    assert span["column"] == "event_timestamp" and span["start"] in card and span["end"] in card
    # Importances named for what they are: the forest's own, not permutation importance.
    assert "feature_importances\\_ (impurity-based" in card and "not permutation importance" in card
    # Absent sections say which argument computes them.
    assert "Not computed._ To compute it: pass sensitive_columns=\\[...\\] to TrainModelOperator." in card
    assert "pass slice_columns=\\[...\\]" in card
    assert "No gate decision yet" in card

    # The link opens the HTML card in the MLflow UI's artifact view of the training run.
    assert world.contexts[0]["ti"].xcoms["mlops_model_card"] == (
        f"{world.ui}/#/experiments/{result['experiment_id']}/runs/{result['run_id']}/artifacts/{CARD_HTML}"
    )


def test_html_card_escapes_hostile_names_and_loads_nothing_from_elsewhere(world, tmp_path):
    client = world.hook.get_conn()
    version = client.get_model_version(world.model_name, world.results[0]["version"])
    page = read_card(client, version, tmp_path, CARD_HTML)
    markdown = read_card(client, version, tmp_path)

    assert "<script" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "src=" not in page and "<link" not in page and "@import" not in page
    assert f"`{HOSTILE}`" in markdown  # verbatim only inside code spans, where Markdown shows it as text
    assert "<script" not in markdown.replace(f"`{HOSTILE}`", "").replace(f"`numeric__{HOSTILE}`", "")


def test_promotion_and_rollback_rewrite_the_cards(world, tmp_path):
    from mlops_provider.operators.registry import PromoteModelOperator, RollbackModelOperator

    client = world.hook.get_conn()
    v1, v2 = (r["version"] for r in world.results)
    gate = {"accuracy": {"min": 0.5}}
    for version, approver in ((v1, "alice"), (v2, "bob")):
        ctx = context("promote", f"promote__{version}")
        started = time.perf_counter()
        outcome = PromoteModelOperator(
            task_id="promote", model_name=world.model_name, version=version, thresholds=gate, approved_by=approver,
            lock_timeout=30.0,
        ).execute(ctx)  # fmt: skip
        assert outcome["promoted"], outcome
        assert time.perf_counter() - started < 30
        assert ctx["ti"].xcoms["mlops_model_card"].endswith(f"/artifacts/{CARD_HTML}")

    second = read_card(client, client.get_model_version(world.model_name, v2), tmp_path)
    assert "@champion: serving as @champion; promoted to @champion at" in second
    assert "| decision | promoted |" in second and f"| against | v{v1} |" in second
    assert "bob approved at" in second and "triggered by carol" in second
    assert f"| promote | @champion | v{v1} \u2192 v{v2} |" in second
    first = client.get_model_version(world.model_name, v1)
    assert first.tags[tags.CARD_STATUS] == "replaced"
    assert f"replaced: @champion moved to v{v2}" in read_card(client, first, tmp_path)

    RollbackModelOperator(task_id="rollback", model_name=world.model_name, reason="complaints from the field",
                          lock_timeout=30.0).execute(context("rollback", "rollback__1"))  # fmt: skip
    rolled = client.get_model_version(world.model_name, v2)
    assert rolled.tags[tags.CARD_STATUS] == "rolled back" and rolled.tags[tags.CARD_TRIGGER] == "rollback"
    text = read_card(client, rolled, tmp_path)
    assert f"rolled back: @champion moved from this version to v{v1}" in text and "complaints from the field" in text
    restored = client.get_model_version(world.model_name, v1)
    assert restored.tags[tags.CARD_STATUS] == "@champion"
    assert "rolled back to @champion" in read_card(client, restored, tmp_path)


def test_live_evaluation_puts_live_metrics_and_the_label_delay_on_the_card(world, tmp_path):
    from mlflow.entities import Metric

    from mlops_provider.core import monitoring
    from mlops_provider.operators.performance import EvaluateLivePerformanceOperator

    client = world.hook.get_conn()
    version = world.results[0]["version"]
    experiment_id = world.hook.get_or_create_experiment(monitoring.monitoring_experiment_name(world.model_name))
    run_id = monitoring.monitoring_run_id(client, experiment_id, world.model_name)
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[
        Metric(f"live.v{version}.accuracy", 0.71, now, 1), Metric(f"live.v{version}.accuracy.low", 0.66, now, 1),
        Metric(f"live.v{version}.accuracy.high", 0.76, now, 1), Metric(f"live.v{version}.rows", 420, now, 1),
    ])  # fmt: skip
    monitoring.record_verdict(client, run_id, monitoring.LIVE, {
        "outcome": "degraded", "degraded": True, "kind": "concept_drift", "champion_version": version,
        "window_start": "2026-02-01T00:00:00+00:00", "window_end": "2026-02-02T00:00:00+00:00",
    })  # fmt: skip
    operator = EvaluateLivePerformanceOperator(
        task_id="live", model_name=world.model_name, labels_uri="x", label_column="churned",
        id_columns=["customer_id"], label_delay=timedelta(days=30),
    )  # fmt: skip
    ctx = context("live", "live__1")
    operator._refresh_model_cards(ctx, SimpleNamespace(versions={version: None}, champion_version=version))

    card = read_card(client, client.get_model_version(world.model_name, version), tmp_path)
    assert "420 labelled rows" in card and "| `accuracy` | 0.71 | \\[0.66, 0.76\\] |" in card
    assert "degraded (concept_drift), window \\[2026-02-01T00:00:00+00:00, 2026-02-02T00:00:00+00:00)" in card
    assert "labels arrive 30 days after the predictions" in card
    assert ctx["ti"].xcoms["mlops_model_card"].endswith(f"/artifacts/{CARD_HTML}")


def test_a_card_that_cannot_be_written_warns_and_is_marked_stale(world, monkeypatch, caplog):
    from mlops_provider.operators.model_card import refresh_model_cards
    from mlops_provider.operators.training import TrainModelOperator

    client = world.hook.get_conn()
    version = world.results[1]["version"]
    operator = TrainModelOperator(task_id="t", dataset_uri="x", target_column="y", model_name=world.model_name)

    def broken(*args, **kwargs):
        raise OSError("artifact store full")

    monkeypatch.setattr(model_card, "publish", broken)
    urls = refresh_model_cards(operator, context("t", "stale"), world.hook, world.model_name, [version],
                               trigger="promotion")  # fmt: skip
    assert urls == {version: None}
    stale = client.get_model_version(world.model_name, version).tags[tags.CARD_STALE]
    assert "promotion: OSError: artifact store full" in stale
    monkeypatch.undo()
    refresh_model_cards(operator, context("t", "fresh"), world.hook, world.model_name, [version], trigger="manual")
    assert tags.CARD_STALE not in client.get_model_version(world.model_name, version).tags


def test_rendering_without_mlflow_escapes_and_names_what_is_missing():
    card = model_card.ModelCard(
        model_name="m", version="3", status="registered", status_detail="registered", generated_at="now",
        trigger="manual", features=[HOSTILE, "a|b"], limits=["<b>bold</b> claim"], owner="x & y",
        missing={"fairness": model_card.HOW_TO_COMPUTE["fairness"]},
    )  # fmt: skip
    page, text = render_html(card), render_markdown(card)
    assert "<script" not in page and "<b>bold" not in page and "x &amp; y" in page
    assert "`a\\|b`" in text and "\\<b\\>bold\\</b\\> claim" in text
    assert "To compute it: pass sensitive_columns=[...] to TrainModelOperator." in page
