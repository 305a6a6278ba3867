"""A bad-input catalogue (issue #13, item 2): every operator and sensor, given bad input, raises an error whose
message names the input and the fix, and leaves no state behind.

One table, ``CASES`` (``tests/support/bad_inputs/``: the world the cases run in, then the cases of the data and
model operators and those of the feature, drift and performance operators and the sensors), and one parametrized
test here, with the module's setup and the state snapshot. Each case builds an operator or sensor with literal
arguments (nothing is rendered), calls ``execute`` (``poke`` for sensors) with a minimal context, and checks:

* the exception type;
* ``names``: a regex the message must match that names the input (the argument or the bad value);
* ``fix``: a regex the message must match that says what to do;
* no state left: a snapshot of everything a task could have written, taken before and after, is unchanged:
  MLflow (experiments and their run counts, registered models with their version counts, aliases and
  history tags, no ``*.mlops-lock`` model), the files under ``$MLOPS_HOME`` (reports) and under this module's
  data folder (outputs), the S3 bucket's objects, the Feast repository's registry and online rows, and the
  XComs and Asset events the task pushed.

Everything is real: the MLflow server of ``conftest.py``, moto S3, a Feast repository on SQLite. The models,
data and repository are prepared once for the module. ``docs/reliability.md`` lists the same table.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sample_data import churn_frame
from support.bad_inputs import CASES
from support.bad_inputs.world import (
    DAY1,
    DAY2,
    FEATURES,
    MODEL,
    OTHER,
    TAG,
    TRAIN,
    Case,
    DagRunStandIn,
    TaskInstanceStandIn,
    World,
)
from support.environment import environment
from support.task_instance import OutletEventsStandIn

# -- module setup: services, data, models, feature repository ----------------------------------------------


def _write_data(root: Path) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    frame = churn_frame(600, seed=1)
    paths = {
        "churn": root / "churn.parquet",
        "no_target": root / "no_target.parquet",
        "no_tenure": root / "no_tenure.parquet",
        "semicolon_csv": root / "semicolon.csv",
        "notes_txt": root / "notes.txt",
        "fake_parquet": root / "fake.parquet",
        "suite_not_json": root / "suite_not_json.json",
        "suite_unknown_type": root / "suite_unknown_type.json",
    }
    frame.to_parquet(paths["churn"], index=False)
    frame.drop(columns=["churned"]).to_parquet(paths["no_target"], index=False)
    frame.drop(columns=["tenure_months"]).to_parquet(paths["no_tenure"], index=False)
    frame.to_csv(paths["semicolon_csv"], sep=";", index=False)
    paths["notes_txt"].write_text("Weekly churn notes: nothing unusual this week.\n")
    paths["fake_parquet"].write_text("customer_id,churned\n1,0\n")
    paths["suite_not_json"].write_text('{"name": "churn", "expectations": [\n  {"type": "expect_column_to_exist",,}\n')
    suite = {
        "name": "churn",
        "expectations": [{"type": "expect_column_values_to_be_nul", "kwargs": {"column": "plan"}}],
    }
    paths["suite_unknown_type"].write_text(json.dumps(suite))
    events = root / "events"
    for day in (1, 2):
        part = events / f"dt=2026-01-0{day}"
        part.mkdir(parents=True)
        churn_frame(400, seed=10 + day, day=f"2026-01-0{day}").to_parquet(part / "part-0.parquet", index=False)
    return {
        **{name: str(path) for name, path in paths.items()},
        "events": str(events),
        "events_day2": str(events / "dt=2026-01-02"),
        **_labels(root, frame),
    }


def _labels(root: Path, frame) -> dict[str, str]:
    """Label files for the prediction log that ``_prediction_log`` writes (customer ids 0..199)."""
    import pandas as pd

    labels = frame.head(200)[["customer_id", "churned"]].copy()
    labels["label_timestamp"] = pd.Timestamp("2026-01-05", tz="UTC")
    paths = {name: root / f"labels_{name}.parquet" for name in ("ok", "duplicate", "naive", "text")}
    labels.to_parquet(paths["ok"], index=False)
    pd.concat([labels, labels.head(3)]).to_parquet(paths["duplicate"], index=False)
    labels.assign(label_timestamp=labels["label_timestamp"].dt.tz_localize(None)).to_parquet(paths["naive"])
    labels.assign(churned=labels["churned"].map({0: "no", 1: "yes"})).to_parquet(paths["text"], index=False)
    return {f"labels_{name}": str(path) for name, path in paths.items()} | {"prediction_log": str(root / "log")}


def _prediction_log(client, data: dict[str, str]) -> None:
    """MODEL v1's predictions of 200 customers, stamped 2026-01-02T06:00Z, in the prediction log layout."""
    import pandas as pd

    from mlops_provider.core.performance.log import prediction_log_file, write_prediction_log

    del client
    frame = pd.read_parquet(data["churn"]).head(200)
    moment = pd.Timestamp("2026-01-02T06:00:00", tz="UTC")
    rows = pd.DataFrame({
        "customer_id": frame["customer_id"], "prediction_time": moment, "model_name": MODEL, "model_version": "1",
        "role": "served", "alias": "champion", "prediction": frame["churned"].to_numpy()[::-1],
        "probability_0": 0.6, "probability_1": 0.4,
    })  # fmt: skip
    uri = prediction_log_file(data["prediction_log"], MODEL, moment, dag_id="setup", run_id="setup", task_id="score")
    write_prediction_log(rows, uri)


