"""Feast feature store tasks on copies of the sample repository (include/feature_repo).

Online stores: SQLite (default), this machine's Redis and PostgreSQL. The sample data has one snapshot per
customer and day (2026-01-01 .. 2026-01-03), so every window holds different values for every customer.
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from mlops_provider.core import features as core
from mlops_provider.core.errors import (
    ConfigurationError,
    EntityFrameError,
    FeatureReferenceError,
    FeatureViewNotFoundError,
    MaterializationWindowError,
)
from support.feature_repo import (
    make_feature_repo,
    newest_values,
    online_store_config,
    online_values,
    source_frame,
)

UTC = timezone.utc
DAY = {n: datetime(2026, 1, n, tzinfo=UTC) for n in range(1, 6)}
GUARDS = {"sqlite": "conditional-upsert", "postgres": "conditional-upsert", "redis": "atomic-compare-and-set"}
VIEWS = {
    "customer_profile": ["tenure_months", "monthly_charges", "support_calls", "plan", "contract"],
    "customer_activity": ["sessions_7d", "sessions_30d", "minutes_7d", "data_gb_7d", "days_since_last_login"],
}


def day_window(first: int, last: int | None = None) -> core.MaterializationWindow:
    """Days ``first`` .. ``last`` (inclusive): the window ends a microsecond before the next midnight."""
    return core.MaterializationWindow(DAY[first], DAY[(last or first) + 1] - timedelta(microseconds=1))


def open_store(repo: Path):
    from feast import FeatureStore

    return FeatureStore(repo_path=str(repo))


def applied_repo(root: Path, **kwargs) -> Path:
    repo = make_feature_repo(root, **kwargs)
    core.apply_repository(open_store(repo), repo)
    return repo


def online_snapshot(store, customers) -> dict:
    """Every feature of every customer as served online."""
    snapshot = {}
    for view, names in VIEWS.items():
        for name in names:
            snapshot[f"{view}:{name}"] = online_values(store, view, name, customers)
    return snapshot


def newest_snapshot(repo: Path, *, until=None) -> dict:
    return {
        f"{view}:{name}": newest_values(repo, view, name, until=until)
        for view, names in VIEWS.items()
        for name in names
    }


@pytest.fixture
def sqlite_repo(tmp_path):
    return applied_repo(tmp_path)


# Redis and PostgreSQL are requested inside the fixture, where the conftest cannot see them: their params carry
# the system mark themselves.
@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("redis", marks=pytest.mark.system),
        pytest.param("postgres", marks=pytest.mark.system),
    ]
)
def store_repo(request, tmp_path):
    """An applied sample repository on each online store; Redis keys are removed afterwards."""
    kind = request.param
    if kind == "sqlite":
        yield kind, applied_repo(tmp_path)
        return
    if kind == "redis":
        config = online_store_config("redis", redis_url=request.getfixturevalue("redis_url"))
    else:
        config = online_store_config("postgres", postgres_url=request.getfixturevalue("postgres_url"))
    repo = applied_repo(tmp_path, online_store=config)
    yield kind, repo
    if kind == "redis":
        open_store(repo).teardown()


# -- windows, slices, freshness arithmetic ---------------------------------------------------------------


def test_window_defaults_to_the_data_interval_and_templates_override_it():
    window = core.resolve_window(None, "", default_start=DAY[1], default_end=DAY[2])
    assert (window.start, window.end) == (DAY[1], DAY[2])
    window = core.resolve_window("2026-01-03T00:00:00Z", "2026-01-04", default_start=DAY[1], default_end=DAY[2])
    assert (window.start, window.end) == (DAY[3], DAY[4])
    naive = core.resolve_window(datetime(2026, 1, 1), datetime(2026, 1, 2))
    assert naive.start.tzinfo is not None and naive.start == DAY[1]


def test_window_errors_name_the_input():
    with pytest.raises(MaterializationWindowError, match="window_end 2026-01-01.* < window_start 2026-01-02"):
        core.resolve_window(DAY[2], DAY[1])
    with pytest.raises(MaterializationWindowError, match="No window_start and window_end"):
        core.resolve_window(None, None)
    with pytest.raises(MaterializationWindowError, match="data interval is empty .*CronDataIntervalTimetable"):
        core.resolve_window(default_start=DAY[1], default_end=DAY[1])
    assert core.resolve_window(DAY[1], DAY[1]).start == DAY[1], "an explicit instant is allowed"
    with pytest.raises(MaterializationWindowError, match="window_start='yesterday' is not an ISO 8601"):
        core.resolve_window("yesterday", DAY[2])


def test_split_window_into_consecutive_slices():
    from mlops_provider.operators.features import materialization_slices

    window = core.MaterializationWindow(DAY[1], DAY[4])
    parts = core.split_window(window, slices=3)
    assert [(p.start, p.end) for p in parts] == [(DAY[1], DAY[2]), (DAY[2], DAY[3]), (DAY[3], DAY[4])]
    parts = core.split_window(window, slice_length=timedelta(days=2))
    assert [(p.start, p.end) for p in parts] == [(DAY[1], DAY[3]), (DAY[3], DAY[4])]
    assert materialization_slices("2026-01-01", "2026-01-02", slices=2) == [
        {"window_start": "2026-01-01T00:00:00+00:00", "window_end": "2026-01-01T12:00:00+00:00"},
        {"window_start": "2026-01-01T12:00:00+00:00", "window_end": "2026-01-02T00:00:00+00:00"},
    ]
    with pytest.raises(MaterializationWindowError, match="exactly one of slices"):
        core.split_window(window)
    with pytest.raises(MaterializationWindowError, match="slices=0 must be at least 1"):
        core.split_window(window, slices=0)


def test_freshness_from_intervals():
    intervals = [(DAY[1], DAY[2]), (DAY[2], DAY[3]), (DAY[4], DAY[5])]
    assert core.merge_intervals(intervals) == [(DAY[1], DAY[3]), (DAY[4], DAY[5])]
    fresh = core.assess_view_freshness("v", intervals, DAY[5])
    assert fresh.fresh and fresh.materialized_until == DAY[5]
    assert not core.assess_view_freshness("v", intervals, DAY[5] + timedelta(seconds=1)).fresh
    gap = core.assess_view_freshness("v", intervals, DAY[5], covered_since=DAY[1])
    assert not gap.fresh and "2026-01-03T00:00:00+00:00 .. 2026-01-04T00:00:00+00:00" in gap.reason
    assert core.assess_view_freshness("v", intervals, DAY[3], covered_since=DAY[1]).fresh
    never = core.assess_view_freshness("v", [], DAY[1])
    assert not never.fresh and never.reason == "never materialised"


# -- apply -------------------------------------------------------------------------------------------------


def test_apply_is_idempotent(tmp_path):
    from mlops_provider.operators.features import FeastApplyOperator

    repo = make_feature_repo(tmp_path)
    first = FeastApplyOperator(task_id="apply", repo_path=str(repo)).execute({})
    assert first["changed"]
    assert {"feature_view:customer_profile", "feature_view:customer_activity", "entity:customer",
            "feature_service:churn_model"} <= set(first["created"])  # fmt: skip
    registry = repo / "data" / "registry.db"
    before = hashlib.sha256(registry.read_bytes()).hexdigest()
    second = FeastApplyOperator(task_id="apply", repo_path=str(repo)).execute({})
    assert not second["changed"] and second["created"] == second["updated"] == second["deleted"] == []
    assert second["unchanged"] == len(first["created"])
    unchanged = hashlib.sha256(registry.read_bytes()).hexdigest() == before
    assert unchanged, "a no-change apply must not rewrite the registry"
    assert not (repo / "__pycache__").exists()

    # A changed definition is an update, applied once.
    definitions = repo / "customer_features.py"
    definitions.write_text(definitions.read_text().replace("ttl=timedelta(days=7)", "ttl=timedelta(days=8)"))
    third = FeastApplyOperator(task_id="apply", repo_path=str(repo)).execute({})
    assert third["updated"] == ["feature_view:customer_activity"]
    assert not FeastApplyOperator(task_id="apply", repo_path=str(repo)).execute({})["changed"]


# -- materialisation ---------------------------------------------------------------------------------------


def test_materialise_then_read_online_values(sqlite_repo):
    from mlops_provider.operators.features import MaterializeFeaturesOperator

    operator = MaterializeFeaturesOperator(task_id="materialize", repo_path=str(sqlite_repo))
    result = operator.execute({"data_interval_start": DAY[1], "data_interval_end": DAY[4]})
    assert (result["window_start"], result["window_end"]) == (DAY[1].isoformat(), DAY[4].isoformat())
    assert result["online_store"] == "sqlite" and result["guard"] == "conditional-upsert" and result["atomic"]
    assert {v["name"]: v["rows"] for v in result["feature_views"]} == {"customer_activity": 40, "customer_profile": 40}
    assert result["values_written"] == 400 and result["values_kept_out"] == 0
    store = open_store(sqlite_repo)
    assert online_snapshot(store, range(40)) == newest_snapshot(sqlite_repo)

    only_profile = MaterializeFeaturesOperator(
        task_id="materialize", repo_path=str(sqlite_repo), feature_views=["customer_profile"],
        window_start="2026-01-01T00:00:00Z", window_end="2026-01-01T23:59:59Z",
    ).execute({})  # fmt: skip
    assert [v["name"] for v in only_profile["feature_views"]] == ["customer_profile"]


def test_plain_feast_materialize_regresses_on_an_older_window(sqlite_repo):
    """Why the guard exists: Feast's own materialize lets an older window overwrite newer online values."""
    store = open_store(sqlite_repo)
    store.materialize(day_window(3).start, day_window(3).end)
    store.materialize(day_window(1).start, day_window(1).end)
    served = online_values(store, "customer_profile", "monthly_charges", range(40))
    assert served == newest_values(sqlite_repo, "customer_profile", "monthly_charges", until=day_window(1).end)
    assert served != newest_values(sqlite_repo, "customer_profile", "monthly_charges")


