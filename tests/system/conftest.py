"""Fixtures of the end-to-end suite: one production-shaped stack per test session (see ``stack.py``).

The stack's logs stay under the test root when ``MLOPS_KEEP_TEST_ROOT=1`` (the path is in the pytest
header). A missing PostgreSQL or Redis skips the suite, or fails it with ``MLOPS_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import TEST_ROOT, service_missing
from support import services

from .api import AirflowApi
from .stack import Stack, StackError, running_stack

LIFECYCLE = "mlops_lifecycle"
SCHEDULED = "mlops_retrain_scheduled"
ARRIVAL = "mlops_retrain_on_data_arrival"
MONITOR = "mlops_drift_monitor"
ON_DRIFT = "mlops_retrain_on_drift"
BACKFILL_FROM, BACKFILL_TO = "2026-01-04T00:00:00Z", "2026-01-18T00:00:00Z"  # @weekly: three Sunday-to-Sunday weeks

# The tests share one stack. This order checks the harness first; the ``scenarios`` fixture then starts the
# backfill (three runs one after another), the REST-triggered lifecycle and the landing sensor together, and
# the other scenarios run while the backfill is under way; the drift loop waits for a first champion.
SYSTEM_TEST_ORDER = (
    "test_components_report_healthy",
    "test_failed_run_is_reported_with_the_task_log",
    "test_probe_runs_on_celery_logs_to_mlflow_on_s3_and_defers_in_triggerer",
    "test_landing_upload_resumes_deferred_sensor_in_triggerer",
    "test_lifecycle_triggered_through_rest_api_sets_the_champion",
    "test_promotion_waits_for_a_human_approval_from_a_named_approver",
    "test_drift_loop_is_closed_by_the_scheduler",
    "test_trigger_lifecycle_from_the_ui_with_changed_params",
    "test_backfill_of_scheduled_retraining_runs_three_weeks_in_order",
    # The model fleet (test_fleet_stack.py): eight catalogued models, then changes of the catalogue.
    "test_fleet_of_eight_models_runs_on_celery_and_ends_with_eight_champions",
    "test_a_corrupted_partition_fails_only_its_model_and_names_the_file",
    "test_a_catalogue_change_shows_after_the_next_parse_with_nothing_else_touched",
    "test_a_bad_entry_is_reported_with_model_field_and_fix_and_the_other_seven_stay_active",
    # The fleet page in the browser, over the champions the fleet tests left (test_ui.py).
    "test_fleet_page_shows_every_catalogued_model_its_champion_runs_and_a_waiting_approval",
    # A drift check split over mapped tasks, on S3 data (test_drift_split_stack.py).
    "test_split_drift_check_runs_its_column_chunks_as_celery_tasks_and_merges_to_one_verdict",
    # The stack's own faults, once nothing else runs (each waits until the stack is idle).
    "test_triggerer_killed_while_sensors_wait_then_each_wait_resumes_and_fires_once",
    "test_worker_killed_while_training_logs_then_the_retry_registers_one_version",
    "test_worker_killed_while_materialising_then_the_retry_leaves_the_online_rows_of_an_undisturbed_run",
    "test_metadata_database_restarted_during_a_run_then_it_finishes_and_a_rerun_registers_nothing",
    "test_scanner_finds_a_planted_secret_in_every_form",
    "test_no_secret_in_logs_xcom_templates_mlflow_reports_or_assets",  # last: it scans what the others left
)


def pytest_collection_modifyitems(session, config, items):
    here = Path(__file__).resolve().parent
    system = [i for i in items if here in Path(str(i.fspath)).resolve().parents]
    if not system:
        return
    rank = {name: position for position, name in enumerate(SYSTEM_TEST_ORDER)}
    ordered = sorted(system, key=lambda item: rank.get(item.originalname, len(rank)))
    first = items.index(system[0])
    rest = [i for i in items if i not in system]
    items[:] = rest[:first] + ordered + rest[first:]


@pytest.fixture(scope="session")
def stack(moto_server) -> Stack:
    """Airflow (Celery on PostgreSQL and Redis), MLflow server, S3, started once; stopped at the end."""
    try:
        with running_stack(TEST_ROOT / "system", moto_server.url) as running:
            print(
                f"\nmlops system stack up in {running.timings['startup_s']:.0f}s "
                f"(migrate + MLflow {running.timings['migrate_and_mlflow_s']:.0f}s); logs in {running.root / 'logs'}"
            )
            yield running
    except services.ServiceUnavailable as error:
        service_missing("the system-test services", str(error))
    except StackError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def api(stack) -> AirflowApi:
    return stack.api


@dataclass
class Scenarios:
    """The stack with the slow scenarios already under way (they overlap with the quick ones)."""

    stack: Stack
    backfill: dict
    planned: list[str]
    rest_run: dict
    rest_model: str
    started: float


@pytest.fixture(scope="session")
def scenarios(stack):
    """The reference DAGs, parsed by the dag-processor (a parse error fails with its stack trace); the
    backfill, a REST-triggered lifecycle run and the landing sensor start here, so that they overlap."""
    api = stack.api
    for dag_id in (LIFECYCLE, SCHEDULED, ARRIVAL, MONITOR, ON_DRIFT):
        api.wait_for_dag(dag_id, timeout=180)
    api.set_paused(LIFECYCLE, False)
    api.set_paused(ARRIVAL, False)  # the scheduler creates the latest day's run; its sensor defers
    planned = api.backfill_dry_run(SCHEDULED, BACKFILL_FROM, BACKFILL_TO)
    api.set_paused(SCHEDULED, False)
    started = time.monotonic()
    backfill = api.create_backfill(SCHEDULED, BACKFILL_FROM, BACKFILL_TO, max_active_runs=1)
    rest_model = f"churn_rest_{uuid.uuid4().hex[:6]}"
    rest_run = api.trigger(
        LIFECYCLE,
        conf={"model_name": rest_model, "min_improvement": 0.0, "estimator_params": {"max_iter": 50}},
        note="system test: REST trigger with conf",
    )
    try:
        yield Scenarios(stack, backfill, planned, rest_run, rest_model, started)
    finally:
        for dag_id in (SCHEDULED, ARRIVAL, MONITOR, ON_DRIFT):
            try:
                api.set_paused(dag_id, True)
            except Exception:  # the stack may already be gone
                pass
