"""Training: content fingerprints, reproducible fits, every bad input refused before MLflow is touched, and
the MLflow record (run, registered version, tags, plots, reference sample) against a real MLflow server,
including retries that register nothing new and unchanged data that skips training."""

from __future__ import annotations

import io
import uuid
from functools import partial
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest

from mlops_provider import __version__
from mlops_provider.core import training as core
from mlops_provider.core.errors import ConfigurationError, EstimatorSpecError, TrainingDataError
from mlops_provider.core.fingerprint import data_fingerprint
from sample_data import churn_frame
from support import task_instance
from support.training_data import DELIVERY_FEATURES, DELIVERY_TARGET, delivery_frame

CHURN_FEATURES = ["tenure_months", "monthly_charges", "support_calls", "plan", "contract"]
FOREST = "sklearn.ensemble.RandomForestClassifier"
SMALL_FOREST = {"n_estimators": 25, "max_depth": 6}


def churn_config(**overrides) -> core.TrainingConfig:
    settings = {
        "target_column": "churned",
        "id_columns": ["customer_id"],
        "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
        "estimator_params": {"max_iter": 30},
        **overrides,
    }
    return core.TrainingConfig(**settings)


def fit(frame: pd.DataFrame, config: core.TrainingConfig) -> core.FittedModel:
    fitted = core.fit_model(core.prepare_training(frame, config))
    fitted.close()
    return fitted


# -- content fingerprint -------------------------------------------------------------------------------


def test_fingerprint_depends_on_content_not_on_path_row_order_or_storage(tmp_path):
    frame = churn_frame(800, seed=1)
    reference = data_fingerprint(frame).value
    assert reference.startswith("sha256:")

    for path in (tmp_path / "a.parquet", tmp_path / "elsewhere" / "b.parquet"):
        path.parent.mkdir(exist_ok=True)
        frame.to_parquet(path, index=False)
        assert data_fingerprint(pd.read_parquet(path)).value == reference
    shuffled = frame.sample(frac=1, random_state=7)
    assert data_fingerprint(shuffled).value == reference
    assert data_fingerprint(frame[frame.columns[::-1]]).value == reference
    narrow = frame.astype({"monthly_charges": "float32"})  # storage width is not content
    assert data_fingerprint(narrow).value == data_fingerprint(narrow.astype({"monthly_charges": "float64"})).value
    assert data_fingerprint(frame.astype({"tenure_months": "int32", "plan": "category"})).value == reference

    changed = frame.copy()
    changed.loc[5, "monthly_charges"] += 0.01
    assert data_fingerprint(changed).value != reference
    assert data_fingerprint(pd.concat([frame, frame.head(1)])).value != reference  # a duplicate row counts
    assert data_fingerprint(frame.rename(columns={"plan": "tier"})).value != reference
    assert data_fingerprint(frame.astype({"tenure_months": "float64"})).value != reference  # kind is content

    # Training fingerprints only the columns it uses: an id column changing does not make the data new.
    config = churn_config()
    renumbered = frame.assign(customer_id=frame["customer_id"] + 10_000)
    assert (
        core.prepare_training(renumbered, config).data_fingerprint
        == core.prepare_training(frame, config).data_fingerprint
    )


def test_fingerprint_row_hashes_are_pandas_row_hashes_and_its_order_sorts_them():
    # The recipe behind every stored mlops.data_fingerprint: pandas' row hashes of the columns in name order
    # (computed column by column, combined as pandas combines a frame's columns), digested in sorted order.
    frame = churn_frame(3000, seed=2)
    frame.loc[::7, "plan"] = None
    frame.loc[::11, "monthly_charges"] = np.nan
    columns = ["tenure_months", "plan", "monthly_charges", "churned", "event_timestamp"]
    fingerprint = data_fingerprint(frame, columns)
    expected = pd.util.hash_pandas_object(frame[sorted(columns)], index=False).to_numpy()
    assert fingerprint.columns == tuple(sorted(columns))
    assert np.array_equal(fingerprint.row_hashes, expected)
    assert np.array_equal(fingerprint.row_hashes[fingerprint.order], np.sort(expected))
    assert data_fingerprint(frame.iloc[::-1], columns).value == fingerprint.value
    # Training takes the rows in that order: the same training rows, in the same order, from any row order.
    shuffled = core.prepare_training(frame.sample(frac=1, random_state=5), churn_config())
    original = core.prepare_training(frame, churn_config())
    assert shuffled.x_train.reset_index(drop=True).equals(original.x_train.reset_index(drop=True))


