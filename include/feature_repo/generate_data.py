"""Seeded data for the sample feature repository: daily customer snapshots and churn labels.

Writes three parquet files under ``data/`` (beside this script unless ``--out`` says otherwise):

* ``customer_profile.parquet``: one row per customer and day: ``tenure_months``, ``monthly_charges``,
  ``support_calls``, ``plan``, ``contract``, ``event_timestamp`` (a second within that day, UTC). The first
  day's profile comes from ``include/sample_data.py::churn_frame`` (the reference DAGs' sample data); later
  days evolve from it (tenure grows, charges drift, a few customers change plan or contract).
* ``customer_activity.parquet``: one row per customer and day: ``sessions_7d``, ``sessions_30d``,
  ``minutes_7d``, ``data_gb_7d``, ``days_since_last_login``, ``event_timestamp``.
* ``churn_labels.parquet``: the entity frame for training sets: ``customer_id``, ``event_timestamp`` (when
  the label was observed, after the first day) and the label ``churned``.

The same ``--seed`` and sizes give the same files. Run:

    python include/feature_repo/generate_data.py                       # 2,000 customers x 7 days
    python include/feature_repo/generate_data.py --customers 200000 --days 2 --out /tmp/repo/data
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # include/: sample_data, the shared generator
from sample_data import churn_frame  # noqa: E402

ENTITY = "customer_id"
TIMESTAMP = "event_timestamp"
PROFILE_FILE = "customer_profile.parquet"
ACTIVITY_FILE = "customer_activity.parquet"
LABELS_FILE = "churn_labels.parquet"
PROFILE_FEATURES = ["tenure_months", "monthly_charges", "support_calls", "plan", "contract"]
ACTIVITY_FEATURES = ["sessions_7d", "sessions_30d", "minutes_7d", "data_gb_7d", "days_since_last_login"]
SECONDS_PER_DAY = 86_400


def _day_timestamps(rng: np.random.Generator, day: date, customers: int) -> pd.Series:
    """One instant within ``day`` per customer (UTC, whole seconds)."""
    offsets = rng.integers(0, SECONDS_PER_DAY, customers)
    return pd.Timestamp(day.isoformat(), tz="UTC") + pd.to_timedelta(offsets, unit="s")


def profile_snapshots(customers: int, days: int, start: date, seed: int) -> pd.DataFrame:
    """Daily profile snapshots: day 0 is the sample churn data, later days evolve from it."""
    base = churn_frame(customers, seed=seed, day=start)
    rng = np.random.default_rng([seed, 1])
    charges = base["monthly_charges"].to_numpy(dtype=float).copy()
    plan = base["plan"].to_numpy(dtype=object).copy()
    contract = base["contract"].to_numpy(dtype=object).copy()
    plans = np.array(sorted(set(plan)), dtype=object)
    frames = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        if offset:
            charges = (charges + rng.normal(0, 1.5, customers)).clip(5, None)
            switch_plan = rng.random(customers) < 0.03
            plan[switch_plan] = rng.choice(plans, int(switch_plan.sum()))
            switch_contract = rng.random(customers) < 0.01
            contract[switch_contract] = np.where(contract[switch_contract] == "monthly", "yearly", "monthly")
        frames.append(
            pd.DataFrame(
                {
                    ENTITY: base[ENTITY].to_numpy(),
                    "tenure_months": base["tenure_months"].to_numpy() + offset // 30,
                    "monthly_charges": charges.round(2),
                    "support_calls": base["support_calls"].to_numpy() if offset == 0 else rng.poisson(1.5, customers),
                    "plan": plan.copy(),
                    "contract": contract.copy(),
                    TIMESTAMP: base[TIMESTAMP].to_numpy() if offset == 0 else _day_timestamps(rng, day, customers),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def activity_snapshots(customers: int, days: int, start: date, seed: int) -> pd.DataFrame:
    """Daily usage snapshots; each customer keeps a personal usage level."""
    rng = np.random.default_rng([seed, 2])
    level = rng.gamma(2.0, 3.0, customers)  # sessions a week, on average
    frames = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        sessions_7d = rng.poisson(level)
        frames.append(
            pd.DataFrame(
                {
                    ENTITY: np.arange(customers),
                    "sessions_7d": sessions_7d,
                    "sessions_30d": sessions_7d + rng.poisson(level * 3.3),
                    "minutes_7d": (sessions_7d * rng.gamma(2.0, 6.0, customers)).round(1),
                    "data_gb_7d": (sessions_7d * rng.gamma(1.5, 0.2, customers)).round(3),
                    "days_since_last_login": np.where(
                        sessions_7d > 0, rng.integers(0, 3, customers), rng.integers(7, 30, customers)
                    ),
                    TIMESTAMP: _day_timestamps(rng, day, customers),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def churn_labels(customers: int, days: int, start: date, seed: int) -> pd.DataFrame:
    """One label per customer, observed at a random instant after the first day."""
    base = churn_frame(customers, seed=seed, day=start)
    rng = np.random.default_rng([seed, 3])
    first = pd.Timestamp(start.isoformat(), tz="UTC") + pd.Timedelta(days=1)
    span = max(days - 1, 1) * SECONDS_PER_DAY
    return pd.DataFrame(
        {
            ENTITY: base[ENTITY].to_numpy(),
            TIMESTAMP: first + pd.to_timedelta(rng.integers(0, span, customers), unit="s"),
            "churned": base["churned"].to_numpy(),
        }
    )


def generate(
    data_dir: str | Path | None = None,
    *,
    customers: int = 2000,
    days: int = 7,
    start: date | str = "2026-01-01",
    seed: int = 0,
) -> dict[str, Path]:
    """Write the three files under ``data_dir`` (default: ``data/`` beside this script); returns their paths."""
    if customers < 1 or days < 1:
        raise ValueError(f"customers={customers} and days={days} must both be at least 1.")
    first = date.fromisoformat(str(start))
    folder = Path(data_dir) if data_dir else Path(__file__).resolve().parent / "data"
    folder.mkdir(parents=True, exist_ok=True)
    frames = {
        PROFILE_FILE: profile_snapshots(customers, days, first, seed),
        ACTIVITY_FILE: activity_snapshots(customers, days, first, seed),
        LABELS_FILE: churn_labels(customers, days, first, seed),
    }
    written = {}
    for name, frame in frames.items():
        frame.to_parquet(folder / name, index=False)
        written[name] = folder / name
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="folder for the parquet files (default: data/ beside this script)")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--start", default="2026-01-01", help="first day (YYYY-MM-DD)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for path in generate(args.out, customers=args.customers, days=args.days, start=args.start, seed=args.seed).values():
        print(path)


if __name__ == "__main__":
    main()