def _s3_bucket(churn_path: str) -> str:
    client = _s3_client()
    name = f"mlops-bad-inputs-{TAG}"
    client.create_bucket(Bucket=name)
    client.upload_file(churn_path, name, "churn.parquet")
    client.upload_file(churn_path, name, "events/dt=2026-01-01/part-0.parquet")
    return name


def _models(client, hook, churn_path: str) -> None:
    """MODEL v1 (@champion, recorded in the history) and v2; OTHER v1..v3 (@champion v1) without training tags."""
    import pandas as pd

    from mlops_provider.core.registry import move_alias
    from mlops_provider.core.training import TrainingConfig, train_and_register

    frame = pd.read_parquet(churn_path)
    experiment_id = hook.get_or_create_experiment(MODEL)
    with hook.session() as session_client:
        for features in (FEATURES, FEATURES[:3]):
            config = TrainingConfig(
                target_column="churned", feature_columns=features, estimator="sklearn.linear_model.LogisticRegression",
                estimator_params={"max_iter": 300}, reference_sample_rows=300,
            )  # fmt: skip
            train_and_register(frame, config, session_client, experiment_id=experiment_id, model_name=MODEL,
                               tags={}, dataset_uri=churn_path)  # fmt: skip
    actor = {"dag_id": "setup", "run_id": "setup", "task_id": "setup"}
    move_alias(client, MODEL, "champion", "1", expected_from=None, action="promote", reason="setup", actor=actor)
    first = client.get_model_version(MODEL, "1")
    logged_model = first.model_id or first.source.removeprefix("models:/")
    client.create_registered_model(OTHER)
    for _ in range(3):
        client.create_model_version(OTHER, first.source, run_id=first.run_id, model_id=logged_model)
    client.set_registered_model_alias(OTHER, "champion", "1")
    hook.get_or_create_experiment(TRAIN)  # exists, so a run left behind by a case is counted


def _feature_repos(root: Path) -> tuple[Path, Path]:
    from feast import FeatureStore

    from mlops_provider.core.features import apply_repository
    from support.feature_repo import make_feature_repo

    repo = make_feature_repo(root / "feast", customers=20, days=2)
    apply_repository(FeatureStore(repo_path=str(repo)), repo)
    broken = make_feature_repo(root / "feast_broken", customers=5, days=1)
    definitions = broken / "customer_features.py"
    definitions.write_text(definitions.read_text() + "\ncustomer_typo = Entiti(name='customer_typo')\n")
    return repo, broken


@pytest.fixture(scope="module")
def world(mlflow_server, mlflow_auth_server, moto_server, tmp_path_factory):
    from mlops_provider.hooks.mlflow import MlflowHook

    url = urlsplit(mlflow_server.url)
    connection = json.dumps({"conn_type": "mlflow", "host": url.hostname, "port": url.port})
    # A refused request fails in seconds, not minutes (MLFLOW_HTTP_REQUEST_MAX_RETRIES).
    with environment(AIRFLOW_CONN_MLFLOW_DEFAULT=connection, MLFLOW_HTTP_REQUEST_MAX_RETRIES="1"):
        root = tmp_path_factory.mktemp("bad-inputs")
        data = _write_data(root / "data")
        (root / "out").mkdir()
        (root / "not_a_repo").mkdir()
        hook = MlflowHook()
        client = hook.get_conn()
        _models(client, hook, data["churn"])
        _prediction_log(client, data)
        feast_repo, broken_repo = _feature_repos(root)
        data["labels"] = str(feast_repo / "data" / "churn_labels.parquet")
        yield World(
            root=root, data=data, bucket=_s3_bucket(data["churn"]), client=client, feast_repo=feast_repo,
            broken_repo=broken_repo, not_a_repo=root / "not_a_repo", auth_server_url=mlflow_auth_server.url,
        )  # fmt: skip


# -- the state snapshot -----------------------------------------------------------------------------------


def _mlflow_state(client) -> dict:
    from mlflow.entities import ViewType

    from mlops_provider.core.registry import LOCK_SUFFIX
    from mlops_provider.core.tags import HISTORY_PREFIX

    experiments = client.search_experiments(view_type=ViewType.ALL, max_results=1000)
    runs: dict[str, int] = {e.experiment_id: 0 for e in experiments}
    for run in client.search_runs(list(runs), run_view_type=ViewType.ALL, max_results=50_000):
        runs[run.info.experiment_id] += 1
    versions: dict[str, int] = {}
    for version in client.search_model_versions(max_results=10_000):
        versions[version.name] = versions.get(version.name, 0) + 1
    models = {}
    for model in client.search_registered_models(max_results=1000):
        models[model.name] = {
            "versions": versions.get(model.name, 0),
            "aliases": dict(sorted((model.aliases or {}).items())),
            "history": sorted(k for k in (model.tags or {}) if k.startswith(HISTORY_PREFIX)),
        }
    return {
        "runs per experiment": {e.name: runs[e.experiment_id] for e in experiments},
        "registered models": models,
        "locks": sorted(name for name in models if name.endswith(LOCK_SUFFIX)),
    }


