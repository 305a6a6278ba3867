"""Progressive rollout: the decision of ``core.rollout`` on synthetic joined windows and service metrics (fast), the
operators' refusals on the real MLflow server, and the reference DAG ``mlops_progressive_rollout`` run end to end
(``dag.test()``) on a prediction log written as ``mlops-serve`` writes it, with real registered models:

* promote: the champion learnt the old churn rule, the challenger the new one, and the traffic follows the new
  rule: it passes the shadow (paired) and the canary (unpaired) stages and becomes champion;
* rollback: the champion learnt the new rule, the challenger the old one; the shadow stage ran while the traffic
  still followed the old rule (it passed), the canary stage after the rule changed: clearly worse, rolled back.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest

from mlops_provider.core import rollout, tags
from mlops_provider.core.durations import as_duration
from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.rollout import RolloutSettings, decide_rollout
from sample_data import write_labels, write_partitions
from support.task_instance import OutletEventsStandIn, TaskInstanceStandIn

UTC = timezone.utc
IDS = ["customer_id", "dt"]


# -- the decision, on synthetic windows ------------------------------------------------------------------------


def joined_window(mode: str, *, champion_accuracy: float, challenger_accuracy: float, rows: int, seed: int = 0,
                  canary_share: float = 0.2) -> pd.DataFrame:  # fmt: skip
    """What ``join_labels`` returns for a window: labels 0/1, each version right with its accuracy."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)

    def answers(accuracy: float, n: int, truth: np.ndarray) -> np.ndarray:
        return np.where(rng.random(n) < accuracy, truth, 1 - truth)

    ids = pd.DataFrame({"customer_id": np.arange(rows), "dt": "2026-03-01"})
    if mode == "shadow":
        champion = ids.assign(model_version="1", role="served", prediction=answers(champion_accuracy, rows, labels),
                              label=labels)  # fmt: skip
        shadow = ids.assign(model_version="2", role="shadow", prediction=answers(challenger_accuracy, rows, labels),
                            label=labels)  # fmt: skip
        return pd.concat([champion, shadow], ignore_index=True)
    canary = rng.random(rows) < canary_share
    versions = np.where(canary, "2", "1")
    right = np.where(canary, rng.random(rows) < challenger_accuracy, rng.random(rows) < champion_accuracy)
    return ids.assign(model_version=versions, role="served", prediction=np.where(right, labels, 1 - labels),
                      label=labels)  # fmt: skip


def decide(joined, mode, *, soak=timedelta(0), elapsed=timedelta(hours=1), metrics=None, **settings):
    return decide_rollout(
        joined, mode=mode, model_name="churn", champion_version="1", challenger_version="2",
        task_type="classification", id_columns=IDS, settings=RolloutSettings(**settings), soak_elapsed=elapsed,
        soak_time=soak, service_metrics=metrics,
    )  # fmt: skip


@pytest.mark.parametrize("mode", ["shadow", "canary"])
def test_a_better_challenger_is_promoted_a_worse_one_rolled_back_too_few_rows_extend(mode):
    better = decide(joined_window(mode, champion_accuracy=0.75, challenger_accuracy=0.85, rows=3000), mode)
    assert better.outcome == "promote", better.statement
    assert better.better["p_value"] < 0.05 and better.better["improvement"] > 0.05
    assert "PROMOTE" in better.statement and "at level 0.05" in better.statement
    worse = decide(joined_window(mode, champion_accuracy=0.85, challenger_accuracy=0.75, rows=3000, seed=1), mode)
    assert worse.outcome == "rollback" and "the challenger is worse" in worse.statement, worse.statement
    few = decide(joined_window(mode, champion_accuracy=0.75, challenger_accuracy=0.85, rows=300, seed=2), mode,
                 min_rows=400)  # fmt: skip
    assert few.outcome == "extend" and "insufficient evidence" in few.statement, few.statement
    soaking = decide(joined_window(mode, champion_accuracy=0.75, challenger_accuracy=0.85, rows=3000), mode,
                     soak=timedelta(hours=24), elapsed=timedelta(hours=2))  # fmt: skip
    assert soaking.outcome == "extend" and "soak time is not over" in soaking.statement, soaking.statement
    # A clearly worse challenger is rolled back during the soak already.
    early = decide(joined_window(mode, champion_accuracy=0.85, challenger_accuracy=0.7, rows=3000, seed=3), mode,
                   soak=timedelta(hours=24), elapsed=timedelta(hours=2))  # fmt: skip
    assert early.outcome == "rollback", early.statement


