"""The model fleet on the production shape (issue #15): a catalogue of eight models, driven through the REST API.

The stack's catalogue (``stack.fleet_models``, written at stack start to ``MLOPS_MODEL_CATALOG``) lists eight
models on three small datasets in S3: churn (classification, and one regression on ``monthly_charges``),
deliveries (regression on ``delivery_minutes``, classification on ``late``) and the deliveries of a second city,
read only by ``delivery_eu``. ``dags/mlops_fleet.py`` turns each entry into ``mlops_fleet_<model>``;
``dags/mlops_fleet_catalogue.py`` reports the catalogue's bad entries as its import error.

* All eight lifecycles run on Celery at once and end with eight champions in the MLflow registry; the pool
  ``mlops_training`` (2 slots) bounds how many train at the same time.
* A corrupted partition of ``delivery_eu``'s dataset fails that model's run with an error naming the file; its
  champion stays, and a model on other data, triggered at the same time, succeeds.
* A catalogue change (a model added, one removed, one gate changed) shows after the next parse, with no DAG file
  touched; the models not changed are not re-versioned.
* A bad entry is the import error of ``mlops_fleet_catalogue.py`` naming the model, the field and the fix, and the
  other seven models' DAGs stay active.

The fleet file is reparsed with ``PUT /api/v2/parseDagFile/{file_token}`` (the UI's "Reparse Dag"): the stack's
``min_file_process_interval`` is 300 s. The check file defines no DAG, so the API cannot name it (it answers 404)
and the test adds the same parsing request to the metadata database (``Stack.request_parse``). The last test puts
the catalogue back as the stack started it, every model with its champion.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from .api import AirflowApi
from .stack import Stack, fleet_models

pytestmark = pytest.mark.system

FLEET_FILE, CHECK_FILE = "mlops_fleet.py", "mlops_fleet_catalogue.py"
POOL, POOL_SLOTS = "mlops_training", 2
ANCHOR = "churn_gbm"  # in every catalogue of these tests: the reparse request names the fleet file by its DAG
LIFECYCLE_TASKS = ("lifecycle.validate", "lifecycle.features", "lifecycle.train", "lifecycle.gate",
                   "lifecycle.promote", "lifecycle.score")  # fmt: skip
REGRESSION = {"churn_charges", "delivery_minutes", "delivery_minutes_linear", "delivery_eu"}


def dag_id(model: str) -> str:
    return f"mlops_fleet_{model}"


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _champion(stack: Stack, model: str):
    """The ``champion`` version of the model, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return stack.mlflow().get_model_version_by_alias(model, "champion")
    except MlflowException:
        return None


