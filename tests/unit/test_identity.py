"""``TaskIdentity``: what a retry shares with the try before it, and the MLflow tags that record it."""

from __future__ import annotations

import pytest

import mlops_provider
from mlops_provider.core import tags
from mlops_provider.core.identity import TaskIdentity

TASK = TaskIdentity(dag_id="mlops_lifecycle", run_id="scheduled__2026-01-01T00:00:00+00:00", task_id="promote")
MAPPED = TaskIdentity(dag_id="mlops_fleet_churn", run_id="manual__1", task_id="train", map_index=2, try_number=3)

KEY = {"dag_id": TASK.dag_id, "run_id": TASK.run_id, "task_id": "promote"}


@pytest.mark.parametrize(
    ("identity", "key"),
    [
        (TASK, {**KEY, "map_index": "-1"}),
        (MAPPED, {"dag_id": "mlops_fleet_churn", "run_id": "manual__1", "task_id": "train", "map_index": "2"}),
        (
            TaskIdentity("d", "r", "t", map_index=0, try_number=9),
            {"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": "0"},
        ),
    ],
    ids=["unmapped", "mapped", "map-index-0"],
)
def test_key_is_text_without_the_try_number(identity, key):
    assert identity.key == key


SAME_TASK_CASES = [
    ("own-key", {**KEY, "map_index": "-1"}, True),
    ("a-retry-other-try-number", {**KEY, "map_index": "-1", "try_number": "2"}, True),
    ("actor-with-extras", {**KEY, "map_index": "-1", "try_number": "5", "user": "alice"}, True),
    ("recorded-without-map-index-counts-as-minus-1", dict(KEY), True),
    ("recorded-map-index-as-int", {**KEY, "map_index": -1}, True),
    ("other-run", {**KEY, "run_id": "manual__2026-01-01T00:00:00+00:00", "map_index": "-1"}, False),
    ("other-task", {**KEY, "task_id": "train", "map_index": "-1"}, False),
    ("other-dag", {**KEY, "dag_id": "mlops_retrain_scheduled", "map_index": "-1"}, False),
    ("other-map-index", {**KEY, "map_index": "0"}, False),
    ("missing-task-id", {"dag_id": KEY["dag_id"], "run_id": KEY["run_id"], "map_index": "-1"}, False),
    ("none", None, False),
    ("empty", {}, False),
]


@pytest.mark.parametrize(("recorded", "same"), [pytest.param(*c[1:], id=c[0]) for c in SAME_TASK_CASES])
def test_same_task(recorded, same):
    assert TASK.same_task(recorded) is same


@pytest.mark.parametrize(
    ("recorded", "same"),
    [
        ({"dag_id": "mlops_fleet_churn", "run_id": "manual__1", "task_id": "train", "map_index": "2"}, True),
        ({"dag_id": "mlops_fleet_churn", "run_id": "manual__1", "task_id": "train", "map_index": 2}, True),
        ({"dag_id": "mlops_fleet_churn", "run_id": "manual__1", "task_id": "train", "map_index": "1"}, False),
        ({"dag_id": "mlops_fleet_churn", "run_id": "manual__1", "task_id": "train"}, False),  # unmapped record
    ],
    ids=["same-index", "same-index-int", "sibling-index", "no-map-index-is-unmapped"],
)
def test_same_task_of_a_mapped_task(recorded, same):
    assert MAPPED.same_task(recorded) is same


def test_a_retry_is_the_same_task():
    retry = TaskIdentity(TASK.dag_id, TASK.run_id, TASK.task_id, try_number=2)
    assert retry.key == TASK.key
    assert retry.same_task(TASK.actor()) and TASK.same_task(retry.actor())
    assert retry != TASK


@pytest.mark.parametrize(
    ("extra", "expected_extra"),
    [
        ({}, {}),
        ({"user": "alice"}, {"user": "alice"}),
        ({"user": "alice", "approver": "", "comment": None}, {"user": "alice"}),
        ({"approver": "bob", "reason": "canary looked fine"}, {"approver": "bob", "reason": "canary looked fine"}),
    ],
    ids=["none", "one", "empty-dropped", "two"],
)
def test_actor(extra, expected_extra):
    assert MAPPED.actor(**extra) == {
        "dag_id": "mlops_fleet_churn",
        "run_id": "manual__1",
        "task_id": "train",
        "map_index": "2",
        "try_number": "3",
        **expected_extra,
    }


