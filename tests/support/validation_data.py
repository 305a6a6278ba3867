"""Seeded customer-churn partitions for validation tests, and the corruptions each suite must catch.

Every partition is one day of events with columns customer_id, tenure_months, monthly_charges, plan
(basic/plus/pro), event_timestamp, churned (0/1), i.e. the table ``include/expectations/customer_churn.json``
describes. ``CORRUPTIONS`` maps a corruption name to (function, column, expectation type that must catch it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

PLANS = ("basic", "plus", "pro")
PLAN_SHARES = (0.5, 0.3, 0.2)
PLAN_CHARGES = {"basic": (20.0, 45.0), "plus": (45.0, 80.0), "pro": (80.0, 120.0)}


def churn_partition(rows: int = 2000, seed: int = 0, day: str = "2026-01-01") -> pd.DataFrame:
    """One day of customer events; the same distribution for every seed."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(PLANS, rows, p=PLAN_SHARES)
    low = np.array([PLAN_CHARGES[p][0] for p in plan])
    high = np.array([PLAN_CHARGES[p][1] for p in plan])
    tenure = rng.integers(0, 73, rows)
    charges = (low + (high - low) * rng.random(rows)).round(2)
    churn_probability = 1 / (1 + np.exp(1.0 + 0.04 * tenure - 0.02 * (charges - 60)))
    return pd.DataFrame(
        {
            "customer_id": np.int64(seed) * 1_000_000 + rng.permutation(rows).astype("int64"),
            "tenure_months": tenure.astype("int64"),
            "monthly_charges": charges,
            "plan": plan.astype(object),
            "event_timestamp": pd.Timestamp(day) + pd.to_timedelta(rng.integers(0, 86_400, rows), unit="s"),
            "churned": (rng.random(rows) < churn_probability).astype("int64"),
        }
    )


def _rows(frame: pd.DataFrame, share: float, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.choice(len(frame), max(1, int(len(frame) * share)), replace=False)


def drop_column(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["monthly_charges"])


def tenure_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(tenure_months=frame["tenure_months"].map(lambda months: f"{months} months"))


def null_plans(frame: pd.DataFrame) -> pd.DataFrame:
    corrupted = frame.copy()
    corrupted.loc[_rows(frame, 0.03), "plan"] = None
    return corrupted


def charges_out_of_range(frame: pd.DataFrame) -> pd.DataFrame:
    corrupted = frame.copy()
    rows = _rows(frame, 0.01)
    corrupted.loc[rows, "monthly_charges"] = np.where(np.arange(len(rows)) % 2 == 0, -15.0, 9_999.0)
    return corrupted


def unseen_plan(frame: pd.DataFrame) -> pd.DataFrame:
    corrupted = frame.copy()
    corrupted.loc[_rows(frame, 0.02), "plan"] = "enterprise"
    return corrupted


def empty_partition(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[0:0]


CORRUPTIONS: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], str | None, str]] = {
    "missing_column": (drop_column, "monthly_charges", "expect_column_to_exist"),
    "wrong_dtype": (tenure_as_text, "tenure_months", "expect_column_values_to_be_in_type_list"),
    "nulls": (null_plans, "plan", "expect_column_values_to_not_be_null"),
    "out_of_range": (charges_out_of_range, "monthly_charges", "expect_column_values_to_be_between"),
    "unseen_category": (unseen_plan, "plan", "expect_column_values_to_be_in_set"),
    "empty_partition": (empty_partition, None, "expect_table_row_count_to_be_between"),
}