def test_tests_are_paired_in_shadow_and_unpaired_in_canary():
    shadow = decide(joined_window("shadow", champion_accuracy=0.8, challenger_accuracy=0.8, rows=2000), "shadow")
    canary = decide(joined_window("canary", champion_accuracy=0.8, challenger_accuracy=0.8, rows=2000), "canary")
    assert shadow.test.startswith("paired") and shadow.challenger_rows == shadow.champion_rows == 2000
    assert canary.test == "unpaired z-test" and canary.challenger_rows + canary.champion_rows == 2000
    # Equally good: no difference shown, the stage goes on (max_soak/on_timeout end it in the operator).
    assert {shadow.outcome, canary.outcome} == {"extend"}, (shadow.statement, canary.statement)
    assert "no difference shown yet" in canary.statement


def test_a_negative_min_improvement_is_a_tolerance():
    joined = joined_window("shadow", champion_accuracy=0.8, challenger_accuracy=0.79, rows=6000, seed=4)
    strict = decide(joined, "shadow")
    tolerant = decide(joined, "shadow", min_improvement=-0.03)
    assert strict.outcome in ("extend", "rollback") and tolerant.outcome == "promote", tolerant.statement


def prometheus(champion: tuple[int, int, list[int]], challenger: tuple[int, int, list[int]], alias="canary") -> str:
    """A /metrics text as mlops-serve writes it: requests, errors and latency buckets per version."""
    bounds = ["0.005", "0.01", "0.025", "0.05", "0.1", "+Inf"]
    lines = ["# TYPE mlops_serve_requests_total counter", "# TYPE mlops_serve_errors_total counter",
             "# TYPE mlops_serve_request_latency_seconds histogram"]  # fmt: skip
    for version, named, (requests, errors, buckets) in (("1", "champion", champion), ("2", alias, challenger)):
        labels = f'model="churn",version="{version}",alias="{named}"'
        lines += [
            f"mlops_serve_requests_total{{{labels}}} {requests}",
            f"mlops_serve_errors_total{{{labels}}} {errors}",
        ]
        lines += [
            f'mlops_serve_request_latency_seconds_bucket{{{labels},le="{b}"}} {c}'
            for b, c in zip(bounds, buckets, strict=True)
        ]
        lines += [f"mlops_serve_request_latency_seconds_count{{{labels}}} {buckets[-1]}",
                  f"mlops_serve_request_latency_seconds_sum{{{labels}}} 1.0"]  # fmt: skip
    return "\n".join(lines) + "\n"


def test_guardrails_error_rate_and_p99_latency_from_the_service_metrics():
    good = joined_window("canary", champion_accuracy=0.75, challenger_accuracy=0.85, rows=3000)
    fine = prometheus((9000, 9, [5000, 8000, 8900, 8990, 9000, 9000]), (1000, 1, [550, 890, 990, 999, 1000, 1000]))
    held = decide(good, "canary", metrics=[fine])
    assert held.outcome == "promote" and "Guardrails held" in held.statement, held.statement
    assert held.guardrails["error_rate"]["test"] == "two-proportion z-test"
    # Errors: 3% of the canary's requests vs 0.1% of the champion's.
    erring = prometheus((9000, 9, [5000, 8000, 8900, 8990, 9000, 9000]), (1000, 30, [550, 890, 990, 999, 1000, 1000]))
    failed = decide(good, "canary", metrics=[erring])
    assert failed.outcome == "rollback" and "error rate 3.000%" in failed.statement, failed.statement
    # Latency: the canary's p99 in the 50-100 ms bucket, the champion's in 25-50 ms.
    slow = prometheus((9000, 9, [5000, 8000, 8900, 8990, 9000, 9000]), (1000, 1, [100, 300, 700, 900, 1000, 1000]))
    lagging = decide(good, "canary", metrics=[slow, slow.replace('version="2"', 'version="9"')])  # a 2nd replica
    assert lagging.outcome == "rollback" and "max_latency_ratio=1.5" in lagging.statement, lagging.statement
    assert lagging.guardrails["challenger_requests"] == 1000  # version 9 of the 2nd replica is not the challenger
    # Too few requests: not judged, said.
    quiet = prometheus((50, 0, [10, 20, 30, 40, 50, 50]), (5, 5, [1, 2, 3, 4, 5, 5]))
    assert "not judged" in decide(good, "canary", metrics=[quiet]).statement