def _poll(condition: Callable[[], Any], *, timeout: float, what: str, report: Callable[[], str] = str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s. {report()}")
        time.sleep(0.5)


def _fleet_state(api: AirflowApi, models) -> str:
    dags = {m: api.dag(dag_id(m)) for m in models}
    shown = {m: (d and {k: d[k] for k in ("is_stale", "is_paused", "last_parsed_time")}) for m, d in dags.items()}
    errors = [(e["filename"], e["stack_trace"][:800]) for e in api.import_errors()]
    return f"DAGs: {shown}; import errors: {errors}"


def _check_file_errors(api: AirflowApi) -> list[dict]:
    return [e for e in api.import_errors() if e["filename"].endswith(CHECK_FILE)]


def _change_catalogue(stack: Stack, models: dict, *, check_file: bool = False) -> datetime:
    """Write the catalogue and ask for the next parse of the fleet file (and of the check file); returns when.

    Two edits are spaced as a person's are: Airflow writes a changed DAG at most every
    ``min_serialized_dag_update_interval`` (3 s in the stack), and marks a DAG that left the file stale when it was
    last parsed more than ``stale_dag_threshold`` (1 s) before the file's new parse."""
    api = stack.api
    last = _time(api.dag(dag_id(ANCHOR))["last_parsed_time"])
    while (datetime.now(timezone.utc) - last).total_seconds() < 4:
        time.sleep(0.5)
    stack.write_catalogue(models)
    requested = datetime.now(timezone.utc)
    api.reparse(dag_id(ANCHOR))
    if check_file:
        stack.request_parse(CHECK_FILE)
    return requested


def _parsed_since(api: AirflowApi, model: str, moment: datetime) -> bool:
    dag = api.dag(dag_id(model))
    return bool(dag and dag["last_parsed_time"] and _time(dag["last_parsed_time"]) > moment)


def _max_overlap(intervals: list[tuple[str, str]]) -> int:
    """The most intervals running at one instant (an end before a start at the same instant)."""
    events = sorted([(_time(start), 1) for start, _ in intervals] + [(_time(end), -1) for _, end in intervals])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


@pytest.mark.timeout(900)  # 48 task runs on 2 cores: about 3-7 minutes, with other work on the machine
def test_fleet_of_eight_models_runs_on_celery_and_ends_with_eight_champions(stack):
    api, models = stack.api, fleet_models(stack.bucket)
    assert len(models) == 8 and len({m["dataset_uri"] for m in models.values()}) == 3
    for model in models:
        details = api.wait_for_dag(dag_id(model), timeout=180)
        assert f"Generated from `{stack.catalogue_path}`, entry `{model}`" in details["doc_md"], details["doc_md"]
        assert details["is_paused"], details  # a new DAG starts paused
    parse = api.dag(dag_id(ANCHOR))["last_parse_duration"]
    print(f"\n{FLEET_FILE} with 8 models parses in {parse:.1f}s")
    assert parse < 15, f"{FLEET_FILE} took {parse:.1f}s to parse (the timeout is 30 s)"
    train_task = api.get(f"/api/v2/dags/{dag_id(ANCHOR)}/tasks/lifecycle.train")
    assert train_task["pool"] == POOL, train_task

    api.set_pool(POOL, POOL_SLOTS, "models training at once, fleet-wide")
    started = time.monotonic()
    runs = {}
    for model in models:
        api.set_paused(dag_id(model), False)
        runs[model] = api.trigger(dag_id(model), note="system test: the fleet")["dag_run_id"]
    deadline = time.monotonic() + 720
    for model, run_id in runs.items():
        api.wait_for_run(dag_id(model), run_id, timeout=max(deadline - time.monotonic(), 10))
    print(f"\nfleet: 8 lifecycles in {time.monotonic() - started:.0f}s")

    for model, run_id in runs.items():
        states = {ti["task_id"]: ti["state"] for ti in api.task_instances(dag_id(model), run_id)}
        assert all(states[task] == "success" for task in LIFECYCLE_TASKS), (model, states)
        trained = api.xcom(dag_id(model), run_id, "lifecycle.train")
        assert trained["model_name"] == model and trained["outcome"] == "trained", trained
        kind = "regression" if "rmse" in trained["metrics"] else "classification"
        assert kind == ("regression" if model in REGRESSION else "classification"), (model, trained["metrics"])
        champion = _champion(stack, model)
        assert champion is not None, f"{model} has no champion"
        assert champion.version == str(trained["version"]), (model, champion.version, trained)
        assert champion.tags["airflow.dag_id"] == dag_id(model) and champion.tags["airflow.run_id"] == run_id
    registered = {m.name for m in stack.mlflow().search_registered_models(max_results=1000)}
    assert set(models) <= registered, registered

    trains = [api.task_instance(dag_id(model), run_id, "lifecycle.train") for model, run_id in runs.items()]
    assert {ti["pool"] for ti in trains} == {POOL}, [(ti["dag_id"], ti["pool"]) for ti in trains]
    overlap = _max_overlap([(ti["start_date"], ti["end_date"]) for ti in trains])
    print(f"fleet: at most {overlap} train tasks at once (pool of {POOL_SLOTS} slots)")
    assert overlap <= POOL_SLOTS, [(ti["dag_id"], ti["start_date"], ti["end_date"]) for ti in trains]


def test_a_corrupted_partition_fails_only_its_model_and_names_the_file(stack):
    api = stack.api
    broken, healthy = "delivery_eu", "delivery_minutes"  # broken is the only model on deliveries_eu
    before = {model: _champion(stack, model) for model in (broken, healthy)}
    assert all(before.values()), f"the fleet test leaves a champion per model: {before}"
    versions = len(stack.mlflow().search_model_versions(f"name='{broken}'"))
    s3 = stack.s3()
    listed = s3.list_objects_v2(Bucket=stack.bucket, Prefix="fleet/deliveries_eu/")["Contents"]
    key = sorted(obj["Key"] for obj in listed if obj["Key"].endswith(".parquet"))[-1]  # the newest day
    original = s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=stack.bucket, Key=key, Body=b"PAR1" + b"\x00\x13 half-written bytes \xff" * 40)
    try:
        runs = {
            model: api.trigger(dag_id(model), note="system test: a corrupted partition")["dag_run_id"]
            for model in (broken, healthy)
        }
        failed = api.wait_for_run(dag_id(broken), runs[broken], timeout=300, state="failed")
        succeeded = api.wait_for_run(dag_id(healthy), runs[healthy], timeout=300)
    finally:
        s3.put_object(Bucket=stack.bucket, Key=key, Body=original)
    assert _time(succeeded["start_date"]) < _time(failed["end_date"]), (failed, succeeded)  # side by side

    states = {ti["task_id"]: ti for ti in api.task_instances(dag_id(broken), runs[broken])}
    assert states["lifecycle.validate"]["state"] == "failed", {t: ti["state"] for t, ti in states.items()}
    assert {states[t]["state"] for t in LIFECYCLE_TASKS[1:]} == {"upstream_failed"}, states
    log = api.task_log(dag_id(broken), runs[broken], "lifecycle.validate", states["lifecycle.validate"]["try_number"])
    assert f"Could not read 's3://{stack.bucket}/{key}'" in log, log[-3000:]
    assert "Check that the file is a complete parquet file" in log, log[-3000:]
    assert _champion(stack, broken).version == before[broken].version
    assert len(stack.mlflow().search_model_versions(f"name='{broken}'")) == versions  # nothing registered

    healthy_states = {ti["task_id"]: ti["state"] for ti in api.task_instances(dag_id(healthy), runs[healthy])}
    assert healthy_states["lifecycle.validate"] == "success" and healthy_states["lifecycle.train"] == "success"
    assert _champion(stack, healthy) is not None


