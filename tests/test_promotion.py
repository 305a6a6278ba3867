"""Promotion on the real MLflow server with models trained by the provider: the better challenger wins, a
worse one is rejected with its reasons recorded, cold start, eight concurrent promotions, batch scoring."""

from __future__ import annotations

import json
import os
import threading
import uuid
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest

from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.identity import TaskIdentity
from mlops_provider.core.registry import alias_version, promote_version, read_history
from mlops_provider.hooks.mlflow import MlflowHook
from sample_data import churn_frame

GATE = {"roc_auc": {"min": 0.6, "min_absolute_change": 0.0001}}
# Fewer informative features: a weaker model (shuffling labels would barely change a linear model's ranking).
FEATURE_SETS = [
    ["tenure_months", "monthly_charges", "support_calls", "plan", "contract"],
    ["tenure_months", "monthly_charges", "support_calls", "contract"],
    ["tenure_months", "monthly_charges", "support_calls"],
    ["tenure_months", "support_calls", "contract"],
    ["tenure_months", "contract"],
    ["support_calls", "contract"],
    ["monthly_charges", "plan"],
    ["plan"],
]


@pytest.fixture(scope="module")
def registry(mlflow_server):
    """The default MLflow connection on the test server, for the whole module."""
    url = urlsplit(mlflow_server.url)
    name = "AIRFLOW_CONN_MLFLOW_DEFAULT"
    os.environ[name] = json.dumps({"conn_type": "mlflow", "host": url.hostname, "port": url.port})
    yield MlflowHook()
    os.environ.pop(name, None)