def test_histogram_quantile_interpolates_as_prometheus_does():
    buckets = {0.1: 50.0, 0.2: 90.0, 0.4: 100.0, float("inf"): 100.0}
    assert rollout.histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert rollout.histogram_quantile(0.7, buckets) == pytest.approx(0.15)
    assert rollout.histogram_quantile(0.99, buckets) == pytest.approx(0.38)
    assert rollout.histogram_quantile(0.99, {0.1: 1.0, float("inf"): 100.0}) == 0.1  # in +Inf: the last bound
    assert rollout.histogram_quantile(0.99, {}) is None


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: rollout.check_mode("blue-green"), "mode='blue-green' is not a rollout mode"),
        (lambda: rollout.check_share(1.5), r"canary_share=1.5 is not a share of requests in \[0, 1\]"),
        (lambda: rollout.check_share(-0.1), "canary_share=-0.1"),
        (lambda: rollout.check_share("ten percent"), "canary_share='ten percent'"),
        (lambda: rollout.check_gate_passed("churn", "3", {tags.GATE_DECISION: "rejected"}), "decided 'rejected'"),
        (lambda: rollout.check_gate_passed("churn", "3", {}), "the gate has not judged it"),
        (lambda: RolloutSettings(significance=0.7), "significance=0.7"),
        (lambda: RolloutSettings(min_rows=1), "min_labelled_rows=1"),
        (lambda: RolloutSettings(metric="speed"), "primary_metric='speed' is not a live metric"),
        (lambda: RolloutSettings(metric="roc_auc").metric_for("classification", "shadow"), "row by row"),
        (lambda: as_duration("a day", "soak_time"), "soak_time='a day'"),
        (lambda: decide_rollout(
            pd.DataFrame(), mode="shadow", model_name="churn", champion_version="2", challenger_version="2",
            task_type="classification", id_columns=IDS, settings=RolloutSettings(), soak_elapsed=timedelta(0),
            soak_time=timedelta(0)), "is the champion itself"),
    ],
)  # fmt: skip
def test_bad_inputs_are_refused_with_the_fix(call, match):
    with pytest.raises(ConfigurationError, match=match):
        call()


def test_bad_operator_arguments_fail_when_the_dag_is_parsed():
    from mlops_provider.operators.rollout import AnalyzeRolloutOperator, StartRolloutOperator

    with pytest.raises(ConfigurationError, match="mode='blue'"):
        StartRolloutOperator(task_id="start", model_name="churn", version="2", mode="blue")
    with pytest.raises(ConfigurationError, match="canary_share=2"):
        StartRolloutOperator(task_id="start", model_name="churn", version="2", mode="canary", canary_share=2)
    with pytest.raises(ConfigurationError, match="service_urls"):
        StartRolloutOperator(task_id="start", model_name="churn", version="2", service_urls=["scoring:8080"])
    live = {"task_id": "analyse", "model_name": "churn", "labels_uri": "/labels", "label_column": "churned",
            "id_columns": IDS}  # fmt: skip
    with pytest.raises(ConfigurationError, match="on_timeout='wait'"):
        AnalyzeRolloutOperator(on_timeout="wait", **live)
    with pytest.raises(ConfigurationError, match="skip_on"):
        AnalyzeRolloutOperator(skip_on=["maybe"], **live)
    with pytest.raises(ConfigurationError, match="soak_time=-5"):
        AnalyzeRolloutOperator(soak_time=-5, **live)


# -- the operators and the reference DAG on the real MLflow server --------------------------------------------


@pytest.fixture
def rollout_env(mlflow_server, monkeypatch, tmp_path):
    url = urlsplit(mlflow_server.url)
    model = f"rollout-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT",
                       json.dumps({"conn_type": "mlflow", "host": url.hostname, "port": url.port}))  # fmt: skip
    monkeypatch.setenv("MLOPS_MODEL_NAME", model)
    monkeypatch.setenv("MLOPS_WORK_URI", str(tmp_path / "work"))
    from mlops_provider.hooks.mlflow import MlflowHook

    return {"model": model, "tmp": tmp_path, "hook": MlflowHook(), "client": MlflowHook().get_conn(),
            "tracking_uri": mlflow_server.url}  # fmt: skip