def test_backfill_order_keeps_the_newest_values_online(store_repo):
    """Newer window, then an older one (a backfill), then the newer one again (a cleared task)."""
    kind, repo = store_repo
    store = open_store(repo)
    newest = newest_snapshot(repo)

    newer = core.materialize_window(store, day_window(3))
    assert newer.values_kept_out == 0 and online_snapshot(store, range(40)) == newest

    older = core.materialize_window(open_store(repo), day_window(1))
    assert older.values_kept_out == 400 and sum(v.values_written for v in older.views) == 0, older.summary()
    assert "kept out" in older.summary() and older.atomic
    assert older.guard == GUARDS[kind]
    assert online_snapshot(store, range(40)) == newest

    rerun = core.materialize_window(open_store(repo), day_window(3))
    assert rerun.values_kept_out == 0 and online_snapshot(store, range(40)) == newest
    assert [v.interval_recorded for v in rerun.views] == [False, False], "a rerun records its interval once"

    middle = core.materialize_window(open_store(repo), day_window(2))  # catch-up of the gap, still older
    assert middle.values_kept_out == 400 and online_snapshot(store, range(40)) == newest
    intervals = open_store(repo).get_feature_view("customer_profile").materialization_intervals
    assert len(intervals) == 3


def _materialize_day(repo: str, day: int) -> None:
    core.materialize_window(open_store(Path(repo)), day_window(day))


