"""The model catalogue and the fleet DAGs generated from it (``mlops_provider.fleet``, ``dags/mlops_fleet.py``).

Fast: the catalogue's checks in plain Python, then real DagBag parses of ``dags/``; nothing runs. Only the last
test uses the metadata database: it writes a parse into it the way the DAG processor does and shows that a bad
entry leaves the good models' DAGs active.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops_provider.fleet import CatalogueError, load_catalogue
from mlops_provider.fleet.catalogue import catalogue_location
from mlops_provider.fleet.entries import ENV_VAR

REPO = Path(__file__).resolve().parents[1]
FLEET_FILE = REPO / "dags" / "mlops_fleet.py"
CHECK_FILE = REPO / "dags" / "mlops_fleet_catalogue.py"
GOOD = {"dataset_uri": "/data/churn", "target_column": "churned", "id_columns": ["customer_id", "dt"]}


def write(tmp_path: Path, models: dict | None = None, *, text: str | None = None, name: str = "catalog.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text if text is not None else yaml.safe_dump({"models": models}, sort_keys=False))
    return path


# Each bad entry: (what the entry holds instead of GOOD, the field its error names, fragments of the message).
BAD_ENTRIES = [
    ({"estimator_params": [200]}, "estimator_params",
     ["estimator_params must be a mapping of keyword arguments, got a list", "write estimator_params: {max_iter: 200}"]),
    ({"target": "churned"}, "target", ["unknown field 'target'", "did you mean 'target_column'?"]),
    ({"target_column": None}, "target_column", ["target_column is missing; write target_column: churned"]),
    ({"target_column": True}, "target_column", ["target_column must be text, got the boolean true", "quote it"]),
    ({"dataset_uri": "${MLOPS_NOT_SET_ANYWHERE}/churn"}, "dataset_uri",
     ["uses ${MLOPS_NOT_SET_ANYWHERE}, which is not set", "set MLOPS_NOT_SET_ANYWHERE there or write the value out"]),
    ({"feature_columns": "tenure_months, plan"}, "feature_columns",
     ["feature_columns must be a list of column names, got text", "write feature_columns: [tenure_months, plan]"]),
    ({"feature_columns": [1, "plan"]}, "feature_columns", ["holds 1, which is not text", "feature_columns: ['1']"]),
    ({"feature_columns": ["plan", "churned"]}, "feature_columns", ["holds the target 'churned'; remove it"]),
    ({"id_columns": ["customer_id", "customer_id"]}, "id_columns", ["names 'customer_id' more than once"]),
    ({"estimator": "RandomForestClassifier"}, "estimator",
     ["is not an import path", "write estimator: sklearn.ensemble.RandomForestClassifier"]),
    ({"primary_metric": "auc"}, "primary_metric",
     ["'auc' is not a metric the gate scores", "did you mean 'roc_auc'?", "rmse, mae, r2 (regression)"]),
    ({"min_improvement": "a lot"}, "min_improvement",
     ["min_improvement must be a number, got text 'a lot'; write min_improvement: 0.01"]),
    ({"thresholds": {"roc_auc": {"min": 2}}}, "thresholds",
     ["thresholds['roc_auc']['min'] = 2 is outside the range of roc_auc", "give a bound inside the range"]),
    ({"thresholds": {"auc": {"min": 0.7}}}, "thresholds", ["The gate names ['auc']", "use ['accuracy'"]),
    ({"thresholds": {"roc_auc": {"min": 0.7}}, "primary_metric": "roc_auc"}, "thresholds",
     ["thresholds and primary_metric/min_improvement both set the gate; keep thresholds"]),
    ({"require_approval": "yes please"}, "require_approval",
     ["require_approval must be true or false, got text 'yes please'; write require_approval: true"]),
    ({"approvers": ["alice"]}, "approvers",
     ["approvers name who may answer the approval, but require_approval is false", "write require_approval: true"]),
    ({"approvers": "owners", "require_approval": True}, "approvers",
     ["approvers: owners, but the entry has no owners; list them (owners: [alice, bob])"]),
    ({"approvers": "alice", "require_approval": True}, "approvers",
     ["approvers must be a list of Airflow user ids, got text 'alice'; write approvers: [alice]"]),
    ({"schedule": "@dayly"}, "schedule",
     ["schedule '@dayly' is neither an Airflow preset", "did you mean '@daily'?", "or null to trigger"]),
    ({"schedule": "61 3 * * *"}, "schedule", ["'61 3 * * *' is neither", "nor a valid cron expression"]),
    ({"schedule": "@daily", "triggers": {"schedule": "@weekly"}}, "triggers.schedule",
     ["the schedule is given twice, '@daily' at the top and '@weekly' under triggers; keep one"]),
    ({"triggers": {"drfit": {"share": 0.3}}}, "triggers",
     ["unknown trigger 'drfit'; did you mean 'drift'?", "use schedule, data_arrival, drift, performance"]),
    ({"triggers": {"drift": {"share": 1.5}}}, "triggers",
     ["triggers.drift.share must be a share of the feature columns in (0, 1], got 1.5; write share: 0.25"]),
    ({"triggers": {"drift": {"shares": 0.3}}}, "triggers", ["triggers.drift has no setting 'shares'; did you mean 'share'?"]),
    ({"triggers": {"data_arrival": "s3://landing/churn"}}, "triggers",
     ["triggers.data_arrival must be a mapping of its settings, got text", "data_arrival: {prefix: s3://landing/churn}"]),
    ({"triggers": {"performance": {"label_delay_days": 3}}}, "triggers",
     ["triggers.performance.labels_uri is missing; write performance: {labels_uri:"]),
    ({"triggers": {"performance": {"labels_uri": "/labels", "min_rows": 0}}}, "triggers",
     ["triggers.performance.min_rows must be a whole number of at least 1, got the number 0"]),
    ({"id_columns": [], "triggers": {"performance": {"labels_uri": "/labels"}}}, "triggers.performance",
     ["joins late labels to logged predictions on id_columns, which is empty; write id_columns: [customer_id, dt]"]),
    ({"dataset_uri": "/data/churn/dt={{ ds }}", "triggers": {"drift": {}}}, "triggers.drift",
     ["reads dataset_uri as the folder of dt=YYYY-MM-DD partitions, but it is a template"]),
    ({"owners": "team-retention"}, "owners",
     ["owners must be a list of owner names, got text 'team-retention'; write owners: [team-retention]"]),
    ({"tags": ["x" * 101]}, "tags", ["longer than Airflow's 100 characters"]),
    ({"model_name": "churn"}, "model_name", ["the model's name is the entry's key; remove model_name"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "field", "fragments"), BAD_ENTRIES, ids=[f"{c[1]}-{i}" for i, c in enumerate(BAD_ENTRIES)]
)
def test_a_bad_entry_is_named_with_its_field_and_fix_and_the_others_stay(tmp_path, changes, field, fragments):
    catalogue = load_catalogue(write(tmp_path, {"churn": {**GOOD, **changes}, "other": GOOD}))
    assert list(catalogue.models) == ["other"]
    errors = [e for e in catalogue.errors if e.model == "churn"]
    assert [e.field for e in errors] == [field], errors
    assert errors[0].message.startswith("model 'churn': ")
    for fragment in fragments:
        assert fragment in errors[0].message
    error = catalogue.error()
    assert isinstance(error, CatalogueError)
    assert str(catalogue.path) in str(error) and "1 good model loads as usual" in str(error)


def test_bad_names_duplicates_and_clashing_dag_ids(tmp_path):
    text = f"""
