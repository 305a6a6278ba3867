"""Window edges: windows are half-open, ``[start, end)``, like Airflow's data intervals (DESIGN.md).

A row stamped exactly at a window's start is that window's; a row stamped exactly at its end is the next
window's. Checked on real Feast materialisations (file offline store, which keeps nanoseconds, and the
PostgreSQL offline store, which keeps microseconds; SQLite online store), on sliced backfills, on the
recorded intervals that freshness reads, and on partition selection.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from mlops_provider.core import features as core
from mlops_provider.core.features import compat
from support.feature_repo import make_feature_repo, online_values, source_frame

UTC = timezone.utc
START = datetime(2026, 2, 1, tzinfo=UTC)
END = START + timedelta(days=1)
END2 = END + timedelta(days=1)
US = timedelta(microseconds=1)
NS = pd.Timedelta(1, unit="ns")
VIEW = "customer_profile"
FEATURE = "monthly_charges"

# (customer, event timestamp, monthly_charges): one row per edge; customer 6 has two rows.
EDGE_ROWS = [
    (0, pd.Timestamp(START - US), 1.0),  # the previous window's last microsecond
    (1, pd.Timestamp(START), 2.0),  # exactly at start: this window
    (2, pd.Timestamp(START + timedelta(hours=12)), 3.0),  # the middle
    (3, pd.Timestamp(END - US), 4.0),  # the window's last microsecond
    (4, pd.Timestamp(END) - NS, 5.0),  # its last nanosecond (the file offline store keeps nanoseconds)
    (5, pd.Timestamp(END), 6.0),  # exactly at end: the next window
    (6, pd.Timestamp(START + timedelta(hours=12)), 7.0),  # newest row inside the window ...
    (6, pd.Timestamp(END), 8.0),  # ... and a newer one exactly at its end
    (7, pd.Timestamp(END2), 9.0),  # exactly at the next window's end
]
CUSTOMERS = range(8)
AFTER_FIRST = {0: None, 1: 2.0, 2: 3.0, 3: 4.0, 4: 5.0, 5: None, 6: 7.0, 7: None}
AFTER_SECOND = {**AFTER_FIRST, 5: 6.0, 6: 8.0}


def open_store(repo: Path):
    from feast import FeatureStore

    return FeatureStore(repo_path=str(repo))


def write_profile_rows(repo: Path, rows) -> None:
    """Replace the sample's customer_profile source by ``rows`` (customer, timestamp, monthly_charges)."""
    template = source_frame(repo, VIEW).iloc[0]
    frame = pd.DataFrame(
        {
            "customer_id": [customer for customer, _, _ in rows],
            "tenure_months": int(template["tenure_months"]),
            FEATURE: [value for _, _, value in rows],
            "support_calls": int(template["support_calls"]),
            "plan": template["plan"],
            "contract": template["contract"],
            "event_timestamp": pd.to_datetime([stamp for _, stamp, _ in rows], utc=True).astype("datetime64[ns, UTC]"),
        }
    )
    frame.to_parquet(repo / "data" / f"{VIEW}.parquet", index=False)


def edge_repo(root: Path, rows=EDGE_ROWS) -> Path:
    repo = make_feature_repo(root, customers=8, days=1)
    write_profile_rows(repo, rows)
    core.apply_repository(open_store(repo), repo)
    return repo


def materialise(repo: Path, start: datetime, end: datetime) -> core.MaterializationResult:
    return core.materialize_window(open_store(repo), core.MaterializationWindow(start, end), [VIEW])


def served(repo: Path, customers=CUSTOMERS) -> dict:
    return online_values(open_store(repo), VIEW, FEATURE, customers)


# -- the reason: Feast alone includes the end ---------------------------------------------------------------


def test_feast_alone_includes_both_ends(tmp_path):
    """What Feast 0.67 does with ``materialize(start, end)``: the row stamped at ``end`` is written too.

    If this starts failing after a Feast upgrade, Feast's reads became half-open: revisit
    ``compat.offline_read_end``, which hands Feast the last instant before ``end``."""
    repo = edge_repo(tmp_path)
    open_store(repo).materialize(START, END, feature_views=[VIEW])
    assert served(repo) == {**AFTER_FIRST, 5: 6.0, 6: 8.0}


# -- materialisation ------------------------------------------------------------------------------------------


