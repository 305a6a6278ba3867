"""Inferred suites fit real partitions (issue #13, item 4): a suite inferred from a year of data accepts clean
partitions of any size, never pins time or partition columns, bounds row counts per partition, says where
every bound came from, and still names the column of each corruption. In-process, no services: seasonal
events written as parquet partitions by day, week and month under ``tmp_path``, plus the project's sample data.
"""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_provider.core import validation
from mlops_provider.core.datasets import read_dataset
from mlops_provider.core.errors import ConfigurationError
from sample_data import CORRUPTIONS as SAMPLE_CORRUPTIONS
from sample_data import churn_frame, write_partitions

SAMPLE_SUITE = Path(__file__).resolve().parents[1] / "include" / "expectations" / "customer_churn.json"
ROW_COUNT = "expect_table_row_count_to_be_between"
REGIONS = ("north", "south", "east", "west")
CHANNELS = ("store", "web", "app")
# Partition layouts: the folder key and how a day maps to its partition value.
LAYOUTS = {
    "day": ("dt", lambda day: day.isoformat()),
    "week": ("week", lambda day: (day - timedelta(days=day.weekday())).isoformat()),  # the week's Monday
    "month": ("month", lambda day: day.strftime("%Y-%m")),
}


def events(day: date, seed: int) -> pd.DataFrame:
    """One day of orders with seasonality: volume (+-35% over the year, +30% at weekends), the channel mix,
    basket sizes and prices follow the season; December brings promotions."""
    rng = np.random.default_rng(seed)
    season = math.sin(2 * math.pi * (day.timetuple().tm_yday - 80) / 365.25)  # +1 in June, -1 in December
    rows = int(rng.poisson(120 * (1 + 0.35 * season) * (1.3 if day.weekday() >= 5 else 1.0)))
    web = 0.3 - 0.1 * season
    return pd.DataFrame(
        {
            "order_id": seed * 10_000 + np.arange(rows, dtype="int64"),
            "region": rng.choice(REGIONS, rows, p=[0.4, 0.3, 0.2, 0.1]).astype(object),
            "channel": rng.choice(CHANNELS, rows, p=[0.7 - web, web, 0.3]).astype(object),
            "units": (rng.poisson(2 + 1.5 * (season + 1), rows) + 1).astype("int64"),
            "price": rng.gamma(4.0, 6.0 + 2.0 * season, rows).round(2),
            "is_promo": (rng.random(rows) < (0.25 if day.month == 12 else 0.1)).astype("int64"),
            "event_timestamp": pd.Timestamp(day.isoformat(), tz="UTC")
            + pd.to_timedelta(np.sort(rng.integers(0, 86_400, rows)), unit="s"),
        }
    )


def days(first: str, count: int) -> list[date]:
    start = date.fromisoformat(first)
    return [start + timedelta(days=offset) for offset in range(count)]


def write_layout(root: Path, layout: str, frames: dict[date, pd.DataFrame]) -> None:
    key, value_of = LAYOUTS[layout]
    groups: dict[str, list[pd.DataFrame]] = {}
    for day, frame in frames.items():
        groups.setdefault(value_of(day), []).append(frame)
    for value, parts in groups.items():
        folder = root / layout / f"{key}={value}"
        folder.mkdir(parents=True)
        pd.concat(parts, ignore_index=True).to_parquet(folder / "part-00000.parquet", index=False)


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> dict[str, str]:
    """A year of 2025 as reference (by day, week and month, and as one file), and clean 2026 partitions."""
    root = tmp_path_factory.mktemp("lake")
    year = {day: events(day, seed=day.toordinal()) for day in days("2025-01-01", 365)}
    for layout in LAYOUTS:
        write_layout(root / "reference", layout, year)
    pd.concat(year.values(), ignore_index=True).to_parquet(root / "reference" / "year.parquet", index=False)
    # New data: January and February, and a week in July (the other season); other seeds than the reference.
    new = {day: events(day, seed=day.toordinal() + 7) for day in [*days("2026-01-01", 59), *days("2026-07-13", 7)]}
    for layout in LAYOUTS:
        write_layout(root / "new", layout, new)
    new_days = root / "new" / "day"
    return {
        "reference_day": str(root / "reference" / "day"),
        "reference_week": str(root / "reference" / "week"),
        "reference_month": str(root / "reference" / "month"),
        "reference_year_file": str(root / "reference" / "year.parquet"),
        "day": str(new_days / "dt=2026-01-02"),
        "summer_day": str(new_days / "dt=2026-07-15"),
        "week": str(root / "new" / "week" / "week=2026-01-05"),
        "month": str(root / "new" / "month" / "month=2026-02"),
        "week_of_days": ",".join(str(new_days / f"dt={day}") for day in days("2026-01-05", 7)),
        "root": str(root),
    }