models:
  churn model: {GOOD}
  "123": {GOOD}
  twice: {GOOD}
  twice: {GOOD}
  catalogue_errors: {GOOD}
  report: {GOOD}
  churn:
    dataset_uri: /data/churn
    target_column: churned
    target_column: label
    triggers: {{drift: {{}}}}
  churn_drift: {GOOD}
  listed: [dataset_uri, target_column]
"""
    catalogue = load_catalogue(write(tmp_path, text=text))
    assert list(catalogue.models) == ["123", "churn_drift"]
    messages = {(e.model, e.field): e.message for e in catalogue.errors}
    assert "the name is not a valid registered model name" in messages[("churn model", "name")]
    assert "defined twice (lines 5 and 6); keep one entry" in messages[("twice", "name")]
    assert "reserved for the fleet's own DAG ids" in messages[("catalogue_errors", "name")]
    assert "reserved for the fleet's own DAG ids" in messages[("report", "name")]
    assert "target_column is given twice (lines 11 and 12); keep one" in messages[("churn", "target_column")]
    assert "the entry must be a mapping of settings, got a list" in messages[("listed", None)]
    # churn failed, so its drift monitor does not exist and churn_drift's DAG id is free.
    assert ("churn_drift", "name") not in messages

    fixed = load_catalogue(write(tmp_path, {"churn": {**GOOD, "triggers": {"drift": {}}}, "churn_drift": GOOD}))
    assert list(fixed.models) == ["churn"]
    assert fixed.errors[0].message == (
        "model 'churn_drift': its DAG id mlops_fleet_churn_drift is already the drift monitor DAG of model 'churn'; "
        "rename one of the two models"
    )


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (None, ["does not exist", "point the argument at the catalogue file (a sample: include/model_catalog.yaml)"]),
        ("models:\n  churn: {dataset_uri: [\n", ["is not valid YAML", "at line 3, column 1; fix the syntax there"]),
        ("", ["is empty; write models: with one entry per model under it"]),
        ("model:\n  churn: {}\n", ["has no top-level models: mapping; did you mean 'models'?"]),
        ("models:\n  - churn\n", ["has models: as a list, not a mapping from model name to settings"]),
        ("- churn\n", ["must be a mapping with a top-level models: key, got a list"]),
    ],
    ids=["missing", "not-yaml", "empty", "no-models", "models-a-list", "a-list"],
)
def test_a_file_that_cannot_be_used_is_one_error_naming_the_path_and_the_fix(tmp_path, text, fragments):
    path = tmp_path / "catalog.yaml"
    if text is not None:
        path.write_text(text)
    catalogue = load_catalogue(path)
    assert catalogue.models == {} and not catalogue.readable and len(catalogue.errors) == 1
    message = str(catalogue.error())
    assert message.startswith(f"The model catalogue {path} (from the argument) ")
    for fragment in fragments:
        assert fragment in message


def test_a_good_entry_holds_every_field_checked_and_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKE", "s3://lake")
    entry = {
        **GOOD,
        "dataset_uri": "${LAKE}/churn",
        "feature_columns": ["tenure_months", "plan"],
        "estimator": "sklearn.linear_model:LogisticRegression",
        "estimator_params": {"C": 0.5},
        "thresholds": {"roc_auc": {"min": 0.7}},
        "triggers": {"schedule": "0 3 * * 1-5", "drift": True, "performance": {"labels_uri": "${LAKE}/labels"}},
        "owners": ["team-a", "team-b"],
    }
    catalogue = load_catalogue(write(tmp_path, {"churn": entry, "plain": GOOD}))
    assert catalogue.errors == []
    churn, plain = catalogue.models["churn"], catalogue.models["plain"]
    assert churn.dataset_uri == "s3://lake/churn" and churn.triggers.performance.labels_uri == "s3://lake/labels"
    assert churn.schedule == "0 3 * * 1-5" and churn.triggers.drift.share == 0.25
    assert churn.triggers.performance.label_delay_days == 3 and churn.triggers.performance.min_rows == 200
    assert churn.feature_columns == ("tenure_months", "plan") and churn.owners == ("team-a", "team-b")
    assert set(churn.dag_ids) == {"lifecycle", "drift_monitor", "retrain_on_drift", "performance_monitor",
                                  "retrain_on_performance"}  # fmt: skip
    assert plain.schedule is None and plain.estimator is None and plain.min_improvement == 0.0
    assert (
        plain.triggers.drift is None
        and plain.require_approval is False
        and plain.dag_ids == {"lifecycle": "mlops_fleet_plain"}
    )


def test_the_path_comes_from_the_env_var_then_the_airflow_variable(tmp_path, monkeypatch):
    path = write(tmp_path, {"churn": GOOD})
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv("AIRFLOW_VAR_MLOPS_MODEL_CATALOG", raising=False)
    empty = load_catalogue()
    assert (empty.path, empty.models, empty.errors) == (None, {}, [])

    monkeypatch.setenv("AIRFLOW_VAR_MLOPS_MODEL_CATALOG", str(path))  # the Variable, through Airflow's env backend
    assert catalogue_location() == (str(path), "the Airflow Variable mlops_model_catalog")
    other = write(tmp_path, {"other": GOOD}, name="other.yaml")
    monkeypatch.setenv(ENV_VAR, str(other))  # the environment variable wins; the Variable is not read
    assert list(load_catalogue().models) == ["other"]

    # A Variable that cannot be read (no metadata database, no API server) counts as unset, with a message.
    from airflow.sdk import Variable

    from mlops_provider.fleet import catalogue as module

    def unreachable(*args, **kwargs):
        raise RuntimeError("no database")

    warnings: list[str] = []
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setattr(Variable, "get", unreachable)
    monkeypatch.setattr(module.log, "warning", lambda message, *args: warnings.append(message % args))
    assert load_catalogue().models == {}
    assert warnings == [
        "The Airflow Variable mlops_model_catalog could not be read (RuntimeError: no database), so it counts as "
        "unset; set the environment variable MLOPS_MODEL_CATALOG to name the model catalogue without the Airflow "
        "database."
    ]


def catalogue_yaml(**overrides) -> dict:
    """Three good models (one per trigger kind) and one bad one, on the sample layout."""
    models = {
        "churn_gbm": {**GOOD, "schedule": "@weekly", "triggers": {"drift": {"share": 0.3}},
                      "owners": ["team-retention"], "tags": ["churn", "tier-1"]},
        "churn_forest": {**GOOD, "estimator": "sklearn.ensemble.RandomForestClassifier",
                         "thresholds": {"roc_auc": {"min": 0.6}}, "require_approval": True,
                         "triggers": {"performance": {"labels_uri": "/labels/churn"}}, "owners": ["a", "b"],
                         "approvers": "owners"},
        "churn_logistic": {**GOOD, "schedule": "0 6 * * *", "triggers": {"data_arrival": {"prefix": "/landing"}}},
        "broken": {**GOOD, "estimator_params": ["max_iter", 200]},
    }  # fmt: skip
    models.update(overrides)
    return {"models": {name: entry for name, entry in models.items() if entry is not None}}


def parse(*files: Path):
    """A real DagBag over the given DAG files (a fresh import each time, as the DAG processor does)."""
    from airflow.dag_processing.dagbag import DagBag

    bags = [DagBag(str(file)) for file in files]
    return {d: dag for bag in bags for d, dag in bag.dags.items()}, {
        Path(f).name: e for bag in bags for f, e in bag.import_errors.items()
    }


def test_dagbag_loads_the_good_models_and_reports_the_bad_one_from_its_own_file(tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalogue_yaml()))
    monkeypatch.setenv(ENV_VAR, str(path))
    bag = DagBag(str(REPO / "dags"))  # the whole folder, reference DAGs included
    fleet = {dag_id: dag for dag_id, dag in bag.dags.items() if dag_id.startswith("mlops_fleet_")}
    assert set(fleet) == {
        "mlops_fleet_churn_gbm", "mlops_fleet_churn_gbm_drift", "mlops_fleet_churn_gbm_retrain_on_drift",
        "mlops_fleet_churn_forest", "mlops_fleet_churn_forest_performance",
        "mlops_fleet_churn_forest_retrain_on_performance",
        "mlops_fleet_churn_logistic", "mlops_fleet_churn_logistic_arrival", "mlops_fleet_report",
    }  # fmt: skip
    assert {"mlops_lifecycle", "mlops_drift_monitor"} <= set(bag.dags)

    gbm, forest, logistic = (fleet[f"mlops_fleet_{m}"] for m in ("churn_gbm", "churn_forest", "churn_logistic"))
    assert gbm.tags == {"mlops", "fleet", "churn", "tier-1"} and gbm.owner == "team-retention"
    assert fleet["mlops_fleet_churn_gbm_drift"].tags == {"mlops", "fleet", "drift", "churn", "tier-1"}
    assert forest.owner == "a, b" and logistic.owner == "airflow"
    assert gbm.timetable.summary == "0 0 * * 0" and logistic.timetable.summary == "0 6 * * *"
    assert type(forest.timetable).__name__ == "NullTimetable"  # no schedule: by hand or by its monitor
    assert {dag.max_active_runs for dag in (gbm, forest, logistic)} == {1}
    drift_schedule = fleet["mlops_fleet_churn_gbm_retrain_on_drift"].timetable.asset_condition
    assert [a.uri for a in drift_schedule.objects] == ["mlops://drift/churn_gbm"]
    assert fleet["mlops_fleet_churn_gbm_drift"].get_task("detect_drift").drift_share == 0.3
    # Training, and only training, takes a slot of the fleet-wide pool, in every DAG that trains.
    for dag in fleet.values():
        pools = {task.task_id: task.pool for task in dag.tasks}
        assert {t for t, pool in pools.items() if pool == "mlops_training"} == (
            {"lifecycle.train"} if "lifecycle.train" in pools else set()
        ), dag.dag_id
    assert bag.dags["mlops_lifecycle"].get_task("lifecycle.train").pool == "default_pool"

    # The bad entry: one import error, of the check file only; the placeholder DAG is never kept.
    errors = {Path(file).name: message for file, message in bag.import_errors.items()}
    assert set(errors) == {"mlops_fleet_catalogue.py"}
    message = errors["mlops_fleet_catalogue.py"]
    assert message.startswith(f"CatalogueError: The model catalogue {path} (from the environment variable ")
    assert "3 good models load as usual" in message
    assert "- model 'broken': estimator_params must be a mapping of keyword arguments, got a list" in message
    assert "mlops_fleet_catalogue_errors" not in bag.dags


def test_editing_the_catalogue_changes_the_dags_at_the_next_parse(tmp_path, monkeypatch):
    path = tmp_path / "catalog.yaml"
    monkeypatch.setenv(ENV_VAR, str(path))
    path.write_text(yaml.safe_dump(catalogue_yaml(broken=None)))
    dags, errors = parse(FLEET_FILE, CHECK_FILE)
    assert errors == {} and "mlops_fleet_churn_logistic" in dags
    assert dags["mlops_fleet_churn_forest"].get_task("lifecycle.gate").thresholds == {"roc_auc": {"min": 0.6}}

    changed = catalogue_yaml(broken=None, churn_logistic=None, churn_svm={**GOOD, "schedule": "@daily"})
    changed["models"]["churn_forest"]["thresholds"] = {"roc_auc": {"min": 0.65, "min_absolute_change": 0.01}}
    path.write_text(yaml.safe_dump(changed))
    dags, errors = parse(FLEET_FILE, CHECK_FILE)
    assert errors == {}
    assert "mlops_fleet_churn_logistic" not in dags and "mlops_fleet_churn_logistic_arrival" not in dags
    assert dags["mlops_fleet_churn_svm"].timetable.summary == "0 0 * * *"
    assert dags["mlops_fleet_churn_forest"].get_task("lifecycle.gate").thresholds == {
        "roc_auc": {"min": 0.65, "min_absolute_change": 0.01}
    }

    path.write_text("models: {churn: [\n")  # the file breaks: no fleet DAG, one error naming the file
    dags, errors = parse(FLEET_FILE, CHECK_FILE)
    assert not any(d.startswith("mlops_fleet_") for d in dags)
    assert list(errors) == ["mlops_fleet_catalogue.py"] and "is not valid YAML" in errors["mlops_fleet_catalogue.py"]


def structure(dag, prefix: str = "") -> dict[str, tuple[str, frozenset[str]]]:
    """Task id -> (operator class, downstream task ids), for the tasks under ``prefix``."""
    return {
        t.task_id: (type(t).__name__, frozenset(t.downstream_task_ids))
        for t in dag.tasks
        if t.task_id.startswith(prefix)
    }


def test_the_fleet_dags_are_the_reference_wiring(tmp_path, monkeypatch):
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalogue_yaml(broken=None)))
    monkeypatch.setenv(ENV_VAR, str(path))
    dags, _ = parse(FLEET_FILE, *(REPO / "dags" / f"mlops_{name}.py" for name in (
        "lifecycle", "retrain_on_drift", "drift_monitor", "retrain_on_performance", "performance_monitor",
        "retrain_on_data_arrival")))  # fmt: skip

    # The lifecycle DAG is the reference lifecycle's TaskGroup: the same tasks, operators and edges.
    reference = structure(dags["mlops_lifecycle"], "lifecycle.")
    assert structure(dags["mlops_fleet_churn_forest"]) == reference  # require_approval: true
    assert dags["mlops_fleet_churn_forest"].get_task("lifecycle.approve").approvers == ["a", "b"]  # the owners
    without_approval = structure(dags["mlops_fleet_churn_gbm"])
    assert set(without_approval) == set(reference) - {"lifecycle.approve"}
    assert without_approval["lifecycle.gate"][1] == frozenset({"lifecycle.promote"})
    # The trigger DAGs are the reference builders' DAGs.
    for fleet_id, reference_id in [
        ("mlops_fleet_churn_gbm_drift", "mlops_drift_monitor"),
        ("mlops_fleet_churn_gbm_retrain_on_drift", "mlops_retrain_on_drift"),
        ("mlops_fleet_churn_forest_performance", "mlops_performance_monitor"),
        ("mlops_fleet_churn_logistic_arrival", "mlops_retrain_on_data_arrival"),
    ]:
        assert structure(dags[fleet_id]) == structure(dags[reference_id]), fleet_id
    # One report DAG for the fleet: daily, the catalogue read as this file read it, stale models alerted.
    report = dags["mlops_fleet_report"]
    assert [type(task).__name__ for task in report.tasks] == ["FleetReportOperator"]
    assert report.schedule == "@daily" and report.get_task("fleet_report").catalogue_path is None
    forest_retrain = structure(dags["mlops_fleet_churn_forest_retrain_on_performance"])
    assert set(forest_retrain) == set(structure(dags["mlops_retrain_on_performance"])) | {"lifecycle.approve"}

    # The entry's settings reach the tasks.
    train = dags["mlops_fleet_churn_forest_retrain_on_performance"].get_task("lifecycle.train")
    assert (train.model_name, train.estimator) == ("churn_forest", "sklearn.ensemble.RandomForestClassifier")
    assert train.experiment_name == "mlops_fleet_churn_forest" and train.id_columns == ["customer_id", "dt"]
    monitor = dags["mlops_fleet_churn_forest_performance"].get_task("live_performance")
    assert (monitor.labels_uri, monitor.min_rows) == ("/labels/churn", 200)
    wait = dags["mlops_fleet_churn_logistic_arrival"].get_task("wait_for_partition")
    assert wait.filepath == "/landing/dt={{ data_interval_start | ds }}/*.parquet"


def test_without_a_catalogue_there_is_no_fleet_dag_and_no_error(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    dags, errors = parse(FLEET_FILE, CHECK_FILE)
    assert dags == {} and errors == {}


@pytest.mark.airflow_db
def test_a_bad_entry_leaves_the_good_models_scheduled_in_the_metadata_db(airflow_db, tmp_path, monkeypatch):
    """What the DAG processor writes: the good models' DAGs stay active. Had the error been raised from
    mlops_fleet.py itself, Airflow would have marked all of that file's DAGs stale, with import errors."""
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel
    from airflow.models.errors import ParseImportError
    from airflow.utils.session import create_session
    from sqlalchemy import delete, select

    bundle = "mlops-fleet-test"
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalogue_yaml()))
    monkeypatch.setenv(ENV_VAR, str(path))
    with create_session() as session:
        if session.get(DagBundleModel, bundle) is None:
            session.add(DagBundleModel(name=bundle))
    try:
        for file in (FLEET_FILE, CHECK_FILE):  # one file per parse, as the DAG processor does
            bag = BundleDagBag(dag_folder=str(file), bundle_path=REPO / "dags", bundle_name=bundle, load_op_links=False)
            with create_session() as session:
                sync_bag_to_db(bag, bundle, None, session=session)
        with create_session() as session:
            rows = session.execute(
                select(DagModel.dag_id, DagModel.is_stale, DagModel.has_import_errors).where(
                    DagModel.bundle_name == bundle
                )
            ).all()
            files = session.scalars(select(ParseImportError.filename).where(ParseImportError.bundle_name == bundle))
            assert list(files) == ["mlops_fleet_catalogue.py"]
        assert {row.dag_id for row in rows} >= {"mlops_fleet_churn_gbm", "mlops_fleet_churn_forest"}
        assert [row.dag_id for row in rows if row.is_stale or row.has_import_errors] == []
    finally:
        with create_session() as session:
            session.execute(delete(ParseImportError).where(ParseImportError.bundle_name == bundle))
            session.execute(delete(DagModel).where(DagModel.bundle_name == bundle))