def test_a_window_writes_its_start_and_leaves_its_end_to_the_next_window(tmp_path):
    repo = edge_repo(tmp_path)

    first = materialise(repo, START, END)
    assert served(repo) == AFTER_FIRST
    assert first.views[0].rows == 5, first.summary()  # customers 1, 2, 3, 4 and 6 (its middle row)
    assert first.to_dict()["window_end"] == END.isoformat(), "the result names the window, not Feast's bound"
    assert f"[{START.isoformat()}, {END.isoformat()})" in first.summary()

    second = materialise(repo, END, END2)
    assert served(repo) == AFTER_SECOND, "the rows stamped at END arrive with the window that starts there"
    assert second.views[0].rows == 2 and second.values_kept_out == 0, second.summary()  # customers 5 and 6

    # The recorded intervals are the windows themselves: they touch, merge, and freshness sees no gap.
    intervals = open_store(repo).get_feature_view(VIEW).materialization_intervals
    assert sorted((core.to_utc(s, name="s"), core.to_utc(e, name="e")) for s, e in intervals) == [
        (START, END),
        (END, END2),
    ]
    assert core.merge_intervals(intervals) == [(START, END2)]
    report = core.check_freshness(open_store(repo), [VIEW], END2, covered_since=START)
    assert report.fresh, report.summary()
    assert not core.check_freshness(open_store(repo), [VIEW], END2 + US).fresh


def test_rerunning_the_earlier_window_after_the_later_one_changes_nothing(tmp_path):
    """A cleared task of [START, END) run after [END, END2): the rows at END stay the later window's."""
    repo = edge_repo(tmp_path)
    materialise(repo, END, END2)
    materialise(repo, START, END)
    assert served(repo) == AFTER_SECOND


def test_sliced_backfill_equals_one_window(tmp_path):
    """Three slices whose boundaries fall exactly on rows: every row is read by exactly one slice, and the
    online store ends where one window over the whole range ends (slices run newest first)."""
    whole = core.MaterializationWindow(START, START + timedelta(days=3))
    slices = core.split_window(whole, slices=3)
    bounds = [piece.start for piece in slices] + [whole.end]
    assert bounds == [START + timedelta(days=n) for n in range(4)]
    rows = []
    for customer, bound in enumerate(bounds):
        rows += [
            (customer, pd.Timestamp(bound - US), 10.0 * customer + 1),  # just before the boundary
            (customer, pd.Timestamp(bound), 10.0 * customer + 2),  # exactly on it
        ]
    rows.append((9, pd.Timestamp(bounds[1]), 99.0))  # only on the first inner boundary
    customers = range(10)

    one_repo = edge_repo(tmp_path / "one", rows)
    materialise(one_repo, whole.start, whole.end)
    sliced_repo = edge_repo(tmp_path / "sliced", rows)
    results = {piece: materialise(sliced_repo, piece.start, piece.end) for piece in reversed(slices)}

    assert served(sliced_repo, customers) == served(one_repo, customers)
    assert served(one_repo, customers) == {
        0: 2.0,  # START itself is the first slice's
        1: 12.0,
        2: 22.0,
        3: 31.0,  # the row at the end of the whole window is left out; the one before it is in
        4: None,
        5: None,
        6: None,
        7: None,
        8: None,
        9: 99.0,
    }
    in_slice = {piece: {c for c, stamp, _ in rows if piece.start <= stamp < piece.end} for piece in slices}
    assert [results[piece].views[0].rows for piece in slices] == [len(in_slice[piece]) for piece in slices]
    assert [9 in in_slice[piece] for piece in slices] == [False, True, False], "a boundary row: the later slice"
    assert core.merge_intervals(open_store(sliced_repo).get_feature_view(VIEW).materialization_intervals) == [
        (whole.start, whole.end)
    ]


def test_an_empty_window_reads_writes_and_records_nothing(tmp_path):
    repo = edge_repo(tmp_path)
    result = materialise(repo, START, START)  # a row is stamped exactly at START
    assert result.window.empty and [v.rows for v in result.views] == [0]
    assert "is empty" in result.summary()
    assert served(repo) == dict.fromkeys(CUSTOMERS)
    assert open_store(repo).get_feature_view(VIEW).materialization_intervals == []


def test_the_operator_reads_the_data_interval_half_open(tmp_path):
    from mlops_provider.operators.features import MaterializeFeaturesOperator

    repo = edge_repo(tmp_path)
    operator = MaterializeFeaturesOperator(task_id="materialize", repo_path=str(repo), feature_views=[VIEW])
    result = operator.execute({"data_interval_start": START, "data_interval_end": END})
    assert (result["window_start"], result["window_end"]) == (START.isoformat(), END.isoformat())
    assert served(repo) == AFTER_FIRST


# -- the bound handed to Feast --------------------------------------------------------------------------------


class _Config:
    def __init__(self, offline_type: str) -> None:
        self.offline_store = type("OfflineStore", (), {"type": offline_type})()