def _files(root: Path, skip: set[Path]) -> list[tuple[str, int]]:
    if not root.exists():
        return []
    return sorted(
        (str(path.relative_to(root)), path.stat().st_size)
        for path in root.rglob("*")
        if path.is_file() and path not in skip and "__pycache__" not in path.parts
    )


def _online_rows(repo: Path) -> dict[str, int]:
    database = repo / "data" / "online_store.db"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        tables = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {table: connection.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] for table in tables}


def _s3_client():
    import boto3

    connection = json.loads(os.environ["AIRFLOW_CONN_AWS_DEFAULT"])  # set by the moto_server fixture
    return boto3.client(
        "s3", endpoint_url=connection["extra"]["endpoint_url"], aws_access_key_id=connection["login"],
        aws_secret_access_key=connection["password"], region_name="us-east-1",
    )  # fmt: skip


def _bucket(w: World) -> list[tuple[str, int]]:
    client = _s3_client()
    return sorted((o["Key"], o["Size"]) for o in client.list_objects_v2(Bucket=w.bucket).get("Contents", []))


def snapshot(w: World) -> dict:
    """Everything a task could have left behind, cheaply: a few list calls, file names and row counts."""
    registry = w.feast_repo / "data" / "registry.db"
    online = w.feast_repo / "data" / "online_store.db"
    return {
        **_mlflow_state(w.client),
        "files under $MLOPS_HOME": _files(Path(os.environ["MLOPS_HOME"]), set()),
        "files under the module's folder": _files(w.root, {registry, online}),
        "S3 objects": _bucket(w),
        "Feast registry": hashlib.sha256(registry.read_bytes()).hexdigest(),
        "Feast online rows": _online_rows(w.feast_repo),
    }


def differences(before: dict, after: dict) -> list[str]:
    found = []
    for key in before:
        if before[key] != after[key]:
            if isinstance(before[key], dict):
                changed = {k: (before[key].get(k), after[key].get(k)) for k in before[key].keys() | after[key].keys()
                           if before[key].get(k) != after[key].get(k)}  # fmt: skip
                found.append(f"{key}: {changed}")
            elif isinstance(before[key], list):
                found.append(f"{key}: added {sorted(set(after[key]) - set(before[key]))}, "
                             f"removed {sorted(set(before[key]) - set(after[key]))}")  # fmt: skip
            else:
                found.append(f"{key}: changed")
    return found


# -- the test -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", [case.param() for case in CASES])
def test_bad_input_is_refused_clearly_and_leaves_no_state(case: Case, world: World, connection_env):
    world.define_connection = connection_env
    ti = TaskInstanceStandIn(run_id=f"manual__bad_inputs_{case.id}")
    outlets = OutletEventsStandIn()
    context = {
        "ti": ti, "run_id": ti.run_id, "dag_run": DagRunStandIn(run_id=ti.run_id), "outlet_events": outlets,
        "data_interval_start": DAY1, "data_interval_end": DAY2, "logical_date": DAY2,
        "triggering_asset_events": {},
    }  # fmt: skip
    if case.context:
        context.update(case.context(world))
    before = snapshot(world)

    raised: Exception | None = None
    try:
        task = case.build(world)
        getattr(task, case.call)(context)
    except Exception as error:  # every kind is judged below, with the message and the state
        raised = error

    problems = []
    if raised is None:
        problems.append(f"nothing was raised: {case.call}() returned")
    else:
        message = str(raised)
        shown = f"{type(raised).__name__}: {message[:600]}"
        print(f"{case.id} -> {shown}")
        if not isinstance(raised, case.error):
            problems.append(f"raised {type(raised).__module__}.{shown}; expected {_names(case.error)}")
        if not re.search(case.names, message, re.IGNORECASE | re.DOTALL):
            problems.append(f"the message does not name the input (/{case.names}/): {shown}")
        if not re.search(case.fix, message, re.IGNORECASE | re.DOTALL):
            problems.append(f"the message does not say the fix (/{case.fix[:60]}/): {shown}")
    left = differences(before, snapshot(world))
    pushed = sorted(set(ti.xcoms) - set(case.xcoms_allowed))
    if pushed:
        left.append(f"XComs pushed: {pushed}")
    if outlets.emitted():
        left.append(f"Asset events raised: {outlets.emitted()}")
    problems += [f"state left behind: {item}" for item in left]
    assert not problems, "\n".join(problems)


def _names(error: type | tuple[type, ...]) -> str:
    return " or ".join(e.__name__ for e in (error if isinstance(error, tuple) else (error,)))