def shuffled(frame: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    noisy = frame.copy()
    rows = rng.choice(len(frame), int(len(frame) * share), replace=False)
    noisy.loc[noisy.index[rows], "churned"] = rng.permutation(noisy.loc[noisy.index[rows], "churned"].to_numpy())
    return noisy


@pytest.fixture(scope="module")
def challengers(registry):
    """Eight versions of one model, trained by the provider on fewer and fewer informative features."""
    from mlops_provider.core.training import TrainingConfig, train_and_register

    model_name = f"churn-{uuid.uuid4().hex[:8]}"
    clean = churn_frame(4000, seed=21)
    with registry.session() as client:
        experiment_id = registry.get_or_create_experiment(model_name)
        versions = [
            train_and_register(
                clean,
                TrainingConfig(
                    target_column="churned", feature_columns=features, timestamp_column="event_timestamp",
                    estimator="sklearn.linear_model.LogisticRegression", estimator_params={"max_iter": 500},
                ),
                client, experiment_id=experiment_id, model_name=model_name, tags={},
                dataset_uri=f"memory://{'+'.join(features)}",
            ).version
            for features in FEATURE_SETS
        ]  # fmt: skip
    return model_name, versions


@pytest.fixture(scope="module")
def evaluation():
    return churn_frame(3000, seed=99)


def scorer(hook: MlflowHook, model_name: str, frame: pd.DataFrame):
    from mlops_provider.operators.registry import score_version

    return lambda version: score_version(hook, model_name, version, frame, "churned", "classification")


def actor(name: str) -> TaskIdentity:
    return TaskIdentity(dag_id="test", run_id=name, task_id="promote")


def test_eight_concurrent_promotions_end_with_the_best(registry, challengers, evaluation):
    model_name, versions = challengers
    client = registry.get_conn()
    score = scorer(registry, model_name, evaluation)
    truth = {v: score(v)["roc_auc"] for v in versions}
    outcomes: dict[str, object] = {}

    def promote(version: str) -> None:
        outcomes[version] = promote_version(
            client, model_name, version, thresholds=GATE, score=score, identity=actor(f"run-{version}"),
        )  # fmt: skip

    threads = [threading.Thread(target=promote, args=(v,)) for v in reversed(versions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    champion = alias_version(client, model_name, "champion")
    step = GATE["roc_auc"]["min_absolute_change"]
    assert truth[champion] + step > max(truth.values()), (champion, truth)  # nobody beats it by a gate step
    history = read_history(client, model_name)
    assert [h["seq"] for h in history] == list(range(1, len(history) + 1))
    assert history[0]["from_version"] is None
    for before, after in zip(history, history[1:], strict=False):
        assert after["from_version"] == before["to_version"]  # no move was lost or interleaved
        assert truth[after["to_version"]] >= truth[before["to_version"]] + step  # each move improved by a step
    assert history[-1]["to_version"] == champion
    promoted = {v for v, o in outcomes.items() if o.promoted}
    assert promoted == {h["to_version"] for h in history}
    for version, outcome in outcomes.items():
        tags = client.get_model_version(model_name, version).tags
        assert tags["mlops.gate.decision"] == ("promoted" if outcome.promoted else "rejected")
        if not outcome.promoted:
            assert "roc_auc" in tags["mlops.gate.detail"] and outcome.reasons


def test_a_retry_returns_the_recorded_decision(registry, challengers, evaluation):
    model_name, versions = challengers
    client = registry.get_conn()
    worst, retried_task = versions[-1], actor(f"retry-{uuid.uuid4().hex[:6]}")
    score = scorer(registry, model_name, evaluation)
    first = promote_version(client, model_name, worst, thresholds=GATE, score=score, identity=retried_task)
    history_before = read_history(client, model_name)
    again = promote_version(client, model_name, worst, thresholds=GATE, score=score, identity=retried_task)
    assert again.replayed and again.promoted == first.promoted and again.reasons == first.reasons
    assert read_history(client, model_name) == history_before


@pytest.mark.airflow_db
def test_promotion_dag_cold_start_better_worse_and_scoring(airflow_db, registry, challengers, tmp_path):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    from dags.mlops_test_promotion import dag
    from mlops_provider.core.training import TrainingConfig, train_and_register

    model_name = f"cold-{uuid.uuid4().hex[:8]}"
    config = TrainingConfig(target_column="churned", id_columns=["customer_id"], timestamp_column="event_timestamp",
                            estimator="sklearn.linear_model.LogisticRegression")  # fmt: skip
    with registry.session() as client:
        experiment_id = registry.get_or_create_experiment(model_name)
        good = train_and_register(churn_frame(3000, seed=5), config, client, experiment_id=experiment_id,
                                  model_name=model_name, tags={}, dataset_uri="memory://good").version  # fmt: skip
        bad = train_and_register(shuffled(churn_frame(3000, seed=6), 0.9, 1), config, client,
                                 experiment_id=experiment_id, model_name=model_name, tags={},
                                 dataset_uri="memory://bad").version  # fmt: skip
    score_uri = tmp_path / "to_score.parquet"
    churn_frame(500, seed=7).to_parquet(score_uri)
    conf = {"model_name": model_name, "score_uri": str(score_uri), "output_uri": str(tmp_path / "scores.parquet")}

    cold = dag.test(run_conf={**conf, "version": good})
    states = {ti.task_id: ti.state for ti in cold.get_task_instances()}
    assert states == {"promote": "success", "deploy": "success", "score": "success"}
    assert alias_version(client, model_name, "champion") == good
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    assert len(scores) == 500 and set(scores["model_version"]) == {good}
    assert {"customer_id", "prediction", "probability_0", "probability_1"} <= set(scores.columns)

    worse = dag.test(run_conf={**conf, "version": bad, "output_uri": str(tmp_path / "scores2.parquet")})
    states = {ti.task_id: ti.state for ti in worse.get_task_instances()}
    assert states == {"promote": "skipped", "deploy": "skipped", "score": "skipped"}
    assert alias_version(client, model_name, "champion") == good
    tags = client.get_model_version(model_name, bad).tags
    assert tags["mlops.gate.decision"] == "rejected"
    assert "roc_auc" in json.loads(tags["mlops.gate.detail"])["reasons"][0]
    assert json.loads(tags["mlops.gate.by"])["run_id"] == worse.run_id

    with create_session() as session:
        moves = [e.extra for e in session.query(AssetEvent).all()
                 if e.asset.uri.rstrip("/") == f"mlflow://{model_name}@champion"]  # fmt: skip
    assert [(m["action"], m["version"]) for m in moves] == [("promote", good)]


def test_no_thresholds_is_refused_when_the_dag_is_parsed():
    from mlops_provider.operators.registry import PromoteModelOperator

    with pytest.raises(ConfigurationError, match="a gate that passes every challenger is a bug"):
        PromoteModelOperator(task_id="p", model_name="m", version="1", thresholds={})