def test_a_catalogue_change_shows_after_the_next_parse_with_nothing_else_touched(stack):
    api, base = stack.api, fleet_models(stack.bucket)
    added, removed, changed = "churn_tree", "churn_charges", "delivery_minutes"
    untouched = [model for model in base if model not in (removed, changed)]
    versions = {model: len(api.dag_versions(dag_id(model))) for model in base}
    edited = copy.deepcopy(base)
    del edited[removed]
    edited[changed]["min_improvement"] = 0.5
    edited[added] = {**copy.deepcopy(base["churn_gbm"]), "estimator": "sklearn.tree.DecisionTreeClassifier",
                     "estimator_params": {"max_depth": 4}, "primary_metric": "accuracy"}  # fmt: skip
    gate_line = "| gate | `rmse` beats the champion by {} |"

    started = time.monotonic()
    requested = _change_catalogue(stack, edited)
    _poll(
        lambda: (
            _parsed_since(api, ANCHOR, requested) and api.dag(dag_id(added)) and api.dag(dag_id(removed))["is_stale"]
        ),
        timeout=90,
        what="the edited catalogue parsed",
        report=lambda: _fleet_state(api, [*base, added]),
    )
    print(f"\ncatalogue change: visible {time.monotonic() - started:.1f}s after the reparse request")

    new = api.dag_details(dag_id(added))
    assert not new["is_stale"] and new["is_paused"], new  # a new DAG starts paused
    assert f"entry `{added}`" in new["doc_md"] and "DecisionTreeClassifier" in new["doc_md"], new["doc_md"]
    listed = {d["dag_id"] for d in api.get_all("/api/v2/dags", "dags", dag_id_pattern="mlops_fleet_")}
    assert dag_id(added) in listed and dag_id(removed) not in listed, listed
    assert gate_line.format("0.5") in api.dag_details(dag_id(changed))["doc_md"]
    assert len(api.dag_versions(dag_id(changed))) == versions[changed] + 1
    for model in untouched:
        dag = api.dag(dag_id(model))
        assert not dag["is_stale"] and _time(dag["last_parsed_time"]) > requested, dag  # parsed again ...
        assert len(api.dag_versions(dag_id(model))) == versions[model], model  # ... and not re-versioned
    assert not [e for e in api.import_errors() if e["filename"].endswith((FLEET_FILE, CHECK_FILE))]

    # And back: the removed model returns with its history, the added one leaves.
    requested = _change_catalogue(stack, base)
    _poll(
        lambda: (
            _parsed_since(api, ANCHOR, requested)
            and not api.dag(dag_id(removed))["is_stale"]
            and api.dag(dag_id(added))["is_stale"]
            # The changed DAG's new version had no run yet, so it is rewritten in place: the api-server
            # re-checks its cached copy within min_serialized_dag_update_interval.
            and gate_line.format("0") in api.dag_details(dag_id(changed))["doc_md"]
        ),
        timeout=90,
        what="the original catalogue parsed again",
        report=lambda: _fleet_state(api, [*base, added]),
    )
    assert api.runs(dag_id(removed)), "the model's run history is kept while it is out of the catalogue"