@pytest.mark.slow  # three spawned interpreters, as three Airflow tasks
def test_parallel_slices_in_any_order_end_with_the_newest_values(store_repo):
    """Three one-day slices run at once, the newest one first, each in a process of its own with its own
    FeatureStore, as three Airflow tasks run. (Not threads of one process: Feast reads the file source with dask,
    whose expressions compute cached properties under Python 3.11's per-property locks, and three threads doing
    that deadlocked now and then, holding the locks for every later test of the process.)"""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    kind, repo = store_repo
    with ProcessPoolExecutor(max_workers=3, mp_context=multiprocessing.get_context("spawn")) as pool:
        slices = [pool.submit(_materialize_day, str(repo), day) for day in (3, 1, 2)]
        errors = [error for error in (done.exception(timeout=180) for done in slices) if error is not None]
    assert not errors, errors
    assert online_snapshot(open_store(repo), range(40)) == newest_snapshot(repo)
    intervals = open_store(repo).get_feature_view("customer_activity").materialization_intervals
    assert len(intervals) == 3, "every slice's interval is recorded, none lost to a concurrent registry write"


def test_read_compare_write_guard_for_other_online_stores(sqlite_repo, monkeypatch):
    """The fallback for online stores without a conditional write, exercised on SQLite."""
    monkeypatch.setattr(core, "write_guard_for", lambda online_store, config: core.ReadCompareWrite(online_store))
    store = open_store(sqlite_repo)
    core.materialize_window(store, day_window(3))
    older = core.materialize_window(open_store(sqlite_repo), day_window(1))
    assert older.guard == "read-compare-write" and not older.atomic and older.values_kept_out == 400
    assert "not atomic against concurrent writers" in older.summary()
    assert online_snapshot(store, range(40)) == newest_snapshot(sqlite_repo)
    rerun = core.materialize_window(open_store(sqlite_repo), day_window(3))
    assert rerun.values_kept_out == 0 and online_snapshot(store, range(40)) == newest_snapshot(sqlite_repo)