def test_offline_read_end_is_the_last_instant_the_store_can_tell_from_end():
    file_end = compat.offline_read_end(_Config("file"), END)
    assert isinstance(file_end, pd.Timestamp) and file_end == pd.Timestamp(END) - NS
    postgres_end = compat.offline_read_end(_Config("postgres"), END)
    assert type(postgres_end) is datetime and postgres_end == END - US

    # What Feast's SQL stores write into their query for it: microseconds, never rounded up to END.
    from feast.infra.offline_stores.offline_utils import get_timestamp_filter_sql

    sql = get_timestamp_filter_sql(START, postgres_end, "ts", tz=UTC, cast_style="timestamptz", date_time_separator=" ")
    assert (
        sql
        == "\"ts\" BETWEEN '2026-02-01 00:00:00+00:00'::timestamptz AND '2026-02-01 23:59:59.999999+00:00'::timestamptz"
    )


def test_postgres_offline_store_window_edges(tmp_path, postgres_url):
    """The same edges through Feast's PostgreSQL offline store (``timestamptz``: microseconds)."""
    from urllib.parse import urlsplit

    import psycopg2
    from feast import Entity, FeatureStore, FeatureView, Field, ValueType
    from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import PostgreSQLSource
    from feast.repo_config import RepoConfig
    from feast.types import Float64

    url = urlsplit(postgres_url)
    rows = [(c, stamp.to_pydatetime(warn=False), value) for c, stamp, value in EDGE_ROWS if c != 4]  # no ns
    with psycopg2.connect(
        host=url.hostname, port=url.port or 5432, dbname=url.path.strip("/"), user=url.username
    ) as connection:
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE profile_rows (customer_id BIGINT, monthly_charges DOUBLE PRECISION, "
                           "event_timestamp TIMESTAMPTZ)")  # fmt: skip
            cursor.executemany("INSERT INTO profile_rows VALUES (%s, %s, %s)", [(c, v, s) for c, s, v in rows])
    connection.close()

    offline = {
        "type": "postgres",
        "host": url.hostname,
        "port": url.port or 5432,
        "database": url.path.strip("/"),
        "db_schema": "public",
        "user": url.username,
        "password": url.password or "unused-trust-auth",
        "sslmode": "disable",
    }
    config = RepoConfig(
        project=f"edges_{uuid.uuid4().hex[:8]}",
        provider="local",
        registry=str(tmp_path / "registry.db"),
        online_store={"type": "sqlite", "path": str(tmp_path / "online.db")},
        offline_store=offline,
        entity_key_serialization_version=3,
        repo_path=str(tmp_path),
    )
    store = FeatureStore(config=config)
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    view = FeatureView(
        name=VIEW,
        entities=[customer],
        ttl=timedelta(days=35),
        schema=[Field(name=FEATURE, dtype=Float64)],
        source=PostgreSQLSource(name="profile_rows", table="profile_rows", timestamp_field="event_timestamp"),
        online=True,
    )
    store.apply([customer, view])

    def online() -> dict:
        return online_values(FeatureStore(config=config), VIEW, FEATURE, CUSTOMERS)

    without_ns = {**AFTER_FIRST, 4: None}
    core.materialize_window(FeatureStore(config=config), core.MaterializationWindow(START, END), [VIEW])
    assert online() == without_ns
    core.materialize_window(FeatureStore(config=config), core.MaterializationWindow(END, END2), [VIEW])
    assert online() == {**without_ns, 5: 6.0, 6: 8.0}


# -- partition selection ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("since", "until"),
    [
        pytest.param("2026-02-02", "2026-02-04", id="dates"),
        pytest.param(datetime(2026, 2, 2, tzinfo=UTC), datetime(2026, 2, 4, tzinfo=UTC), id="data-interval"),
        pytest.param(date(2026, 2, 2), date(2026, 2, 4), id="date-objects"),
    ],
)
def test_select_partitions_keeps_since_and_leaves_until_to_the_next_run(tmp_path, since, until):
    from mlops_provider.operators.datasets import SelectPartitionsOperator

    for day in range(1, 6):
        folder = tmp_path / "events" / f"dt=2026-02-0{day}"
        folder.mkdir(parents=True)
        (folder / "part-0.csv").write_text("a\n1\n")

    def select(since, until) -> list[str]:
        operator = SelectPartitionsOperator(
            task_id="select", dataset_uri=str(tmp_path / "events"), since=since, until=until, aws_conn_id=None
        )
        return operator.execute({})["partitions"]

    assert select(since, until) == ["2026-02-02", "2026-02-03"], "since included, until excluded"
    # The next run's window starts where this one ended: the partition dated `until` is its first.
    assert select(until, "2026-02-06") == ["2026-02-04", "2026-02-05"]