def context(task_id: str, run: str = "manual__rollout") -> dict:
    ti = TaskInstanceStandIn(dag_id="rollout_tests", task_id=task_id, run_id=run)
    return {"ti": ti, "run_id": run, "outlet_events": OutletEventsStandIn()}


def train(env, data: Path, task_id: str) -> str:
    from mlops_provider.operators.training import TrainModelOperator

    return TrainModelOperator(
        task_id=task_id, dataset_uri=str(data), target_column="churned", model_name=env["model"], id_columns=IDS,
        timestamp_column="event_timestamp", skip_if_unchanged=False,
        estimator="sklearn.ensemble.HistGradientBoostingClassifier", estimator_params={"max_iter": 60},
    ).execute(context(task_id, f"manual__{task_id}"))["version"]  # fmt: skip


def crown(env, version: str) -> None:
    from mlops_provider.operators.registry import PromoteModelOperator

    result = PromoteModelOperator(task_id="promote", model_name=env["model"], version=version,
                                  thresholds={"accuracy": {"min": 0.5}}).execute(context("promote"))  # fmt: skip
    assert result["promoted"], result


def test_start_rollout_refuses_an_ungated_version_and_a_model_without_champion(rollout_env):
    from mlops_provider.operators.rollout import StartRolloutOperator

    env = rollout_env
    write_partitions(env["tmp"] / "data", start="2026-01-01", days=2, rows_per_day=400)
    first = train(env, env["tmp"] / "data", "train_first")
    start = StartRolloutOperator(task_id="start", model_name=env["model"], version=first, mode="canary")
    with pytest.raises(ConfigurationError, match="the gate has not judged it"):
        start.execute(context("start"))
    env["client"].set_model_version_tag(env["model"], first, tags.GATE_DECISION, "passed")
    with pytest.raises(ConfigurationError, match="has no @champion"):
        start.execute(context("start"))
    env["client"].set_model_version_tag(env["model"], first, tags.GATE_DECISION, "rejected")
    with pytest.raises(ConfigurationError, match="decided 'rejected'"):
        start.execute(context("start"))
    missing = StartRolloutOperator(task_id="start", model_name=env["model"], version="99", mode="canary")
    with pytest.raises(ConfigurationError, match="99"):
        missing.execute(context("start"))
    # Nothing moved, nothing recorded.
    assert env["client"].get_registered_model(env["model"]).aliases == {}
    assert not any(k.startswith(tags.HISTORY_PREFIX) for k in env["client"].get_registered_model(env["model"]).tags)


def write_log(env, partition: Path, *, champion: str, challenger: str, mode: str, share: float = 0.3) -> None:
    """A day's prediction log as mlops-serve writes it: champion served (and the challenger in shadow), or the
    canary answering ``share`` of the requests; stamped at 23:00 of the partition's day."""
    from mlops_provider.core.performance.log import prediction_log_file, prediction_log_rows, write_prediction_log
    from mlops_provider.core.prediction import score_frame

    day = partition.parent.name.split("=", 1)[1]
    frame = pd.read_parquet(partition).assign(dt=day)
    when = pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=23)
    models = {v: env["hook"].load_sklearn_model(f"models:/{env['model']}/{v}") for v in (champion, challenger)}
    common = {"id_columns": IDS, "prediction_time": when, "model_name": env["model"]}
    if mode == "shadow":
        parts = [
            prediction_log_rows(frame, score_frame(models[champion], frame), model_version=champion, role="served",
                                alias="champion", **common),
            prediction_log_rows(frame, score_frame(models[challenger], frame), model_version=challenger,
                                role="shadow", alias="shadow", **common),
        ]  # fmt: skip
    else:
        canary = np.random.default_rng(5).random(len(frame)) < share
        parts = [
            prediction_log_rows(rows, score_frame(models[version], rows), model_version=version, role="served",
                                alias=alias, **common)
            for version, alias, rows in ((champion, "champion", frame[~canary]), (challenger, "canary", frame[canary]))
        ]  # fmt: skip
    uri = prediction_log_file(str(env["tmp"] / "prediction_log"), env["model"], when, dag_id="mlops-serve",
                              run_id="replica-1", task_id=f"{mode}-0")  # fmt: skip
    write_prediction_log(pd.concat(parts, ignore_index=True), uri)