def test_rerunning_an_interval_leaves_the_online_store_identical(sqlite_repo):
    store = open_store(sqlite_repo)
    core.materialize_window(store, day_window(1, 2))

    def online_rows():
        with sqlite3.connect(sqlite_repo / "data" / "online_store.db") as conn:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
            query = 'SELECT * FROM "{}" ORDER BY entity_key, feature_name'
            return {t: conn.execute(query.format(t)).fetchall() for t in tables}

    before = online_rows()
    assert sum(len(rows) for rows in before.values()) == 400
    again = core.materialize_window(open_store(sqlite_repo), day_window(1, 2))
    assert online_rows() == before
    assert [v.interval_recorded for v in again.views] == [False, False]


# -- point-in-time training sets ---------------------------------------------------------------------------


def expected_as_of(repo: Path, entities: pd.DataFrame, view: str, ttl: timedelta) -> pd.DataFrame:
    """Per entity row, the newest feature row at or before its timestamp and within ttl (pandas' as-of join)."""
    source = source_frame(repo, view).sort_values("event_timestamp").rename(columns={"event_timestamp": "feature_ts"})
    rows = entities.reset_index().sort_values("event_timestamp")
    joined = pd.merge_asof(
        rows, source, left_on="event_timestamp", right_on="feature_ts", by="customer_id",
        direction="backward", tolerance=ttl,
    )  # fmt: skip
    return joined.set_index("index").sort_index()


def test_training_set_is_point_in_time_correct(sqlite_repo, tmp_path):
    from mlops_provider.operators.features import GetHistoricalFeaturesOperator

    labels = source_frame(sqlite_repo, "churn_labels")
    profile = source_frame(sqlite_repo, "customer_profile")
    # Two hand-made rows around customer 0's day-2 snapshot: one second before it and exactly at it.
    day2 = profile[(profile.customer_id == 0) & (profile.event_timestamp >= DAY[2])].event_timestamp.min()
    extra = pd.DataFrame(
        {"customer_id": [0, 0], "event_timestamp": [day2 - timedelta(seconds=1), day2], "churned": [0, 1]}
    )
    entities = pd.concat([labels, extra], ignore_index=True)
    entity_uri = tmp_path / "entities.parquet"
    entities.to_parquet(entity_uri, index=False)
    output_uri = tmp_path / "training" / "set.parquet"

    result = GetHistoricalFeaturesOperator(
        task_id="training_set",
        repo_path=str(sqlite_repo),
        entity_uri=str(entity_uri),
        features=[f"customer_profile:{f}" for f in VIEWS["customer_profile"]] + ["customer_activity:sessions_7d"],
        output_uri=str(output_uri),
    ).execute({})
    assert result["output_uri"] == str(output_uri) and result["rows"] == len(entities)
    assert result["columns"][:3] == ["customer_id", "event_timestamp", "churned"]
    assert set(VIEWS["customer_profile"]) | {"sessions_7d"} <= set(result["columns"])
    training = pd.read_parquet(output_uri)
    assert training["customer_id"].tolist() == entities["customer_id"].tolist(), "rows keep their order"

    expected = expected_as_of(sqlite_repo, entities, "customer_profile", timedelta(days=35))
    assert training["monthly_charges"].tolist() == expected["monthly_charges"].tolist()
    assert training["plan"].tolist() == expected["plan"].tolist()
    expected_activity = expected_as_of(sqlite_repo, entities, "customer_activity", timedelta(days=7))
    assert training["sessions_7d"].tolist() == expected_activity["sessions_7d"].tolist()

    # The test means something: most label rows have a feature row stamped after them, with another value.
    later = profile.merge(entities.reset_index(), on="customer_id", suffixes=("_feature", "_label"))
    later = later[later.event_timestamp_feature > later.event_timestamp_label]
    assert later["index"].nunique() > 20
    for _, later_row in later.iterrows():
        if later_row["monthly_charges"] != expected.loc[later_row["index"], "monthly_charges"]:
            assert training.loc[later_row["index"], "monthly_charges"] != later_row["monthly_charges"]
    day1_value = profile[(profile.customer_id == 0) & (profile.event_timestamp < DAY[2])].monthly_charges.iloc[-1]
    day2_value = profile[(profile.customer_id == 0) & (profile.event_timestamp == day2)].monthly_charges.iloc[0]
    assert training["monthly_charges"].iloc[-2:].tolist() == [day1_value, day2_value]