# -- reproducibility, split, preprocessing, task type ---------------------------------------------------


def test_same_data_spec_and_seed_give_identical_metrics_in_any_row_order():
    frame = churn_frame(2000, seed=3)
    # Ten boosting rounds: determinism needs no more, and each round's OpenMP regions cost most of a fit here.
    config = partial(churn_config, estimator_params={"max_iter": 10})
    first = fit(frame, config())
    again = fit(frame, config())
    reordered = fit(frame.sample(frac=1, random_state=11).reset_index(drop=True), config())
    assert set(first.metrics) == {"accuracy", "f1_macro", "roc_auc", "log_loss"}
    assert first.metrics == again.metrics == reordered.metrics
    # The holdout is scored step by step (preprocessing, then the model) as the whole pipeline scores it.
    holdout = first.prepared.x_test.assign(churned=first.prepared.y_test)
    assert core.score_model(first.model, holdout, "churned", "classification") == first.metrics
    assert first.prepared.x_test.reset_index(drop=True).equals(reordered.prepared.x_test.reset_index(drop=True))

    other_seed = core.prepare_training(frame, config(random_state=7))
    assert not other_seed.x_test.reset_index(drop=True).equals(first.prepared.x_test.reset_index(drop=True))
    assert other_seed.estimator.tag() == first.prepared.estimator.tag()
    assert other_seed.training_config != first.prepared.training_config  # the seed is part of what "unchanged" means


def test_fitting_leaves_openmp_threads_and_the_switch_interval_as_they_were():
    # Holdout scoring and the small predictions after the fit run OpenMP code on one thread per caller, and
    # scoring lowers the interpreter's switch interval; neither setting may outlive them.
    import sys

    from threadpoolctl import threadpool_info

    def openmp_threads() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "openmp"]

    frame = churn_frame(1500, seed=9)
    config = churn_config(estimator_params={"max_iter": 10})  # every round runs the same OpenMP code
    core.prepare_training(frame.head(200), config)  # sklearn (and its OpenMP runtime) loaded
    before = openmp_threads(), sys.getswitchinterval()
    fitted = fit(frame, config)
    assert set(fitted.metrics) == {"accuracy", "f1_macro", "roc_auc", "log_loss"}
    assert (openmp_threads(), sys.getswitchinterval()) == before


def test_time_split_holds_out_the_most_recent_rows_and_random_split_is_stratified():
    frame = churn_frame(1000, seed=4)
    by_time = core.prepare_training(frame, churn_config(timestamp_column="event_timestamp"))
    assert by_time.split["method"] == "time"
    assert pd.Timestamp(by_time.split["train_until"]) <= pd.Timestamp(by_time.split["test_from"])
    latest = frame.nlargest(200, "event_timestamp")
    assert sorted(by_time.x_test["tenure_months"]) == sorted(latest["tenure_months"])
    assert "event_timestamp" not in by_time.features and "customer_id" not in by_time.features

    stratified = core.prepare_training(frame, churn_config())
    assert stratified.split == {"method": "stratified", "random_state": 42, "train_rows": 800, "test_rows": 200}
    share = frame["churned"].mean()
    assert abs(stratified.y_test.mean() - share) < 0.01 and abs(stratified.y_train.mean() - share) < 0.01