@pytest.fixture(scope="module")
def references(lake) -> dict[str, pd.DataFrame]:
    names = ("reference_day", "reference_week", "reference_month", "reference_year_file")
    return {name: read_dataset(lake[name]) for name in names}


@pytest.fixture(scope="module")
def suites(lake, references) -> dict[str, validation.ExpectationSuiteSpec]:
    return {name: validation.infer_suite(frame, reference_uri=lake[name]) for name, frame in references.items()}


def validate(uri: str, suite: validation.ExpectationSuiteSpec) -> tuple[validation.ValidationOutcome, list[str]]:
    """What the operator does: read, fit per-partition row bounds to the data, check, validate."""
    frame = read_dataset(uri, allow_empty=True)
    fitted, notes = validation.fit_row_count(suite, frame)
    validation.check_validation_input(frame, fitted, uri)
    return validation.run_validation(frame, fitted, dataset_uri=uri).outcome, notes


def failures(outcome: validation.ValidationOutcome) -> set[tuple[str | None, str]]:
    return {(failure.column, failure.expectation) for failure in outcome.failed}


def by_type(suite: validation.ExpectationSuiteSpec, column: str | None = None) -> dict[str, dict]:
    return {e["type"]: e for e in suite.expectations if e["kwargs"].get("column") == column}


# -- clean data of every size passes --------------------------------------------------------------------


@pytest.mark.parametrize("reference", ["reference_day", "reference_week", "reference_month", "reference_year_file"])
def test_a_year_accepts_clean_partitions_of_every_size(lake, suites, reference):
    suite = suites[reference]
    for clean in ("day", "summer_day", "week", "month", "week_of_days"):
        outcome, notes = validate(lake[clean], suite)
        assert outcome.success, f"{reference} blocked the clean {clean}: {outcome.summary()} {notes}"


# -- where row-count bounds come from --------------------------------------------------------------------


@pytest.mark.parametrize(("reference", "column", "partitions"), [
    ("reference_day", "dt", 365), ("reference_week", "week", 53), ("reference_month", "month", 12),
])  # fmt: skip
def test_row_bounds_come_from_the_reference_partitions(references, suites, reference, column, partitions):
    sizes = references[reference].groupby(column).size()
    row_count = by_type(suites[reference])[ROW_COUNT]
    low, high = max(1, math.floor(sizes.min() / 10)), math.ceil(sizes.max() * 10)
    assert row_count["kwargs"] == {"min_value": low, "max_value": high}
    assert row_count["meta"]["mlops_rows_per_partition"] == {
        "min_value": low, "max_value": high, "partition_columns": [column], "source": "reference"
    }  # fmt: skip
    assert row_count["meta"]["inferred"].startswith(
        f"from {partitions} reference partitions ({column}) of {sizes.min():,}–{sizes.max():,} rows"
    )
    inference = suites[reference].meta["mlops_inference"]
    assert inference["reference_partitions"] == {
        "columns": [column], "count": partitions, "min_rows": int(sizes.min()), "max_rows": int(sizes.max())
    }  # fmt: skip


