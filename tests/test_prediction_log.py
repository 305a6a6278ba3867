"""The prediction log: BatchPredictOperator writes what each model version predicted (served and shadow), one file
per DAG run and task; windows read back half-open from only their ``dt=`` partitions; labels join to the newest
prediction made before they were known; bad labels are refused with what to change.

Everything is real: models trained and registered by the provider on the MLflow server, a ``$MLOPS_HOME`` of this
module, parquet files on the local disk, and S3 on the moto server.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_provider.core.errors import (
    ConfigurationError,
    DatasetError,
    DatasetNotFoundError,
    LabelJoinError,
    NoMatchingLabelsError,
    PredictionLogError,
)
from mlops_provider.core.performance.labels import join_labels
from mlops_provider.core.performance.log import (
    prediction_log_file,
    prediction_log_rows,
    read_prediction_log,
    write_prediction_log,
)
from mlops_provider.operators.prediction import BatchPredictOperator
from sample_data import churn_frame
from support import task_instance
from support.environment import environment, mlflow_connection
from support.training_data import DELIVERY_FEATURES, DELIVERY_TARGET, delivery_frame

UTC = timezone.utc
TAG = uuid.uuid4().hex[:8]
CHURN = f"log-churn-{TAG}"  # v1 @champion (all features), v2 @challenger (three features), v3 cannot be loaded
DELIVERY = f"log-delivery-{TAG}"  # a regressor, v1 @champion
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "plan", "contract"]
DAG_ID = "prediction_log_tests"
RUN_ID = "scheduled__2026-01-02T00:00:00+00:00"
INTERVAL_END = datetime(2026, 1, 2, 6, 0, tzinfo=UTC)
LOG_COLUMNS = ["prediction_time", "model_name", "model_version", "role", "alias", "prediction"]

TaskInstanceStandIn = partial(task_instance.TaskInstanceStandIn, dag_id=DAG_ID, run_id=RUN_ID, task_id="score")


def context(ti=None, **values) -> dict:
    ti = ti or TaskInstanceStandIn()
    return {"ti": ti, "run_id": ti.run_id, "data_interval_end": INTERVAL_END, "logical_date": INTERVAL_END, **values}


# -- the module's world: a $MLOPS_HOME of its own, models on the MLflow server, data files ------------------


class World:
    def __init__(self, root: Path, home: Path, data: dict[str, str]) -> None:
        self.root, self.home, self.data = root, home, data

    @property
    def log_root(self) -> Path:
        return self.home / "prediction_log"

    def out(self, name: str) -> str:
        return str(self.root / "out" / f"{name}-{uuid.uuid4().hex[:6]}.parquet")

    def predict(self, **overrides) -> BatchPredictOperator:
        settings = {"task_id": "score", "model_name": CHURN, "dataset_uri": self.data["churn"],
                    "output_uri": self.out("scores"), **overrides}  # fmt: skip
        return BatchPredictOperator(**settings)


def _train(hook, frame: pd.DataFrame, model_name: str, target: str, features: list[str], estimator: str, data: str):
    from mlops_provider.core.training import TrainingConfig, train_and_register

    experiment_id = hook.get_or_create_experiment(model_name)
    config = TrainingConfig(target_column=target, feature_columns=features, estimator=estimator,
                            estimator_params={"max_iter": 300} if "Logistic" in estimator else {},
                            reference_sample_rows=100, plot_sample_rows=100)  # fmt: skip
    with hook.session() as client:
        return train_and_register(frame, config, client, experiment_id=experiment_id, model_name=model_name,
                                  tags={}, dataset_uri=data)  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory, mlflow_server):
    from mlops_provider.hooks.mlflow import MlflowHook

    root = tmp_path_factory.mktemp("prediction-log")
    with environment(MLOPS_HOME=str(root / "home"), AIRFLOW_CONN_MLFLOW_DEFAULT=mlflow_connection(mlflow_server.url)):
        (root / "data").mkdir()
        (root / "out").mkdir()
        data = {"churn": str(root / "data" / "churn.parquet"), "churn_train": str(root / "data" / "train.parquet"),
                "delivery": str(root / "data" / "delivery.parquet")}  # fmt: skip
        churn_frame(1500, seed=3).to_parquet(data["churn_train"], index=False)
        churn_frame(300, seed=4).to_parquet(data["churn"], index=False)
        delivery_frame(200, seed=5).to_parquet(data["delivery"], index=False)
        hook = MlflowHook()
        training = pd.read_parquet(data["churn_train"])
        logistic = "sklearn.linear_model.LogisticRegression"
        _train(hook, training, CHURN, "churned", FEATURES, logistic, data["churn_train"])
        _train(hook, training, CHURN, "churned", FEATURES[:3], logistic, data["churn_train"])
        _train(hook, delivery_frame(800, seed=6), DELIVERY, DELIVERY_TARGET, DELIVERY_FEATURES,
               "sklearn.linear_model.Ridge", data["delivery"])  # fmt: skip
        client = hook.get_conn()
        nothing = client.create_run(client.get_experiment_by_name(CHURN).experiment_id)
        # v3: registered, but nothing there to load
        client.create_model_version(CHURN, f"runs:/{nothing.info.run_id}/not-a-model", run_id=nothing.info.run_id)
        client.set_registered_model_alias(CHURN, "champion", "1")
        client.set_registered_model_alias(CHURN, "challenger", "2")
        client.set_registered_model_alias(DELIVERY, "champion", "1")
        yield World(root, root / "home", data)


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# -- the log written by BatchPredictOperator ---------------------------------------------------------------


def test_log_layout_and_columns_with_the_output_unchanged(world):
    plain = world.predict().execute(context())
    assert plain["prediction_log_uri"] is None and plain["shadow_versions"] == []
    assert files_under(world.log_root) == []  # no id_columns: no log

    result = world.predict(id_columns=["customer_id"], include_probabilities=False).execute(context())

    expected = (
        f"{world.log_root}/{CHURN}/dt=2026-01-02/"
        "prediction_log_tests__scheduled__2026-01-02T00_00_00_00_00__score.parquet"
    )
    assert result["prediction_log_uri"] == expected
    assert result["shadow_versions"] == [] and result["model_version"] == "1"
    assert files_under(world.log_root / CHURN) == [
        "dt=2026-01-02/prediction_log_tests__scheduled__2026-01-02T00_00_00_00_00__score.parquet"
    ]
    log = pd.read_parquet(expected)
    assert list(log.columns) == ["customer_id", *LOG_COLUMNS, "probability_0", "probability_1"]
    assert len(log) == 300
    assert str(log["prediction_time"].dtype) == "datetime64[ns, UTC]"
    assert set(log["prediction_time"]) == {pd.Timestamp(INTERVAL_END)}
    assert set(log["model_name"]) == {CHURN} and set(log["model_version"]) == {"1"}
    assert set(log["role"]) == {"served"} and set(log["alias"]) == {"champion"}
    assert np.allclose(log["probability_0"] + log["probability_1"], 1.0)  # logged even without them in the output

    output = pd.read_parquet(result["output_uri"])
    without_log = pd.read_parquet(plain["output_uri"])
    assert "role" not in output.columns and "probability_1" not in output.columns
    assert output.equals(without_log.drop(columns=["probability_0", "probability_1"]))
    merged = output.merge(log, on="customer_id", suffixes=("_output", "_log"))
    assert len(merged) == 300 and (merged["prediction_output"] == merged["prediction_log"]).all()


def test_a_rerun_replaces_its_file_with_the_same_rows(world):
    ti = TaskInstanceStandIn(run_id="scheduled__2026-01-07T00:00:00+00:00")
    when = {"data_interval_end": datetime(2026, 1, 7, 0, 0, tzinfo=UTC)}
    task = world.predict(id_columns="customer_id", prediction_log_uri=str(world.root / "rerun-log"))
    first = task.execute(context(ti, **when))
    written = pd.read_parquet(first["prediction_log_uri"])
    retry = task.execute(context(TaskInstanceStandIn(run_id=ti.run_id, try_number=2), **when))

    assert retry["prediction_log_uri"] == first["prediction_log_uri"]
    assert files_under(world.root / "rerun-log") == [
        f"{CHURN}/dt=2026-01-07/prediction_log_tests__scheduled__2026-01-07T00_00_00_00_00__score.parquet"
    ]
    pd.testing.assert_frame_equal(pd.read_parquet(retry["prediction_log_uri"]), written)
    window = read_prediction_log(str(world.root / "rerun-log"), CHURN, "2026-01-06T00:00:00Z", "2026-01-08T00:00:00Z")
    assert len(window) == 300 and not window.duplicated(["customer_id", "model_version"]).any()

    # Without an interval end, the logical date; an explicit prediction_time wins over both.
    late = task.execute(context(ti, data_interval_end=None, logical_date=datetime(2026, 1, 9, 23, tzinfo=UTC)))
    assert "/dt=2026-01-09/" in late["prediction_log_uri"]
    pinned = world.predict(id_columns=["customer_id"], prediction_log_uri=str(world.root / "rerun-log"),
                           prediction_time="2026-01-10T01:30:00+02:00").execute(context(ti))  # fmt: skip
    assert "/dt=2026-01-09/" in pinned["prediction_log_uri"]  # 2026-01-09T23:30 UTC
    stamps = pd.read_parquet(pinned["prediction_log_uri"])["prediction_time"]
    assert set(stamps) == {pd.Timestamp("2026-01-09T23:30:00Z")}


def test_shadow_versions_are_logged_under_their_own_version_and_leave_the_output_alone(world, capsys):
    root = str(world.root / "shadow-log")
    served_only = world.predict().execute(context())
    capsys.readouterr()
    result = world.predict(
        id_columns=["customer_id"], prediction_log_uri=root,
        shadow_aliases=["challenger", "no_such_challenger", "champion"], shadow_versions=["2"],
    ).execute(context())  # fmt: skip

    assert result["model_version"] == "1" and result["shadow_versions"] == ["2"]
    task_log = capsys.readouterr().out
    assert f"Shadow alias {CHURN}@no_such_challenger points at no version: skipped" in task_log
    assert f"Shadow alias {CHURN}@champion is version 1, scored already: skipped" in task_log
    pd.testing.assert_frame_equal(pd.read_parquet(result["output_uri"]), pd.read_parquet(served_only["output_uri"]))

    log = pd.read_parquet(result["prediction_log_uri"])
    assert len(log) == 600  # each version once: champion (served) and v2 (shadow); v2 pinned again is not repeated
    by_version = log.groupby(["model_version", "role", "alias"]).size().to_dict()
    assert by_version == {("1", "served", "champion"): 300, ("2", "shadow", "challenger"): 300}
    v2_alone = world.predict(version=2).execute(context())
    v2_scores = pd.read_parquet(v2_alone["output_uri"]).set_index("customer_id")
    shadow = log[log["role"] == "shadow"].set_index("customer_id")
    assert (shadow["prediction"] == v2_scores.loc[shadow.index, "prediction"]).all()
    assert np.allclose(shadow["probability_1"], v2_scores.loc[shadow.index, "probability_1"])
    served = log[log["role"] == "served"].set_index("customer_id")
    assert not np.allclose(served["probability_1"], shadow.loc[served.index, "probability_1"])

    # A pinned served version logs alias "", and a shadow alias resolving to it is not scored twice.
    pinned = world.predict(version="2", id_columns=["customer_id"], prediction_log_uri=root,
                           shadow_aliases=["challenger"]).execute(context(TaskInstanceStandIn(task_id="pinned")))  # fmt: skip
    assert pinned["shadow_versions"] == []
    assert set(pd.read_parquet(pinned["prediction_log_uri"])["alias"]) == {""}


def test_nothing_is_written_when_ids_are_missing_or_a_model_fails_to_load(world):
    root = world.root / "failing-log"
    output = world.out("failing")
    with pytest.raises(ConfigurationError) as missing_ids:
        world.predict(id_columns=["cust_id"], prediction_log_uri=str(root), output_uri=output).execute(context())
    assert re.search(r"id_columns names \['cust_id'\], which .*churn\.parquet does not have; it has \['customer_id'",
                     str(missing_ids.value))  # fmt: skip
    with pytest.raises(ConfigurationError) as unloadable:
        world.predict(id_columns=["customer_id"], prediction_log_uri=str(root), output_uri=output,
                      shadow_versions=[3]).execute(context())  # fmt: skip
    assert re.search(rf"Could not load models:/{CHURN}/3 \(the shadow version, pinned\): .*MLmodel.*Nothing was "
                     r"written; check that the version's artifacts exist", str(unloadable.value))  # fmt: skip
    with pytest.raises(ConfigurationError, match=r"has no version '99'"):
        world.predict(id_columns=["customer_id"], prediction_log_uri=str(root), output_uri=output,
                      shadow_versions=[99]).execute(context())  # fmt: skip
    with pytest.raises(ConfigurationError, match=r"prediction_time='2026-01-02T00:00:00' has no time zone.*\+00:00"):
        world.predict(id_columns=["customer_id"], prediction_log_uri=str(root), output_uri=output,
                      prediction_time="2026-01-02T00:00:00").execute(context())  # fmt: skip
    assert not Path(output).exists() and files_under(root) == []

    # Settings that cannot work are refused when the DAG is parsed.
    with pytest.raises(ConfigurationError, match=r"id_columns is not given; name the columns that identify a row"):
        world.predict(prediction_log_uri="s3://bucket/log")
    with pytest.raises(ConfigurationError, match=r"shadow rows go only to the log; give id_columns"):
        world.predict(shadow_aliases=["challenger"])
    with pytest.raises(ConfigurationError, match=r"shadow rows go only to the log"):
        world.predict(id_columns=["customer_id"], prediction_log_uri=False, shadow_versions=[2])
    with pytest.raises(ConfigurationError, match=r"shadow_versions holds \['two'\], which are not version numbers"):
        world.predict(id_columns=["customer_id"], shadow_versions=["two"])
    with pytest.raises(ConfigurationError, match=r"names a file; give the log's root folder"):
        world.predict(id_columns=["customer_id"], prediction_log_uri="/tmp/log.parquet")
    off = world.predict(id_columns=["customer_id"], prediction_log_uri="False").execute(context())
    assert off["prediction_log_uri"] is None


# -- reading windows ------------------------------------------------------------------------------------------


def test_windows_are_half_open(world):
    root = str(world.root / "window-log")
    for run, moment in enumerate(("2026-01-02T00:00:00Z", "2026-01-02T23:59:59.999999Z", "2026-01-03T00:00:00Z")):
        world.predict(id_columns=["customer_id"], prediction_log_uri=root, prediction_time=moment).execute(
            context(TaskInstanceStandIn(run_id=f"manual__{run}"))
        )
    day = read_prediction_log(root, CHURN, datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC))
    assert sorted(set(day["prediction_time"])) == [
        pd.Timestamp("2026-01-02T00:00:00Z"), pd.Timestamp("2026-01-02T23:59:59.999999Z"),
    ]  # fmt: skip  # the row stamped exactly at the end belongs to the next window
    assert list(day.columns) == ["customer_id", *LOG_COLUMNS, "probability_0", "probability_1"]
    next_day = read_prediction_log(root, CHURN, "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z")
    assert set(next_day["prediction_time"]) == {pd.Timestamp("2026-01-03T00:00:00Z")} and len(next_day) == 300

    # An empty window is an empty frame with the columns: the caller decides what empty means.
    quiet = read_prediction_log(root, CHURN, "2026-01-02T01:00:00Z", "2026-01-02T02:00:00Z")
    assert quiet.empty and "customer_id" in quiet.columns and "probability_1" in quiet.columns
    nothing = read_prediction_log(root, CHURN, "2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z")
    assert nothing.empty and list(nothing.columns) == LOG_COLUMNS
    assert read_prediction_log(root, CHURN, "2026-01-02T00:00:00Z", "2026-01-04T00:00:00Z", versions=[2]).empty
    assert len(read_prediction_log(root, CHURN, "2026-01-02T00:00:00Z", "2026-01-04T00:00:00Z", versions=["1"])) == 900

    with pytest.raises(PredictionLogError, match=r"ends before it starts"):
        read_prediction_log(root, CHURN, "2026-01-03T00:00:00Z", "2026-01-02T00:00:00Z")
    with pytest.raises(PredictionLogError, match=r"end='2026-01-03T00:00:00' has no time zone"):
        read_prediction_log(root, CHURN, "2026-01-02T00:00:00Z", "2026-01-03T00:00:00")


def _log_rows(ids: list, moment: str, version: str = "1", role: str = "served", ids_column: str = "customer_id"):
    frame = pd.DataFrame({ids_column: ids})
    scores = pd.DataFrame({"prediction": [i % 2 for i in range(len(ids))]})
    scores["probability_1"] = np.linspace(0.1, 0.9, len(ids))
    scores["probability_0"] = 1 - scores["probability_1"]
    return prediction_log_rows(frame, scores, id_columns=[ids_column], prediction_time=moment, model_name="m",
                               model_version=version, role=role)  # fmt: skip


def test_a_window_reads_only_the_partitions_that_can_hold_its_rows(tmp_path):
    root = str(tmp_path / "log")
    for moment in ("2026-01-02T00:00:00Z", "2026-01-02T23:59:59Z"):
        uri = prediction_log_file(root, "m", moment, dag_id="d", run_id=moment, task_id="t")
        write_prediction_log(_log_rows([1, 2, 3], moment), uri)
    for day in ("2026-01-01", "2026-01-03", "2026-01-05"):  # unreadable: a read that opened them would fail
        broken = tmp_path / "log" / "m" / f"dt={day}" / "d__r__t.parquet"
        broken.parent.mkdir(parents=True)
        broken.write_bytes(b"not parquet at all")

    window = read_prediction_log(root, "m", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z")
    assert len(window) == 6
    with pytest.raises(DatasetError, match=r"dt=2026-01-03/d__r__t\.parquet"):
        read_prediction_log(root, "m", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00.000001Z")
    with pytest.raises(DatasetError, match=r"dt=2026-01-01/d__r__t\.parquet"):
        read_prediction_log(root, "m", "2026-01-01T23:59:59Z", "2026-01-02T12:00:00Z")
    assert len(read_prediction_log(root, "m", "2026-01-02T12:00:00Z", "2026-01-03T00:00:00Z")) == 3

    with pytest.raises(DatasetNotFoundError) as no_model:
        read_prediction_log(root, "other", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z")
    assert f"No prediction log at '{root}/other'" in str(no_model.value)
    assert "holds the logs of ['m']" in str(no_model.value)
    assert "BatchPredictOperator(prediction_log_uri=" in str(no_model.value)
    with pytest.raises(
        DatasetNotFoundError, match=r"there is no prediction log at .*nowhere' at all\. BatchPredictOperator"
    ):
        read_prediction_log(str(tmp_path / "nowhere"), "m", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z")


def test_a_log_file_holds_rows_of_its_own_day_only(tmp_path):
    rows = _log_rows([1, 2], "2026-01-03T00:00:00Z")
    uri = prediction_log_file(str(tmp_path), "m", "2026-01-02T12:00:00Z", dag_id="d", run_id="r", task_id="t")
    with pytest.raises(
        PredictionLogError, match=r"Rows predicted on \['2026-01-03'\] \(UTC\) cannot go to .*dt=2026-01-02"
    ):
        write_prediction_log(rows, uri)
    with pytest.raises(
        PredictionLogError, match=r"prediction_time .* is datetime64\[ns\], not a time with a time zone"
    ):
        write_prediction_log(rows.assign(prediction_time=rows["prediction_time"].dt.tz_localize(None)), uri)
    with pytest.raises(PredictionLogError, match=r"lack the log columns \['role'\]"):
        write_prediction_log(rows.drop(columns=["role"]), uri)
    assert files_under(tmp_path) == []


# -- joining labels ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_runs(world):
    """Two scoring runs a day apart on the same customers with changed features: run 1 serves v1 with v2 in
    the shadow, run 2 serves v2 (pinned) with the champion v1 in the shadow."""
    root = str(world.root / "join-log")
    later = churn_frame(300, seed=40)  # customer ids 0..299 again, other features
    later_path = world.root / "data" / "churn-later.parquet"
    later.to_parquet(later_path, index=False)
    world.predict(id_columns=["customer_id"], prediction_log_uri=root, shadow_aliases=["challenger"]).execute(
        context(TaskInstanceStandIn(run_id="run1"), data_interval_end=datetime(2026, 1, 2, 6, tzinfo=UTC))
    )
    world.predict(id_columns=["customer_id"], prediction_log_uri=root, version=2, shadow_aliases=["champion"],
                  dataset_uri=str(later_path)).execute(
        context(TaskInstanceStandIn(run_id="run2"), data_interval_end=datetime(2026, 1, 3, 6, tzinfo=UTC))
    )  # fmt: skip
    return read_prediction_log(root, CHURN, "2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z")


def test_each_label_joins_each_versions_newest_prediction_made_before_it(two_runs):
    log = two_runs
    first = log[log["prediction_time"] == pd.Timestamp("2026-01-02T06:00:00Z")]
    second = log[log["prediction_time"] == pd.Timestamp("2026-01-03T06:00:00Z")]
    labels = pd.DataFrame(
        {
            "customer_id": [7, 8, 9],
            "churned": [1, 0, 1],
            "known_at": pd.to_datetime(["2026-01-02T12:00:00Z", "2026-01-03T06:00:00Z", "2026-01-02T05:00:00Z"]),
        }
    )
    joined = join_labels(
        log, labels, id_columns=["customer_id"], label_column="churned", label_timestamp_column="known_at"
    )

    assert list(joined.columns) == ["customer_id", "model_version", "role", "prediction", "probability_0",
                                    "probability_1", "label"]  # fmt: skip
    # 7: known before run 2, so run 1's answers; 8: known at run 2's time exactly (at or before): run 2's;
    # 9: known before any prediction: no row.
    assert joined[["customer_id", "model_version", "role", "label"]].values.tolist() == [
        [7, "1", "served", 1], [7, "2", "shadow", 1], [8, "1", "shadow", 0], [8, "2", "served", 0],
    ]  # fmt: skip
    for _, row in joined.iterrows():
        source = first if row["customer_id"] == 7 else second
        expected = source[
            (source["customer_id"] == row["customer_id"]) & (source["model_version"] == row["model_version"])
        ]
        assert row["probability_1"] == pytest.approx(expected["probability_1"].item())
        assert row["prediction"] == expected["prediction"].item()
    assert not np.isclose(
        first.loc[(first.customer_id == 7) & (first.model_version == "1"), "probability_1"].item(),
        second.loc[(second.customer_id == 7) & (second.model_version == "1"), "probability_1"].item(),
    )  # the runs answered differently, so the checks above tell them apart

    # Without label times: the newest prediction in the log, for every labelled id.
    newest = join_labels(log, labels, id_columns=["customer_id"], label_column="churned")
    assert len(newest) == 6 and set(newest["role"][newest["model_version"] == "2"]) == {"served"}
    for _, row in newest.iterrows():
        expected = second[(second.customer_id == row.customer_id) & (second.model_version == row.model_version)]
        assert row["probability_1"] == pytest.approx(expected["probability_1"].item())


def test_id_columns_of_safely_compatible_types_are_joined(two_runs):
    labels = pd.DataFrame({"customer_id": [3.0, 4.0, np.nan], "churned": [1, 0, 1]})  # integers with a gap
    joined = join_labels(two_runs, labels, id_columns=["customer_id"], label_column="churned")
    assert sorted(set(joined["customer_id"].astype(int))) == [3, 4] and len(joined) == 4
    small = labels.dropna().astype({"customer_id": "int32"})
    assert len(join_labels(two_runs, small, id_columns=["customer_id"], label_column="churned")) == 4

    log = pd.concat([_log_rows(["c-1", "c-2"], "2026-01-02T00:00:00Z")], ignore_index=True)
    text_labels = pd.DataFrame({"customer_id": pd.Series(["c-2", "c-9"], dtype="category"), "churned": [1, 0]})
    joined_text = join_labels(log.astype({"customer_id": "string"}), text_labels, id_columns=["customer_id"],
                              label_column="churned")  # fmt: skip
    assert joined_text["customer_id"].tolist() == ["c-2"] and joined_text["label"].tolist() == [1]


@pytest.fixture(scope="module")
def regressor_log(world):
    root = str(world.root / "delivery-log")
    world.predict(model_name=DELIVERY, dataset_uri=world.data["delivery"], id_columns=["order_id"],
                  prediction_log_uri=root).execute(context())  # fmt: skip
    return read_prediction_log(root, DELIVERY, "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z")


LABELS = pd.DataFrame({"customer_id": [0, 1, 2], "churned": [1, 0, 1]})
BAD_LABELS = {
    "no id column": (
        LABELS.rename(columns={"customer_id": "cust"}), {}, LabelJoinError,
        r"The labels lack 'customer_id' \(id column, id_columns\); they have \['cust', 'churned'\]",
    ),
    "no label column": (
        LABELS.rename(columns={"churned": "outcome"}), {}, LabelJoinError,
        r"lack 'churned' \(label column, label_column\); they have \['customer_id', 'outcome'\]",
    ),
    "no timestamp column": (
        LABELS, {"label_timestamp_column": "known_at"}, LabelJoinError,
        r"lack 'known_at' \(label timestamp column, label_timestamp_column\)",
    ),
    "duplicate ids": (
        pd.concat([LABELS, LABELS.head(2).assign(churned=[0, 1])]), {}, LabelJoinError,
        r"hold 2 ids more than once \(4 rows\), e\.g\. \[0, 1\] on \['customer_id'\]; keep one label per id",
    ),
    "timestamps without a time zone": (
        LABELS.assign(known_at=pd.to_datetime(["2026-01-04"] * 3)), {"label_timestamp_column": "known_at"},
        LabelJoinError, r"'known_at' holds times without a time zone .*tz_localize\('UTC'\)",
    ),
    "timestamp text without a time zone": (
        LABELS.assign(known_at=["2026-01-04T10:00:00"] * 3), {"label_timestamp_column": "known_at"},
        LabelJoinError, r"without a time zone \(e\.g\. '2026-01-04T10:00:00'\)",
    ),
    "text labels for integer classes": (
        LABELS.assign(churned=["yes", "no", "yes"]), {}, LabelJoinError,
        r"'churned' holds text \(object\) values such as \['yes', 'no'\], but the model predicts number classes "
        r"\(int64\).*convert the labels",
    ),
    "classes never predicted": (
        LABELS.assign(churned=[1, 2, 5]), {}, LabelJoinError,
        r"never predicted and has no probability column for: \[2, 5\] \(2 labels\); its classes are \[0, 1\]",
    ),
    "ids as text against numbers": (
        LABELS.assign(customer_id=["0", "1", "2"]), {}, LabelJoinError,  # a mistake, not labels yet to come
        r"None of the 3 labels matches any of the 1200 logged predictions on id_columns \['customer_id'\]: label ids "
        r"e\.g\. \['0', '1', '2'\], logged ids e\.g\. \[\d+, \d+, \d+\] \(customer_id: object in the labels, int64 in "
        r"the log\)\. Fix: the labels' 'customer_id' holds text, the log's numbers: convert it",
    ),
    "ids the log does not have": (
        LABELS.assign(customer_id=[1000, 1001, 1002]), {}, NoMatchingLabelsError,
        r"None of the 3 labels matches any of the 1200 logged predictions.*label ids e\.g\. \[1000, 1001, 1002\]",
    ),
    "labels known before any prediction": (
        LABELS.assign(known_at=pd.to_datetime(["2025-12-31T00:00:00Z"] * 3)), {"label_timestamp_column": "known_at"},
        NoMatchingLabelsError, r"every matching prediction was made after its label's time \('known_at'\)",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_LABELS))
def test_bad_labels_are_refused_with_what_to_change(case, two_runs):
    labels, options, error, message = BAD_LABELS[case]
    with pytest.raises(error) as raised:
        join_labels(two_runs, labels, id_columns=["customer_id"], label_column="churned", **options)
    assert type(raised.value) is error  # NoMatchingLabelsError reads as "wait for labels": only where it is one
    assert re.search(message, str(raised.value)), str(raised.value)


def test_text_labels_for_a_regressor_are_refused(regressor_log):
    labels = pd.DataFrame({"order_id": [0, 1, 2], "minutes": ["late", "on time", "late"]})
    with pytest.raises(LabelJoinError) as raised:
        join_labels(regressor_log, labels, id_columns=["order_id"], label_column="minutes")
    assert re.search(r"'minutes' holds text \(object\) values such as \['late', 'on time'\], but the logged "
                     r"predictions are numbers \(float64, a regressor's\); give numeric labels", str(raised.value))  # fmt: skip
    numbers = labels.assign(minutes=[31.5, 40.0, 22.25])
    joined = join_labels(regressor_log, numbers, id_columns=["order_id"], label_column="minutes")
    assert list(joined.columns) == ["order_id", "model_version", "role", "prediction", "label"]
    assert joined["label"].tolist() == [31.5, 40.0, 22.25]


# -- S3 -------------------------------------------------------------------------------------------------------


def _s3_client():
    import boto3

    connection = json.loads(os.environ["AIRFLOW_CONN_AWS_DEFAULT"])  # set by the moto_server fixture
    return boto3.client("s3", endpoint_url=connection["extra"]["endpoint_url"], aws_access_key_id=connection["login"],
                        aws_secret_access_key=connection["password"], region_name="us-east-1")  # fmt: skip


def test_the_log_on_s3(world, s3_bucket):
    client = _s3_client()
    root = f"s3://{s3_bucket}/prediction-log"
    task = world.predict(id_columns=["customer_id"], prediction_log_uri=root, shadow_versions=[2])
    first = task.execute(context())
    task.execute(context(TaskInstanceStandIn(try_number=2)))  # a retry replaces the object
    key = f"prediction-log/{CHURN}/dt=2026-01-02/prediction_log_tests__scheduled__2026-01-02T00_00_00_00_00__score.parquet"
    assert first["prediction_log_uri"] == f"s3://{s3_bucket}/{key}"
    client.put_object(Bucket=s3_bucket, Key=f"prediction-log/{CHURN}/dt=2026-01-04/broken.parquet", Body=b"no")
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"])
    assert keys == [key, f"prediction-log/{CHURN}/dt=2026-01-04/broken.parquet"]

    window = read_prediction_log(root, CHURN, "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", s3_client=client)
    assert len(window) == 600
    assert window.groupby("role")["model_version"].unique().map(list).to_dict() == {"served": ["1"], "shadow": ["2"]}
    with pytest.raises(DatasetError, match=r"dt=2026-01-04/broken\.parquet"):  # in the window: read, and refused
        read_prediction_log(root, CHURN, "2026-01-02T00:00:00Z", "2026-01-05T00:00:00Z", s3_client=client)
    with pytest.raises(
        DatasetNotFoundError, match=rf"No prediction log at '{root}/other'.*holds the logs of \['{CHURN}'\]"
    ):
        read_prediction_log(root, "other", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", s3_client=client)
    labels = pd.DataFrame({"customer_id": [5, 6], "churned": [0, 1],
                           "known_at": [INTERVAL_END + timedelta(days=1)] * 2})  # fmt: skip
    joined = join_labels(window, labels, id_columns=["customer_id"], label_column="churned",
                         label_timestamp_column="known_at")  # fmt: skip
    assert joined[["customer_id", "model_version"]].values.tolist() == [[5, "1"], [5, "2"], [6, "1"], [6, "2"]]