def day_window(partition: Path) -> list[str]:
    day = datetime.fromisoformat(partition.parent.name.split("=", 1)[1]).replace(tzinfo=UTC)
    return [day.isoformat(), (day + timedelta(days=1)).isoformat()]


def run_rollout_dag(env, challenger: str, shadow_day: Path, canary_day: Path, service_urls: list[str] = ()):
    from test_reference_dags import load_dags

    conf = {
        "service_urls": list(service_urls),
        "model_name": env["model"], "version": challenger, "gate_metric": "roc_auc", "gate_min_improvement": 0.0,
        "canary_share": 0.3, "soak_hours": 0, "max_soak_hours": 0, "labels_uri": str(env["tmp"] / "labels"),
        "label_column": "churned", "id_columns": IDS, "prediction_log_uri": str(env["tmp"] / "prediction_log"),
        "shadow_window": day_window(shadow_day), "canary_window": day_window(canary_day),
    }  # fmt: skip
    return load_dags()["mlops_progressive_rollout"].test(run_conf=conf)


def scenario(env, *, champion_rule: str):
    """Two models, one per churn rule; the champion learnt ``champion_rule`` ("old" or "new")."""
    old = write_partitions(env["tmp"] / "old", start="2026-01-01", days=4, rows_per_day=800)
    new = write_partitions(env["tmp"] / "new", start="2026-02-01", days=4, rows_per_day=800, concept_drift=True)
    assert old and new
    first, second = ("old", "new") if champion_rule == "old" else ("new", "old")
    champion = train(env, env["tmp"] / first, f"train_{first}")
    crown(env, champion)
    challenger = train(env, env["tmp"] / second, f"train_{second}")
    return champion, challenger


def history_actions(env) -> list[tuple]:
    from mlops_provider.core.registry import read_history

    return [
        (h["action"], h["alias"], h["from_version"], h["to_version"]) for h in read_history(env["client"], env["model"])
    ]


def test_reference_dag_promotes_a_better_challenger_through_shadow_and_canary(airflow_db, rollout_env):
    from support.serving import call, churn_records, predict, start_serving
    from test_reference_dags import states, xcom

    env = rollout_env
    champion, challenger = scenario(env, champion_rule="old")
    # The traffic follows the new rule in both stages.
    shadow_day, canary_day = write_partitions(env["tmp"] / "live", start="2026-03-01", days=2, rows_per_day=1000,
                                              concept_drift=True)  # fmt: skip
    write_labels([shadow_day, canary_day], env["tmp"] / "labels", delay_days=2)
    write_log(env, shadow_day, champion=champion, challenger=challenger, mode="shadow")
    write_log(env, canary_day, champion=champion, challenger=challenger, mode="canary")
    # A real mlops-serve that follows only when the DAG calls its /refresh (its own polling is an hour away).
    service = start_serving(env["tracking_uri"], env["model"], env["tmp"] / "serve", id_columns=IDS,
                            refresh_seconds=3600)  # fmt: skip
    try:
        run = run_rollout_dag(env, challenger, shadow_day, canary_day, service_urls=[service.url])
        followed = call(f"{service.url}/version")[1]
        answer = predict(service.url, [{**churn_records(1)[0], "dt": "2026-03-09"}])
    finally:
        service.stop()
    assert str(run.state) == "success", states(run)
    assert followed["champion"]["version"] == challenger and followed["canary"] is None, followed
    assert (answer["model_version"], answer["alias"]) == (challenger, "champion")
    assert [r["refreshed"] for r in xcom(run, "start_canary")["refreshed"]] == [True]
    shadow = xcom(run, "analyse_shadow")
    assert shadow["outcome"] == "promote" and shadow["test"].startswith("paired"), shadow["statement"]
    assert shadow["challenger_rows"] == 1000 and shadow["history_seq"] is None  # a passed stage moves nothing
    canary = xcom(run, "analyse_canary")
    assert canary["outcome"] == "promote" and canary["test"] == "unpaired z-test", canary["statement"]
    assert 250 < canary["challenger_rows"] < 350 and canary["champion_rows"] > 650
    assert canary["better"]["p_value"] < 0.05 and canary["better"]["improvement"] > 0.05, canary["better"]
    client = env["client"]
    model = client.get_registered_model(env["model"])
    assert model.aliases.get("champion") == challenger and "canary" not in model.aliases
    assert "shadow" not in model.aliases and model.tags[tags.CANARY_SHARE] == "0"
    assert history_actions(env)[1:] == [
        ("rollout_start", "shadow", None, challenger),
        ("rollout_start", "canary", None, challenger),
        ("rollout_promote", "champion", champion, challenger),
    ]
    assert client.get_model_version(env["model"], challenger).tags[tags.GATE_DECISION] == "passed"