def test_a_bad_entry_is_reported_with_model_field_and_fix_and_the_other_seven_stay_active(stack):
    api, base = stack.api, fleet_models(stack.bucket)
    bad_model = "delivery_minutes_linear"
    others = [model for model in base if model != bad_model]
    bad = copy.deepcopy(base)
    bad[bad_model]["estimator_param"] = {"fit_intercept": True}  # misspelled
    bad[bad_model]["min_improvement"] = "0.01"  # text, not a number
    try:
        requested = _change_catalogue(stack, bad, check_file=True)
        (error,) = _poll(
            lambda: (
                _parsed_since(api, ANCHOR, requested)
                and api.dag(dag_id(bad_model))["is_stale"]
                and _check_file_errors(api)
            ),
            timeout=90,
            what="the bad entry reported",
            report=lambda: _fleet_state(api, base),
        )
        message = error["stack_trace"]
        print(f"\n{CHECK_FILE} import error:\n{message}")
        assert (
            f"The model catalogue {stack.catalogue_path} (from the environment variable MLOPS_MODEL_CATALOG) has "
            "2 problems; 7 good models load as usual" in message
        ), message
        assert f"- model '{bad_model}': unknown field 'estimator_param'; did you mean 'estimator_params'?" in message, (
            message
        )
        assert (
            f"- model '{bad_model}': min_improvement must be a number, got text '0.01'; write min_improvement: 0.01"
            in message
        ), message
        assert not [e for e in api.import_errors() if e["filename"].endswith(FLEET_FILE)]
        for model in others:  # parsed from the bad catalogue, and still scheduled
            dag = api.dag(dag_id(model))
            assert not dag["is_stale"] and not dag["has_import_errors"] and not dag["is_paused"], dag
            assert _time(dag["last_parsed_time"]) > requested, dag
    finally:
        # Back to the stack's catalogue: the entry fixed, the error gone, every model with its champion.
        requested = _change_catalogue(stack, base, check_file=True)
    _poll(
        lambda: (
            _parsed_since(api, ANCHOR, requested)
            and not api.dag(dag_id(bad_model))["is_stale"]
            and not _check_file_errors(api)
        ),
        timeout=90,
        what="the fixed catalogue parsed",
        report=lambda: _fleet_state(api, base),
    )
    for model in base:
        assert not api.dag(dag_id(model))["is_stale"], model
        assert _champion(stack, model) is not None, model