def test_bounds_scale_with_the_partitions_validated(lake, suites):
    daily = suites["reference_day"]
    per_day = by_type(daily)[ROW_COUNT]["kwargs"]
    week = read_dataset(lake["week_of_days"])
    fitted, [note] = validation.fit_row_count(daily, week)
    assert by_type(fitted)[ROW_COUNT]["kwargs"] == {
        "min_value": 7 * per_day["min_value"], "max_value": 7 * per_day["max_value"]
    }  # fmt: skip
    assert note.startswith("7 partitions (dt) in the validated data") and by_type(fitted)[ROW_COUNT]["meta"]["applied"]
    assert by_type(daily)[ROW_COUNT]["kwargs"] == per_day  # the inferred suite itself is unchanged
    refitted, _ = validation.fit_row_count(fitted, read_dataset(lake["day"]))  # from the meta, not the kwargs
    assert by_type(refitted)[ROW_COUNT]["kwargs"] == per_day
    # A week stored as one week=... folder holds an unknown number of days: only "not empty" is checked.
    other_layout, [note] = validation.fit_row_count(daily, read_dataset(lake["week"]))
    assert by_type(other_layout)[ROW_COUNT]["kwargs"] == {"min_value": 1, "max_value": None}
    assert "has no dt column" in note


def test_a_reference_without_partitions_only_asks_for_rows(lake, suites):
    row_count = by_type(suites["reference_year_file"])[ROW_COUNT]
    assert row_count["kwargs"] == {"min_value": 1, "max_value": None}
    assert "has no partition folders" in row_count["meta"]["inferred"]
    assert "mlops_rows_per_partition" not in row_count["meta"]
    assert suites["reference_year_file"].meta["mlops_inference"]["reference_partitions"] is None


def test_rows_per_partition_states_the_cadence(lake, references, tmp_path):
    settings = validation.InferenceSettings(rows_per_partition=(40, 400))
    suite = validation.infer_suite(references["reference_year_file"], settings)
    row_count = by_type(suite)[ROW_COUNT]
    assert row_count["kwargs"] == {"min_value": 40, "max_value": 400}
    assert row_count["meta"]["inferred"].startswith("given by the user: 40–400 rows per partition")
    notes = {}
    for clean in ("day", "summer_day", "week_of_days"):
        outcome, notes[clean] = validate(lake[clean], suite)
        assert outcome.success, clean
    assert notes["week_of_days"] == ["7 partitions (dt) in the validated data x 40–400 rows each = 280–2,800 rows"]
    truncated = tmp_path / "dt=2026-01-03" / "part-00000.parquet"
    truncated.parent.mkdir()
    read_dataset(lake["day"]).drop(columns="dt").head(10).to_parquet(truncated, index=False)
    outcome, _ = validate(str(truncated.parent), suite)
    assert failures(outcome) == {(None, ROW_COUNT)}

    assert validation.InferenceSettings(rows_per_partition=[500, None]).rows_per_partition == (500, None)
    with pytest.raises(ConfigurationError, match=r"rows_per_partition=\(10, 5\)"):
        validation.InferenceSettings(rows_per_partition=(10, 5))


# -- what is never pinned, and every bound's origin ------------------------------------------------------


def test_time_and_partition_columns_are_never_pinned(suites):
    for name, suite in suites.items():
        timestamp = by_type(suite, "event_timestamp")
        assert set(timestamp) == {
            "expect_column_to_exist", "expect_column_values_to_be_of_type", "expect_column_values_to_not_be_null"
        }, name  # fmt: skip
        assert timestamp["expect_column_values_to_be_of_type"]["kwargs"]["type_"] == "Timestamp"
        columns = {e["kwargs"].get("column") for e in suite.expectations}
        assert not columns & {"dt", "week", "month"}, name
        not_pinned = suite.meta["mlops_inference"]["not_pinned"]
        assert "event_timestamp" in not_pinned and "order_id" in not_pinned
    assert "partition column" in suites["reference_day"].meta["mlops_inference"]["not_pinned"]["dt"]


def test_every_inferred_expectation_says_where_it_came_from(suites):
    for suite in suites.values():
        for expectation in suite.expectations:
            assert expectation["meta"]["inferred"], expectation
        ranges = [e for e in suite.expectations if e["type"] == "expect_column_values_to_be_between"]
        assert {e["kwargs"]["column"] for e in ranges} == {"units", "price"}
        assert all("reference range [" in e["meta"]["inferred"] for e in ranges)
        sets = by_type(suite, "channel")["expect_column_values_to_be_in_set"]
        assert (
            sets["kwargs"]["value_set"] == ["app", "store", "web"] and "distinct values in" in sets["meta"]["inferred"]
        )
        reloaded = validation.parse_suite(json.loads(suite.to_json()), source="saved")  # GX accepts the meta
        assert reloaded.expectations == suite.expectations