def test_reference_dag_rolls_back_a_canary_that_is_worse(airflow_db, rollout_env):
    from test_reference_dags import states, xcom

    env = rollout_env
    champion, challenger = scenario(env, champion_rule="new")
    # The shadow stage saw the old rule (the challenger's), the canary stage the new one (the champion's).
    (shadow_day,) = write_partitions(env["tmp"] / "live", start="2026-03-01", days=1, rows_per_day=1000)
    (canary_day,) = write_partitions(env["tmp"] / "live", start="2026-03-02", days=1, rows_per_day=1000,
                                     concept_drift=True)  # fmt: skip
    write_labels([shadow_day, canary_day], env["tmp"] / "labels", delay_days=2)
    write_log(env, shadow_day, champion=champion, challenger=challenger, mode="shadow")
    write_log(env, canary_day, champion=champion, challenger=challenger, mode="canary")

    run = run_rollout_dag(env, challenger, shadow_day, canary_day)
    assert str(run.state) == "success", states(run)
    assert xcom(run, "analyse_shadow")["outcome"] == "promote"
    canary = xcom(run, "analyse_canary")
    assert canary["outcome"] == "rollback" and "the challenger is worse" in canary["statement"], canary["statement"]
    assert canary["worse"]["p_value"] < 0.05 and canary["better"]["improvement"] < -0.05, canary["worse"]
    model = env["client"].get_registered_model(env["model"])
    assert model.aliases.get("champion") == champion and "canary" not in model.aliases
    assert model.tags[tags.CANARY_SHARE] == "0"
    assert history_actions(env)[-1] == ("rollout_rollback", "canary", challenger, None)
    assert canary["history_seq"] == len(history_actions(env))