def test_stratified_split_takes_the_rows_scikit_learn_would():
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(0)
    targets = [
        (rng.random(20_000) < 0.3).astype(int),
        rng.choice(["basic", "plus", "pro"], 3001, p=[0.7, 0.2, 0.1]).astype(object),
        np.array([0] * 9 + [1] * 3 + [2] * 2),
        churn_frame(5000, seed=3)["churned"].to_numpy(),
        rng.random(4000) < 0.4,
        rng.integers(-3, 3, 2500).astype(float),
    ]
    for y in targets:
        classes = len(set(y.tolist()))
        for test_rows in sorted({classes, max(classes, len(y) // 5), max(classes, len(y) // 3)}):
            for seed in (0, 42):
                expected = train_test_split(np.arange(len(y)), test_size=test_rows, random_state=seed, stratify=y)
                train, test = core.stratified_split(y, test_rows, seed)
                assert np.array_equal(train, expected[0]) and np.array_equal(test, expected[1])


def test_confusion_counts_are_scikit_learns_confusion_matrix():
    from sklearn.metrics import confusion_matrix

    rng = np.random.default_rng(1)
    for classes, extra in (([0, 1], [2]), (["basic", "plus", "pro"], ["gold"]), ([False, True], [])):
        values = np.array(classes + extra, dtype=object if isinstance(classes[0], str) else None)
        y_true, predictions = rng.choice(values, 3000), rng.choice(np.array(classes), 3000)
        assert np.array_equal(
            core.confusion_counts(y_true, predictions, classes), confusion_matrix(y_true, predictions, labels=classes)
        )


def test_automatic_preprocessing_handles_missing_values_and_unseen_categories():
    frame = churn_frame(1500, seed=5)
    frame.loc[::25, "plan"] = None
    frame.loc[::30, "monthly_charges"] = np.nan
    fitted = fit(frame, churn_config())
    assert fitted.prepared.numeric_columns == ["tenure_months", "monthly_charges", "support_calls"]
    assert fitted.prepared.categorical_columns == ["plan", "contract"]
    incoming = pd.DataFrame(
        {
            "tenure_months": [3.0, np.nan, 40.0],
            "monthly_charges": [np.nan, 99.0, 20.0],
            "support_calls": [1.0, 0.0, 7.0],
            "plan": ["enterprise", None, "basic"],  # a category never seen in training, and a missing one
            "contract": [None, "monthly", np.nan],
        }
    )
    assert set(fitted.model.predict(incoming)) <= {0, 1}
    assert all(not spec.required for spec in fitted.signature.inputs.inputs)  # the pipeline imputes them
    assert fitted.signature.inputs.input_dict()["tenure_months"].type.name == "long"


def test_feature_columns_a_model_would_misread_are_refused_wherever_the_values_sit():
    frame = churn_frame(3000, seed=6)
    with pytest.raises(
        TrainingDataError, match=r"The feature column\(s\) 'plan' hold no values \(null in all 3000 rows\)"
    ):
        core.prepare_training(frame.assign(plan=None), churn_config())
    # Null in the first 2,000 rows only: a sparse column, not an empty one, and text is still text.
    late_plan = frame.assign(plan=frame["plan"].where(frame.index >= 2000, None))
    assert "plan" in core.prepare_training(late_plan, churn_config()).categorical_columns
    # Numbers as text with one stray word far down the column: refused, the word named.
    tenure = frame["tenure_months"].astype(str).where(frame.index != 2500, "unknown")
    with pytest.raises(
        TrainingDataError, match=r"'tenure_months' holds numbers and 1 text value\(s\) such as \['unknown'\]"
    ):
        core.prepare_training(frame.assign(tenure_months=tenure), churn_config())
    # The same numbers as text, null in the first 1,500 rows: the look at the first values still finds numbers.
    late = tenure.where(frame.index >= 1500, None)
    with pytest.raises(TrainingDataError, match=r"'tenure_months' holds numbers and 1 text value"):
        core.prepare_training(frame.assign(tenure_months=late), churn_config())


def test_task_type_comes_from_the_estimator_or_the_target():
    frame = churn_frame(600, seed=6)
    assert (
        core.prepare_training(frame, core.TrainingConfig(target_column="churned", id_columns=["customer_id"])).task_type
        == "classification"
    )
    regression = core.prepare_training(
        frame, core.TrainingConfig(target_column="monthly_charges", id_columns=["customer_id"])
    )
    assert regression.task_type == "regression"
    assert regression.estimator.import_path == "sklearn.ensemble.HistGradientBoostingRegressor"
    assert (
        core.prepare_training(frame, core.TrainingConfig(target_column="plan", id_columns=["customer_id"])).task_type
        == "classification"
    )
    with pytest.raises(
        EstimatorSpecError, match="problem_type='regression' but the estimator RandomForestClassifier is a classifier"
    ):
        core.prepare_training(
            frame, core.TrainingConfig(target_column="churned", estimator=FOREST, problem_type="regression")
        )


def test_pipeline_factory_is_used_as_returned():
    fitted = fit(
        churn_frame(600, seed=8),
        churn_config(estimator="support.training_data:numeric_logistic_pipeline", estimator_params={"c": 0.5},
                     feature_columns=["tenure_months", "monthly_charges", "support_calls"]),
    )  # fmt: skip
    assert fitted.prepared.estimator.kind == "pipeline_factory"
    assert [name for name, _ in fitted.model.steps] == ["scale", "logistic"]
    assert fitted.model[-1].C == 0.5 and fitted.model[-1].random_state == 42  # seeded: left unset by the factory
    assert "factory_source_sha256" in fitted.prepared.training_config


# -- bad input: clear errors, and nothing in MLflow ----------------------------------------------------


TaskInstanceStandIn = partial(task_instance.TaskInstanceStandIn, dag_id="training_tests")


def mlflow_default(connection_env, server) -> None:
    url = urlsplit(server.url)
    connection_env("mlflow_default", conn_type="mlflow", host=url.hostname, port=url.port)


def operator(dataset_uri: str, model_name: str, **overrides):
    from mlops_provider.operators.training import TrainModelOperator

    settings = {
        "task_id": "train",
        "dataset_uri": dataset_uri,
        "target_column": "churned",
        "id_columns": ["customer_id"],
        "model_name": model_name,
        "estimator": FOREST,
        "estimator_params": SMALL_FOREST,
        **overrides,
    }
    return TrainModelOperator(**settings)


def runs_in(client, experiment_name: str) -> list:
    from mlflow.entities import ViewType

    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)


def versions_of(client, model_name: str) -> list:
    return list(client.search_model_versions(f"name = '{model_name}'"))


BAD_INPUTS = {
    "unknown estimator module": ({"estimator": "nosuchpackage.models.Forest"}, None, EstimatorSpecError,
                                 "the module 'nosuchpackage.models' cannot be imported"),
    "unknown estimator class": ({"estimator": "sklearn.ensemble.RandomJungleClassifier"}, None, EstimatorSpecError,
                                "'sklearn.ensemble' has no attribute 'RandomJungleClassifier'"),
    "unknown estimator parameter": ({"estimator_params": {"n_trees": 10}}, None, EstimatorSpecError,
                                    "estimator_params 'n_trees' are not parameters of sklearn.ensemble.RandomForestClassifier"),
    "invalid estimator parameter value": ({"estimator_params": {"max_depth": -3}}, None, EstimatorSpecError,
                                          "rejected estimator_params .*max_depth"),
    "missing target column": ({"target_column": "churn"}, None, TrainingDataError,
                              "The target column 'churn' is not in the data"),
    "single-class target": ({}, lambda f: f.assign(churned=0), TrainingDataError,
                            r"has a single class \(0\) in all 300 rows"),
    "too few rows for the split": ({}, lambda f: f.head(6), TrainingDataError,
                                   "The data has 6 rows: with test_size=0.2 that leaves 4 to train on and 2 to evaluate on, but this split needs at least 10 and 2"),
    "text target for regression": ({"target_column": "plan", "problem_type": "regression", "estimator": None,
                                    "estimator_params": None}, None, TrainingDataError,
                                   "holds object values .* but regression needs a numeric target"),
    "text target for a regressor": ({"target_column": "plan", "estimator": "sklearn.linear_model.Ridge",
                                     "estimator_params": None}, None, TrainingDataError,
                                    "regression needs a numeric target"),
    "missing feature column": ({"feature_columns": ["tenure_months", "age"]}, None, TrainingDataError,
                               "feature_columns names 'age', which the data does not have"),
}  # fmt: skip


def test_bad_inputs_fail_clearly_before_anything_is_logged(mlflow_server, connection_env, tmp_path):
    from mlops_provider.hooks.mlflow import MlflowHook

    mlflow_default(connection_env, mlflow_server)
    model_name = f"bad-input-{uuid.uuid4().hex[:8]}"
    hook = MlflowHook()
    hook.get_or_create_experiment(model_name)  # exists already, so a left-behind run would be counted
    client = hook.get_conn()
    base = churn_frame(300, seed=9)
    base.loc[base.index[:2], "churned"] = 1 - base.loc[base.index[:2], "churned"]  # both classes in any head(6)
    for case, (overrides, damage, error, message) in BAD_INPUTS.items():
        path = tmp_path / f"{case.replace(' ', '_')}.parquet"
        (damage(base) if damage else base).to_parquet(path, index=False)
        task = operator(str(path), model_name, **overrides)
        with pytest.raises(error, match=message):
            task.execute({"ti": TaskInstanceStandIn()})
        assert runs_in(client, model_name) == [], case
    assert versions_of(client, model_name) == []
    with pytest.raises(ConfigurationError, match="test_size=1.5"):
        operator(str(tmp_path / "x.parquet"), model_name, test_size=1.5)
    with pytest.raises(ConfigurationError, match="estimator_params='max_depth=3' is neither JSON nor a Python literal"):
        operator(str(tmp_path / "x.parquet"), model_name, estimator_params="max_depth=3").training_config()


# -- the MLflow record, idempotency and skipping -------------------------------------------------------


def artifact_paths(client, run_id: str, folder: str | None = None) -> set[str]:
    found = set()
    for entry in client.list_artifacts(run_id, folder):
        found |= artifact_paths(client, run_id, entry.path) if entry.is_dir else {entry.path}
    return found


def download(client, run_id: str, path: str, tmp_path) -> bytes:
    return open(client.download_artifacts(run_id, path, str(tmp_path)), "rb").read()


def test_classification_end_to_end_then_a_retry_registers_nothing_new(mlflow_server, connection_env, tmp_path):
    import mlflow

    from mlops_provider.hooks.mlflow import MlflowHook

    mlflow_default(connection_env, mlflow_server)
    model_name = f"churn-{uuid.uuid4().hex[:8]}"
    data = tmp_path / "churn.parquet"
    churn_frame(2500, seed=10).to_parquet(data, index=False)
    ti = TaskInstanceStandIn()
    result = operator(str(data), model_name, reference_sample_rows=500).execute({"ti": ti})

    assert result["model_name"] == model_name and result["version"] == "1" and not result["skipped"]
    assert result["outcome"] == "trained" and result["model_uri"] == f"models:/{model_name}/1"
    assert set(result["metrics"]) == {"accuracy", "f1_macro", "roc_auc", "log_loss"}
    assert 0.6 < result["metrics"]["accuracy"] <= 1 and 0.5 < result["metrics"]["roc_auc"] <= 1
    assert ti.xcoms["mlops_mlflow_run"] == (
        f"{mlflow_server.url}/#/experiments/{result['experiment_id']}/runs/{result['run_id']}"
    )

    client = MlflowHook().get_conn()
    version = client.get_model_version(model_name, "1")
    run = client.get_run(result["run_id"])
    assert version.run_id == run.info.run_id and run.info.status == "FINISHED"
    expected_tags = {
        "airflow.dag_id": "training_tests",
        "airflow.run_id": ti.run_id,
        "airflow.task_id": "train",
        "airflow.try_number": "1",
        "airflow.map_index": "-1",
        "mlops.provider_version": __version__,
        "mlops.dataset_uri": str(data),
        "mlops.data_fingerprint": result["data_fingerprint"],
        "mlops.estimator_spec": '{"estimator":"sklearn.ensemble.RandomForestClassifier","params":{"max_depth":6,"n_estimators":25}}',
        "mlops.task_type": "classification",
        "mlops.reference_sample_uri": f"runs:/{run.info.run_id}/reference/reference_sample.parquet",
        "mlops.holdout_uri": f"runs:/{run.info.run_id}/holdout/holdout.parquet",
        "mlops.target_column": "churned",
    }
    for tags in (version.tags, run.data.tags):
        assert {k: tags.get(k) for k in expected_tags} == expected_tags
        assert '"random_state":42' in tags["mlops.training_config"]
    assert (
        result["data_fingerprint"] == data_fingerprint(churn_frame(2500, seed=10), CHURN_FEATURES + ["churned"]).value
    )
    params = run.data.params
    assert params["estimator"] == FOREST and params["estimator.n_estimators"] == "25"
    assert params["estimator.random_state"] == "42" and params["split.method"] == "stratified"
    assert params["preprocessing.categorical_columns"] == "plan,contract"
    assert {k: run.data.metrics[k] for k in result["metrics"]} == result["metrics"]
    # The logged model the version points at lives in the run's experiment, with its params and metrics.
    logged = client.get_logged_model(version.source.removeprefix("models:/"))
    assert logged.experiment_id == run.info.experiment_id and logged.source_run_id == run.info.run_id
    assert logged.params["estimator"] == FOREST and logged.params["split.method"] == "stratified"
    assert {metric.key: metric.value for metric in logged.metrics} == result["metrics"]

    artifacts = artifact_paths(client, run.info.run_id)
    assert {
        "plots/confusion_matrix.png", "plots/feature_importances.png", "feature_importances.csv",
        "reference/reference_sample.parquet", "holdout/holdout.parquet", "training_summary.json",
    } <= artifacts  # fmt: skip
    assert download(client, run.info.run_id, "plots/confusion_matrix.png", tmp_path).startswith(b"\x89PNG")
    importances = pd.read_csv(io.BytesIO(download(client, run.info.run_id, "feature_importances.csv", tmp_path)))
    assert importances["feature"].iloc[0].startswith(("numeric__", "categorical__"))
    assert abs(importances["importance"].sum() - 1) < 1e-6
    reference = pd.read_parquet(
        io.BytesIO(download(client, run.info.run_id, "reference/reference_sample.parquet", tmp_path))
    )
    assert list(reference.columns) == CHURN_FEATURES and len(reference) == 500  # bounded, features only

    holdout = pd.read_parquet(io.BytesIO(download(client, run.info.run_id, "holdout/holdout.parquet", tmp_path)))
    assert list(holdout.columns) == CHURN_FEATURES + ["churned"] and len(holdout) == 500

    with MlflowHook().session():
        info = mlflow.models.get_model_info(result["model_uri"])
        assert info.signature is not None and info.saved_input_example_info is not None
        model = mlflow.pyfunc.load_model(result["model_uri"])
        predictions = model.predict(churn_frame(50, seed=99)[CHURN_FEATURES])
        fitted = mlflow.sklearn.load_model(result["model_uri"])
    assert set(np.unique(predictions)) <= {0, 1}
    # The stored holdout and the registered model give back exactly the logged metrics (what a gate re-scores).
    assert core.score_model(fitted, holdout, "churned", "classification") == result["metrics"]

    # A retry (or a cleared rerun) of the same task in the same DAG run: same version, nothing new.
    retry = TaskInstanceStandIn(try_number=2)
    again = operator(str(data), model_name, reference_sample_rows=500).execute({"ti": retry})
    assert again["version"] == "1" and again["run_id"] == result["run_id"] and again["outcome"] == "reused"
    assert again["metrics"] == result["metrics"] and again["data_fingerprint"] == result["data_fingerprint"]
    assert retry.xcoms["mlops_mlflow_run"] == ti.xcoms["mlops_mlflow_run"]
    assert len(versions_of(client, model_name)) == 1 and len(runs_in(client, model_name)) == 1

    # Another DAG run is another task instance: it trains (no champion to compare with yet).
    other = operator(str(data), model_name, reference_sample_rows=500).execute(
        {"ti": TaskInstanceStandIn(run_id="scheduled__2026-01-02T00:00:00+00:00")}
    )
    assert other["version"] == "2" and other["outcome"] == "trained"
    assert other["metrics"] == result["metrics"]  # same data, spec and seed: identical metrics


def test_unchanged_data_skips_training_and_changes_retrain(mlflow_server, connection_env, tmp_path, capsys):
    from mlops_provider.hooks.mlflow import MlflowHook

    mlflow_default(connection_env, mlflow_server)
    model_name = f"churn-skip-{uuid.uuid4().hex[:8]}"
    frame = churn_frame(1500, seed=12)
    first_path, moved_path, changed_path = (
        tmp_path / "a.parquet",
        tmp_path / "b" / "moved.parquet",
        tmp_path / "c.parquet",
    )
    moved_path.parent.mkdir()
    frame.to_parquet(first_path, index=False)
    frame.sample(frac=1, random_state=1).to_parquet(moved_path, index=False)  # same rows, other path and order
    pd.concat([frame, churn_frame(100, seed=13)]).to_parquet(changed_path, index=False)
    client = MlflowHook().get_conn()

    def train(path, day: str, **overrides):
        ti = TaskInstanceStandIn(run_id=f"scheduled__2026-01-{day}T00:00:00+00:00")
        return operator(str(path), model_name, **overrides).execute({"ti": ti}), ti

    first, _ = train(first_path, "01")
    client.set_registered_model_alias(model_name, "champion", first["version"])

    capsys.readouterr()
    skipped, ti = train(moved_path, "02")
    assert skipped["skipped"] and skipped["outcome"] == "skipped"
    assert (skipped["version"], skipped["run_id"], skipped["model_uri"]) == (
        "1",
        first["run_id"],
        f"models:/{model_name}/1",
    )
    assert skipped["metrics"] == first["metrics"] and skipped["data_fingerprint"] == first["data_fingerprint"]
    assert "(@champion) was trained on the same data" in skipped["reason"]
    assert "Training skipped: " in capsys.readouterr().out  # the task log says why
    assert ti.xcoms["mlops_mlflow_run"].endswith(f"/runs/{first['run_id']}")
    assert len(runs_in(client, model_name)) == 1 and len(versions_of(client, model_name)) == 1

    forced, _ = train(moved_path, "03", skip_if_unchanged=False)
    assert forced["version"] == "2" and not forced["skipped"]
    assert forced["metrics"] == first["metrics"]  # reproducible through the whole path, rows reordered and moved

    assert forced["reason"].endswith("; skip_if_unchanged=False")
    changed, _ = train(changed_path, "04")
    assert changed["version"] == "3" and changed["data_fingerprint"] != first["data_fingerprint"]
    assert "version 1 (@champion) differs: data fingerprint differs" in changed["reason"]

    respecified, _ = train(first_path, "05", estimator_params={"n_estimators": 26, "max_depth": 6})
    assert respecified["version"] == "4"
    assert "estimator spec differs" in respecified["reason"] and "data fingerprint" not in respecified["reason"]
    assert len(versions_of(client, model_name)) == 4


def test_regression_end_to_end_with_a_time_split(mlflow_server, connection_env, tmp_path):
    from mlops_provider.hooks.mlflow import MlflowHook

    mlflow_default(connection_env, mlflow_server)
    model_name = f"delivery-{uuid.uuid4().hex[:8]}"
    data = tmp_path / "deliveries"
    data.mkdir()
    for day, seed in (("2026-01-01", 1), ("2026-01-02", 2)):  # a folder of part files
        delivery_frame(1200, seed=seed, day=day).to_parquet(data / f"part-{day}.parquet", index=False)
    result = operator(
        str(data), model_name, target_column=DELIVERY_TARGET, id_columns=["order_id"],
        timestamp_column="event_timestamp", estimator=None, estimator_params={"max_iter": 60},
        experiment_name=f"{model_name}-experiment",
    ).execute({"ti": TaskInstanceStandIn()})  # fmt: skip

    assert set(result["metrics"]) == {"rmse", "mae", "r2"} and result["metrics"]["r2"] > 0.8
    client = MlflowHook().get_conn()
    run = client.get_run(result["run_id"])
    assert client.get_experiment(run.info.experiment_id).name == f"{model_name}-experiment"
    assert run.data.params["estimator"] == "sklearn.ensemble.HistGradientBoostingRegressor"
    assert run.data.params["split.method"] == "time" and run.data.params["split.test_rows"] == "480"
    assert run.data.params["split.train_until"] <= run.data.params["split.test_from"]
    assert client.get_model_version(model_name, result["version"]).tags["mlops.task_type"] == "regression"
    artifacts = artifact_paths(client, run.info.run_id)
    assert {"plots/residuals.png", "reference/reference_sample.parquet"} <= artifacts
    assert "feature_importances.csv" not in artifacts  # HistGradientBoosting has none
    assert download(client, run.info.run_id, "plots/residuals.png", tmp_path).startswith(b"\x89PNG")
    reference = pd.read_parquet(
        io.BytesIO(download(client, run.info.run_id, "reference/reference_sample.parquet", tmp_path))
    )
    assert list(reference.columns) == DELIVERY_FEATURES and len(reference) == 1920


def test_a_run_left_unfinished_by_a_killed_try_is_marked_failed(mlflow_server, connection_env, tmp_path):
    """The worker died after creating the run and before registering: the next try closes that run as
    FAILED and registers from a fresh run."""
    from mlops_provider.hooks.mlflow import MlflowHook
    from mlops_provider.operators.context import airflow_run_tags

    mlflow_default(connection_env, mlflow_server)
    model_name = f"churn-crash-{uuid.uuid4().hex[:8]}"
    data = tmp_path / "churn.parquet"
    churn_frame(800, seed=14).to_parquet(data, index=False)
    hook = MlflowHook()
    client = hook.get_conn()
    first_try = TaskInstanceStandIn()
    orphan = client.create_run(hook.get_or_create_experiment(model_name), tags=airflow_run_tags({"ti": first_try}))

    result = operator(str(data), model_name).execute({"ti": TaskInstanceStandIn(try_number=2)})
    assert result["version"] == "1" and result["run_id"] != orphan.info.run_id
    left = client.get_run(orphan.info.run_id)
    assert left.info.status == "FAILED" and "superseded by try 2" in left.data.tags["mlops.abandoned"]
    assert client.get_run(result["run_id"]).data.tags["airflow.try_number"] == "2"

    # Killed after registering, before closing the run: the next try returns the version and closes the run.
    client.update_run(result["run_id"], status="RUNNING")
    third = operator(str(data), model_name).execute({"ti": TaskInstanceStandIn(try_number=3)})
    assert (third["outcome"], third["version"], third["run_id"]) == ("reused", "1", result["run_id"])
    assert client.get_run(result["run_id"]).info.status == "FINISHED"
    assert len(versions_of(client, model_name)) == 1 and len(runs_in(client, model_name)) == 2


# -- the Airflow wiring ------------------------------------------------------------------------------


@pytest.mark.airflow_db
def test_training_dag_returns_the_version_and_stores_the_run_link(airflow_db, mlflow_server, connection_env, tmp_path):
    from dags.mlops_test_training import dag
    from mlops_provider.hooks.mlflow import MlflowHook

    mlflow_default(connection_env, mlflow_server)
    model_name = f"churn-dag-{uuid.uuid4().hex[:8]}"
    churn_frame(1200, seed=15).to_parquet(tmp_path / "churn.parquet", index=False)
    dag_run = dag.test(run_conf={"dataset_uri": str(tmp_path / "churn.parquet"), "model_name": model_name})
    (ti,) = dag_run.get_task_instances()
    assert ti.state == "success"
    result = ti.xcom_pull(task_ids="train")
    assert result["version"] == "1" and result["outcome"] == "trained" and not result["skipped"]
    assert ti.xcom_pull(task_ids="train", key="mlops_mlflow_run") == (
        f"{mlflow_server.url}/#/experiments/{result['experiment_id']}/runs/{result['run_id']}"
    )
    version = MlflowHook().get_conn().get_model_version(model_name, "1")
    assert version.tags["airflow.dag_id"] == "mlops_test_training"
    assert version.tags["airflow.run_id"] == dag_run.run_id
    assert '"n_estimators":20' in version.tags["mlops.estimator_spec"]  # the rendered dict reached the estimator
    assert '"timestamp_column":"event_timestamp"' in version.tags["mlops.training_config"]