# -- corruptions are still caught, with the column named -------------------------------------------------


def _nulls(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(price=frame["price"].mask(np.arange(len(frame)) % 20 == 3))


def _unseen(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(channel=frame["channel"].mask(np.arange(len(frame)) % 50 == 1, "tiktok"))


def _out_of_range(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(price=frame["price"].mask(np.arange(len(frame)) % 100 == 5, frame["price"] * 1000))


CORRUPTIONS = {
    "nulls": (_nulls, "price", "expect_column_values_to_not_be_null"),
    "unseen_category": (_unseen, "channel", "expect_column_values_to_be_in_set"),
    "out_of_range": (_out_of_range, "price", "expect_column_values_to_be_between"),
    "truncated": (lambda frame: frame.head(2), None, ROW_COUNT),
    "empty": (lambda frame: frame.head(0), None, ROW_COUNT),
}


@pytest.mark.parametrize(("layout", "corruption"), [
    ("day", "nulls"), ("week", "unseen_category"), ("month", "out_of_range"),  # value checks: any layout
    ("day", "truncated"), ("week", "truncated"), ("month", "truncated"), ("day", "empty"),  # row bounds: each
])  # fmt: skip
def test_corrupted_partitions_fail_naming_the_column(lake, suites, tmp_path, layout, corruption):
    damage, column, expectation = CORRUPTIONS[corruption]
    source = Path(lake[layout])
    frame = read_dataset(str(source)).drop(columns=LAYOUTS[layout][0])
    target = tmp_path / source.name / "part-00000.parquet"  # the same key=value folder, damaged
    target.parent.mkdir()
    damage(frame).to_parquet(target, index=False)
    outcome, _ = validate(str(target.parent), suites[f"reference_{layout}"])
    assert not outcome.success
    assert (column, expectation) in failures(outcome), outcome.summary()
    assert f"{column or '(table)'}: {expectation}(" in outcome.summary()


# -- the cases on the project's sample data ------------------------------------------------------


@pytest.fixture(scope="module")
def churn(tmp_path_factory) -> Path:
    """``include/sample_data.py`` partitions: 8 clean days (time-zone-aware timestamps) and one per corruption."""
    root = tmp_path_factory.mktemp("churn")
    write_partitions(root / "events", start="2026-01-01", days=8, rows_per_day=500)
    for offset, kind in enumerate(SAMPLE_CORRUPTIONS):
        start = date(2026, 2, 1) + timedelta(days=offset)
        write_partitions(root / kind, start=start, days=1, rows_per_day=500, corruption=kind)
    return root


def test_suite_from_one_day_accepts_the_next_day(churn):
    events_root = churn / "events"
    suite = validation.infer_suite(read_dataset(str(events_root / "dt=2026-01-01")), reference_uri="dt=2026-01-01")
    assert not [e for e in suite.expectations if e["kwargs"].get("column") == "dt"]  # no ["2026-01-01"] value set
    assert set(by_type(suite, "event_timestamp")) == {
        "expect_column_to_exist", "expect_column_values_to_be_of_type", "expect_column_values_to_not_be_null"
    }  # fmt: skip
    assert "from 1 reference partitions (dt) of 500–500 rows" in by_type(suite)[ROW_COUNT]["meta"]["inferred"]
    for day in ("2026-01-02", "2026-01-08"):
        outcome, _ = validate(str(events_root / f"dt={day}"), suite)
        assert outcome.success, outcome.summary()
    outcome, [note] = validate(str(events_root), suite)  # the whole folder: 8 days of 500 rows
    assert outcome.success and note.startswith("8 partitions (dt)"), outcome.summary()
    nulls, _ = validate(str(churn / "nulls" / "dt=2026-02-03"), suite)
    assert failures(nulls) == {("monthly_charges", "expect_column_values_to_not_be_null")}, nulls.summary()


def test_dates_kept_as_text_are_not_pinned(tmp_path):
    day = churn_frame(400, seed=3, day="2026-01-01").assign(dt="2026-01-01", month="2026-01", week="2026-W01")
    day.to_parquet(tmp_path / "day.parquet", index=False)  # the key columns are in the file, not in folder names
    suite = validation.infer_suite(read_dataset(str(tmp_path / "day.parquet")))
    for column in ("dt", "month", "week"):
        assert "expect_column_values_to_be_in_set" not in by_type(suite, column), column
        assert "dates as text" in suite.meta["mlops_inference"]["not_pinned"][column]
    assert by_type(suite, "plan")["expect_column_values_to_be_in_set"]["kwargs"]["value_set"] == [
        "basic",
        "plus",
        "pro",
    ]
    next_day = churn_frame(400, seed=4, day="2026-01-02").assign(dt="2026-01-02", month="2026-01", week="2026-W01")
    assert validation.run_validation(next_day, suite).outcome.success


SHIPPED_SUITE_CATCHES = {
    "missing_column": ("monthly_charges", "expect_column_to_exist"),
    "wrong_dtype": ("tenure_months", "expect_column_values_to_be_in_type_list"),
    "nulls": ("monthly_charges", "expect_column_values_to_not_be_null"),
    "out_of_range": ("tenure_months", "expect_column_values_to_be_between"),
    "unseen_category": ("plan", "expect_column_values_to_be_in_set"),
    "empty": (None, ROW_COUNT),
}


def test_shipped_suite_passes_the_sample_data_and_catches_its_corruptions(churn):
    suite = validation.load_suite(str(SAMPLE_SUITE))
    assert set(SHIPPED_SUITE_CATCHES) == set(SAMPLE_CORRUPTIONS)
    for uri in (churn / "events" / "dt=2026-01-01", churn / "events"):  # a day, and eight days at once
        frame = read_dataset(str(uri))
        assert isinstance(frame["event_timestamp"].dtype, pd.DatetimeTZDtype)  # what sample_data.py writes
        outcome, _ = validate(str(uri), suite)
        assert outcome.success and outcome.evaluated == 24, outcome.summary()
    for kind, (column, expectation) in SHIPPED_SUITE_CATCHES.items():
        outcome, _ = validate(str(churn / kind), suite)
        assert not outcome.success and (column, expectation) in failures(outcome), (kind, outcome.summary())


# -- the operator: inferred from a month of days, validating a week of days ------------------------------


class _TaskInstance:
    dag_id, run_id, task_id, map_index, try_number = "partitions", "manual__2026-01-12", "validate", -1, 1

    def __init__(self) -> None:
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcom[key] = value


def test_operator_scales_inferred_bounds_to_the_partitions_it_validates(lake, tmp_path):
    from mlops_provider.operators.validation import ValidateDataOperator

    january = ",".join(f"{lake['reference_day']}/dt={day}" for day in days("2025-01-01", 31))  # a list of URIs
    operator = ValidateDataOperator(
        task_id="validate", dataset_uri=lake["week_of_days"], infer_from=january, reports_uri=str(tmp_path)
    )
    ti = _TaskInstance()
    result = operator.execute({"ti": ti})  # type: ignore[arg-type]
    assert result["success"] and result["rows"] == len(read_dataset(lake["week_of_days"]))
    assert ti.xcom["validation_result"] == result
    saved = json.loads(Path(result["suite_uri"]).read_text())
    [row_count] = [e for e in saved["expectations"] if e["type"] == ROW_COUNT]
    per_day = row_count["meta"]["mlops_rows_per_partition"]
    assert per_day["partition_columns"] == ["dt"] and per_day["source"] == "reference"
    assert row_count["kwargs"] == {"min_value": 7 * per_day["min_value"], "max_value": 7 * per_day["max_value"]}
    assert row_count["meta"]["applied"].startswith("7 partitions (dt)")
    assert saved["meta"]["mlops_inference"]["reference_partitions"]["count"] == 31