def test_retries_move_nothing_twice_and_a_rollback_ends_the_canary(rollout_env):
    """Operators run directly: StartRollout and AnalyzeRollout retried in the same DAG run, on a canary that answers
    wrong (its predictions flipped) on the logged requests."""
    from mlops_provider.core.performance.log import prediction_log_file, prediction_log_rows, write_prediction_log
    from mlops_provider.core.prediction import score_frame
    from mlops_provider.operators.rollout import AnalyzeRolloutOperator, StartRolloutOperator

    env = rollout_env
    write_partitions(env["tmp"] / "data", start="2026-01-01", days=2, rows_per_day=500)
    champion = train(env, env["tmp"] / "data", "train_champion")
    crown(env, champion)
    challenger = train(env, env["tmp"] / "data", "train_challenger")
    env["client"].set_model_version_tag(env["model"], challenger, tags.GATE_DECISION, "passed")
    start = StartRolloutOperator(task_id="start", model_name=env["model"], version=challenger, mode="canary",
                                 canary_share="0.25", service_urls=["http://127.0.0.1:9"])  # fmt: skip
    first = start.execute(context("start", "manual__retry"))
    again = start.execute(context("start", "manual__retry"))
    assert not first["replayed"] and again["replayed"] and again["history_seq"] == first["history_seq"]
    assert first["refreshed"] == [
        {"url": "http://127.0.0.1:9", "refreshed": False, "error": first["refreshed"][0]["error"]}
    ]
    model = env["client"].get_registered_model(env["model"])
    assert model.aliases["canary"] == challenger and model.tags[tags.CANARY_SHARE] == "0.25"
    assert [a for a, *_ in history_actions(env)] == ["promote", "rollout_start"]

    # No labelled prediction yet: with max_soak the analysis waits (defers); once max_soak passed, on_timeout.
    from airflow.sdk.exceptions import TaskDeferred

    waiting = {"task_id": "analyse", "model_name": env["model"], "mode": "canary", "labels_uri": str(env["tmp"] / "labels"),
               "label_column": "churned", "id_columns": IDS, "prediction_log_uri": str(env["tmp"] / "prediction_log")}  # fmt: skip
    with pytest.raises(TaskDeferred) as deferred:
        AnalyzeRolloutOperator(max_soak=timedelta(hours=6), poll_interval=600, **waiting).execute(context("wait"))
    assert deferred.value.method_name == "execute_complete"
    timed_out = AnalyzeRolloutOperator(max_soak=0, on_timeout="extend", **waiting).execute(context("wait"))
    assert timed_out["outcome"] == "extend" and "insufficient evidence" in timed_out["statement"]
    assert "without a verdict: EXTEND (on_timeout)" in timed_out["statement"] and timed_out["history_seq"] is None

    (live,) = write_partitions(env["tmp"] / "live", start="2026-03-01", days=1, rows_per_day=1000)
    write_labels([live], env["tmp"] / "labels", delay_days=2)
    frame = pd.read_parquet(live).assign(dt="2026-03-01")
    canary = np.random.default_rng(1).random(len(frame)) < 0.25
    when = pd.Timestamp("2026-03-01T12:00:00+00:00")
    rows = []
    for version, alias, part in ((champion, "champion", frame[~canary]), (challenger, "canary", frame[canary])):
        scores = score_frame(env["hook"].load_sklearn_model(f"models:/{env['model']}/{version}"), part)
        if alias == "canary":
            scores = scores.assign(prediction=1 - scores["prediction"]).drop(columns=["probability_0", "probability_1"])
        rows.append(prediction_log_rows(part, scores, id_columns=IDS, prediction_time=when, model_name=env["model"],
                                        model_version=version, role="served", alias=alias))  # fmt: skip
    log_root = str(env["tmp"] / "prediction_log")
    write_prediction_log(
        pd.concat(rows, ignore_index=True),
        prediction_log_file(log_root, env["model"], when, dag_id="mlops-serve", run_id="r", task_id="0"),
    )

    analyse = AnalyzeRolloutOperator(
        task_id="analyse", model_name=env["model"], mode="canary", labels_uri=str(env["tmp"] / "labels"),
        label_column="churned", id_columns=IDS, prediction_log_uri=log_root,
        window_start="2026-03-01T00:00:00+00:00", window_end="2026-03-02T00:00:00+00:00",
    )  # fmt: skip
    ctx = context("analyse", "manual__retry")
    decided = analyse.execute(ctx)
    assert decided["outcome"] == "rollback" and decided["challenger_version"] == challenger, decided["statement"]
    assert ctx["ti"].xcoms["rollout_decision"]["outcome"] == "rollback"
    replayed = analyse.execute(context("analyse", "manual__retry"))
    assert replayed["replayed"] and replayed["outcome"] == "rollback"
    assert replayed["history_seq"] == decided["history_seq"]
    assert [a for a, *_ in history_actions(env)] == ["promote", "rollout_start", "rollout_rollback"]
    model = env["client"].get_registered_model(env["model"])
    assert "canary" not in model.aliases and model.tags[tags.CANARY_SHARE] == "0"
    assert model.aliases["champion"] == champion
    # A new run of the analysis finds no canary any more, and says how to start one.
    with pytest.raises(ConfigurationError, match=r"no version is @canary.*StartRolloutOperator"):
        analyse.execute(context("analyse", "manual__later"))


def test_the_guardrails_read_what_mlops_serve_exposes():
    """The contract's metric names and labels, as the service's own registry writes them."""
    from mlops_provider.serving.metrics import ServingMetrics

    metrics = ServingMetrics()
    for version, alias, count, errors, seconds in (("1", "champion", 900, 1, 0.002), ("2", "canary", 120, 9, 0.004)):
        requests, _, latency, failed = metrics.for_route("churn", version, alias)
        for _ in range(count):
            requests.inc()
            latency.observe(seconds)
        failed.inc(errors)
    traffic = rollout.service_traffic([metrics.exposition().decode()], "churn")
    assert (traffic["1"].requests, traffic["2"].requests, traffic["2"].errors) == (900, 120, 9)
    assert 0.003 < traffic["2"].p99() <= 0.005 and 0.0015 < traffic["1"].p99() <= 0.002
    checks, breaches = rollout.guardrails(traffic, "1", "2", RolloutSettings())
    assert len(breaches) == 2 and checks["latency_p99"]["ratio"] > 1.5, breaches  # 7.5% errors, twice as slow