def test_training_set_from_a_feature_service_with_another_timestamp_column(sqlite_repo):
    labels = source_frame(sqlite_repo, "churn_labels").rename(columns={"event_timestamp": "label_time"})
    training = core.build_training_set(open_store(sqlite_repo), labels, "churn_model", timestamp_column="label_time")
    assert training.feature_service == "churn_model" and len(training.features) == 10
    assert list(training.frame.columns[:3]) == ["customer_id", "label_time", "churned"]
    assert set(VIEWS["customer_activity"]) <= set(training.frame.columns)


# -- freshness sensor --------------------------------------------------------------------------------------


def test_freshness_sensor_waits_for_materialisation(sqlite_repo):
    from airflow.sdk import PokeReturnValue

    from mlops_provider.sensors.features import FeatureFreshnessSensor

    sensor = FeatureFreshnessSensor(task_id="fresh", repo_path=str(sqlite_repo), feature_views=["customer_profile"])
    assert sensor.mode == "reschedule"
    context = {"data_interval_start": DAY[2], "data_interval_end": DAY[3]}
    assert sensor.poke(context) is False
    core.materialize_window(open_store(sqlite_repo), core.MaterializationWindow(DAY[2], DAY[3]))
    done = sensor.poke(context)
    assert isinstance(done, PokeReturnValue) and done.is_done
    assert done.xcom_value["feature_views"][0]["materialized_until"] == DAY[3].isoformat()

    gapless = FeatureFreshnessSensor(
        task_id="fresh", repo_path=str(sqlite_repo), feature_views=["customer_profile"],
        fresh_until="2026-01-03T00:00:00Z", covered_since="2026-01-01T00:00:00Z",
    )  # fmt: skip
    assert gapless.poke({}) is False, "day 1 was never materialised"
    core.materialize_window(open_store(sqlite_repo), core.MaterializationWindow(DAY[1], DAY[2]))
    assert gapless.poke({}).is_done


# -- bad inputs --------------------------------------------------------------------------------------------