def test_owner_is_readable():
    assert TASK.owner == "mlops_lifecycle/scheduled__2026-01-01T00:00:00+00:00/promote try 1"
    assert MAPPED.owner == "mlops_fleet_churn/manual__1/train[2] try 3"


def test_tag_names_stay_the_ones_already_stored_in_mlflow():
    """Versions and runs registered earlier carry these names: renaming one breaks retries' replay."""
    assert (tags.AIRFLOW_DAG_ID, tags.AIRFLOW_RUN_ID, tags.AIRFLOW_TASK_ID, tags.AIRFLOW_MAP_INDEX,
            tags.AIRFLOW_TRY_NUMBER, tags.PROVIDER_VERSION) == (
        "airflow.dag_id", "airflow.run_id", "airflow.task_id", "airflow.map_index", "airflow.try_number",
        "mlops.provider_version",
    )  # fmt: skip
    assert tags.AIRFLOW_TASK_KEY == ("airflow.dag_id", "airflow.run_id", "airflow.task_id", "airflow.map_index")


def test_run_tags():
    assert MAPPED.run_tags() == {
        tags.AIRFLOW_DAG_ID: "mlops_fleet_churn",
        tags.AIRFLOW_RUN_ID: "manual__1",
        tags.AIRFLOW_TASK_ID: "train",
        tags.AIRFLOW_TRY_NUMBER: "3",
        tags.AIRFLOW_MAP_INDEX: "2",
        tags.PROVIDER_VERSION: mlops_provider.__version__,
    }
    assert all(isinstance(value, str) for value in TASK.run_tags().values())


def test_key_tags_leave_out_the_try():
    assert TASK.key_tags() == {
        tags.AIRFLOW_DAG_ID: "mlops_lifecycle",
        tags.AIRFLOW_RUN_ID: "scheduled__2026-01-01T00:00:00+00:00",
        tags.AIRFLOW_TASK_ID: "promote",
        tags.AIRFLOW_MAP_INDEX: "-1",
    }
    retry = TaskIdentity(TASK.dag_id, TASK.run_id, TASK.task_id, try_number=4)
    assert retry.key_tags() == TASK.key_tags()
    assert retry.run_tags() != TASK.run_tags()


@pytest.mark.parametrize(
    "identity",
    [TASK, MAPPED, TaskIdentity("d", "r", "t", map_index=0, try_number=1), TaskIdentity("d", "r", "t", try_number=12)],
    ids=["unmapped", "mapped", "map-index-0", "try-12"],
)
def test_from_tags_round_trip(identity):
    assert TaskIdentity.from_tags(identity.run_tags()) == identity
    # Among the other tags of an MLflow run or version.
    assert TaskIdentity.from_tags({**identity.run_tags(), tags.DATASET_URI: "s3://bucket/data", "x": "y"}) == identity


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (TASK.key_tags(), TASK),  # no try number: the first try
        ({tags.AIRFLOW_DAG_ID: "d", tags.AIRFLOW_RUN_ID: "r", tags.AIRFLOW_TASK_ID: "t"}, TaskIdentity("d", "r", "t")),
        (
            {
                tags.AIRFLOW_DAG_ID: "d",
                tags.AIRFLOW_RUN_ID: "r",
                tags.AIRFLOW_TASK_ID: "t",
                tags.AIRFLOW_MAP_INDEX: "",
                tags.AIRFLOW_TRY_NUMBER: "",
            },
            TaskIdentity("d", "r", "t"),
        ),  # fmt: skip
        ({tags.AIRFLOW_DAG_ID: "d", tags.AIRFLOW_RUN_ID: "r"}, None),
        ({tags.AIRFLOW_DAG_ID: "d", tags.AIRFLOW_RUN_ID: "r", tags.AIRFLOW_TASK_ID: ""}, None),
        ({tags.AIRFLOW_DAG_ID: "", tags.AIRFLOW_RUN_ID: "r", tags.AIRFLOW_TASK_ID: "t"}, None),
        ({"dag_id": "d", "run_id": "r", "task_id": "t"}, None),  # a key dict is not a tag dict
        ({}, None),
    ],
    ids=[
        "key-tags",
        "minimal",
        "empty-map-index-and-try",
        "no-task-id",
        "empty-task-id",
        "empty-dag-id",
        "key-not-tags",
        "empty",
    ],  # fmt: skip
)
def test_from_tags(values, expected):
    assert TaskIdentity.from_tags(values) == expected