def test_bad_inputs_fail_clearly_before_anything_is_written(sqlite_repo, tmp_path):
    from mlops_provider.operators.features import FeastApplyOperator, MaterializeFeaturesOperator
    from mlops_provider.sensors.features import FeatureFreshnessSensor

    registry = sqlite_repo / "data" / "registry.db"
    before = registry.read_bytes()
    registered = r"\['customer_profil'\].*registered: \['customer_activity', 'customer_profile'\]"
    with pytest.raises(FeatureViewNotFoundError, match=registered):
        MaterializeFeaturesOperator(task_id="m", repo_path=str(sqlite_repo), feature_views=["customer_profil"]).execute(
            {"data_interval_start": DAY[1], "data_interval_end": DAY[2]}
        )
    with pytest.raises(MaterializationWindowError, match="ends before it starts"):
        MaterializeFeaturesOperator(
            task_id="m", repo_path=str(sqlite_repo), window_start="2026-01-03", window_end="2026-01-02"
        ).execute({})
    with pytest.raises(FeatureViewNotFoundError, match="customer_churn"):
        FeatureFreshnessSensor(task_id="f", repo_path=str(sqlite_repo), feature_views=["customer_churn"]).poke(
            {"data_interval_end": DAY[2]}
        )
    assert registry.read_bytes() == before, "nothing recorded"
    with sqlite3.connect(sqlite_repo / "data" / "online_store.db") as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert sum(conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables) == 0

    empty = tmp_path / "not_a_repo"
    empty.mkdir()
    with pytest.raises(ConfigurationError, match="has no feature_store.yaml"):
        FeastApplyOperator(task_id="a", repo_path=str(empty)).execute({})
    with pytest.raises(ConfigurationError, match="has no feature_store.yaml"):
        MaterializeFeaturesOperator(task_id="m", repo_path=str(empty)).execute(
            {"data_interval_start": DAY[1], "data_interval_end": DAY[2]}
        )

    store = open_store(sqlite_repo)
    labels = source_frame(sqlite_repo, "churn_labels")
    with pytest.raises(FeatureReferenceError, match="feature view 'customer_profile' has no feature 'age'"):
        core.build_training_set(store, labels, ["customer_profile:age"])
    with pytest.raises(FeatureReferenceError, match="neither a 'view:feature' reference nor a feature service"):
        core.build_training_set(store, labels, "churn_modle")
    with pytest.raises(EntityFrameError, match=r"lacks the entity key column\(s\) \['customer_id'\]"):
        core.build_training_set(store, labels.drop(columns=["customer_id"]), "churn_model")
    with pytest.raises(EntityFrameError, match="no timestamp column 'label_time'"):
        core.build_training_set(store, labels, "churn_model", timestamp_column="label_time")


# -- the Airflow wiring ------------------------------------------------------------------------------------


@pytest.mark.airflow_db
def test_feature_dag_materialises_mapped_slices_and_builds_a_training_set(airflow_db, tmp_path):
    from dags.mlops_test_features import dag

    repo = make_feature_repo(tmp_path)
    labels = source_frame(repo, "churn_labels")
    entity_uri = tmp_path / "labels.parquet"
    labels.to_parquet(entity_uri, index=False)
    output_uri = tmp_path / "training_set"

    dag_run = dag.test(
        logical_date=DAY[3],
        run_conf={"repo_path": str(repo), "entity_uri": str(entity_uri), "output_uri": str(output_uri)},
    )
    tis = {(ti.task_id, ti.map_index): ti for ti in dag_run.get_task_instances()}
    states = {key: ti.state for key, ti in tis.items()}
    assert states == {
        ("apply", -1): "success",
        ("slice_data_interval", -1): "success",
        ("materialize", 0): "success",
        ("materialize", 1): "success",
        ("wait_until_fresh", -1): "success",
        ("training_set", -1): "success",
        ("wait_for_the_future", -1): "failed",
    }, states
    interval = (dag_run.data_interval_start, dag_run.data_interval_end)
    slices = [tis[("materialize", i)].xcom_pull(task_ids="materialize", map_indexes=i) for i in (0, 1)]
    assert slices[0]["window_start"] == interval[0].isoformat() and slices[1]["window_end"] == interval[1].isoformat()
    assert slices[0]["window_end"] == slices[1]["window_start"]
    fresh = tis[("wait_until_fresh", -1)].xcom_pull(task_ids="wait_until_fresh")
    assert fresh["fresh"] and fresh["fresh_until"] == interval[1].isoformat()
    built = tis[("training_set", -1)].xcom_pull(task_ids="training_set")
    assert built["rows"] == len(labels) and built["feature_service"] == "churn_model"
    assert pd.read_parquet(output_uri).shape == (len(labels), 13)

    # The materialised interval's values are online (the interval covers one day of snapshots).
    store = open_store(repo)
    assert online_values(store, "customer_profile", "plan", range(40)) == newest_values(
        repo, "customer_profile", "plan", until=interval[1]
    )
