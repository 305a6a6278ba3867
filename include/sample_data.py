"""Seeded sample data for the reference DAGs, the demo and the tests: a customer-churn table, and a table of
food deliveries with a numeric target (for regression models).

Columns: ``customer_id`` (int), ``tenure_months`` (int, 0-71), ``monthly_charges`` (float, dollars),
``support_calls`` (int, Poisson), ``plan`` (basic / plus / pro), ``contract`` (monthly / yearly),
``event_timestamp`` (UTC), and the label ``churned`` (0/1), which depends on the features.

Switches:

* ``drift=True``: customers pay more (``monthly_charges`` +15 on average) and move to the ``pro`` plan;
* ``concept_drift=True``: the inputs keep their distribution but churn follows another rule (long tenure and
  yearly contracts no longer protect: they now go with leaving): a model trained before it loses accuracy with
  no input drift at all;
* ``corruption=<kind>``: one of ``CORRUPTIONS`` (a missing column, nulls, out-of-range values, an unseen
  category, a wrong dtype, an empty partition), for showing that validation blocks bad data.

Labels arrive late in production: ``write_labels`` writes the label of each row ``delay_days`` after the row
was observed, as ``<labels>/dt=<day the labels arrived>/labels.parquet`` with ``customer_id``, ``dt`` (the day
of the predicted partition: with ``customer_id`` the key), ``churned`` and ``label_timestamp``.

Deliveries (``delivery_frame``): ``order_id`` (int), ``distance_km`` (float), ``items`` (int, 1-8), ``vehicle``
(bike / scooter / car), ``weather`` (clear / rain / snow), ``hour`` (int, 10-22, the hour the order was placed),
``event_timestamp`` (UTC), and two labels: ``delivery_minutes`` (float, the regression target: longer with distance,
items, rush hours, rain and snow, shorter by car) and ``late`` (0/1: delivered more than 40 minutes after the order).
A model of one label must not take the other as a feature: name its ``feature_columns``.

As a script it writes daily parquet partitions ``<out>/dt=YYYY-MM-DD/part-00000.parquet`` (``--dataset deliveries``
for the delivery table):

    python include/sample_data.py --out .mlops/data/churn --start 2026-01-01 --days 7
    python include/sample_data.py --out .mlops/data/churn --start 2026-01-08 --days 1 --drift
    python include/sample_data.py --out .mlops/data/churn --start 2026-01-09 --days 1 --corruption nulls
    python include/sample_data.py --dataset deliveries --out .mlops/data/deliveries --start 2026-01-01 --days 14
"""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "plan", "contract"]
TARGET = "churned"
TIMESTAMP = "event_timestamp"
ENTITY = "customer_id"
PLANS = ["basic", "plus", "pro"]
CORRUPTIONS = ("missing_column", "wrong_dtype", "nulls", "out_of_range", "unseen_category", "empty")
DATASETS = ("churn", "deliveries")
DELIVERY_FEATURES = ["distance_km", "items", "vehicle", "weather", "hour"]
DELIVERY_TARGET = "delivery_minutes"  # regression
DELIVERY_LATE = "late"  # classification: delivery_minutes > LATE_AFTER_MINUTES
DELIVERY_ENTITY = "order_id"
LATE_AFTER_MINUTES = 40
VEHICLES = ["bike", "scooter", "car"]


def churn_frame(
    rows: int = 2000,
    seed: int = 0,
    *,
    drift: bool = False,
    day: date | str = "2026-01-01",
    first_customer_id: int = 0,
    concept_drift: bool = False,
) -> pd.DataFrame:
    """One day of customer activity; the same ``seed`` gives the same rows."""
    rng = np.random.default_rng(seed)
    plan_shares = [0.3, 0.3, 0.4] if drift else [0.5, 0.3, 0.2]
    plan = rng.choice(PLANS, rows, p=plan_shares)
    contract = rng.choice(["monthly", "yearly"], rows, p=[0.6, 0.4])
    tenure = rng.integers(0, 72, rows)
    charges = (rng.normal(85 if drift else 70, 20, rows) + (plan == "pro") * 15).clip(5, None).round(2)
    calls = rng.poisson(1.5, rows)
    start = pd.Timestamp(str(day), tz="UTC")
    if concept_drift:  # the tenure and contract effects turn around: long-standing yearly customers now leave
        logit = (
            -0.2
            - 0.05 * (71 - tenure)
            + 0.03 * (charges - 70)
            + 0.45 * calls
            + 0.8 * (contract == "yearly")
            - 0.4 * (plan == "pro")
        )
    else:
        logit = (
            -1.2
            - 0.05 * tenure
            + 0.03 * (charges - 70)
            + 0.45 * calls
            + 0.8 * (contract == "monthly")
            - 0.4 * (plan == "pro")
        )
    return pd.DataFrame(
        {
            ENTITY: np.arange(first_customer_id, first_customer_id + rows),
            "tenure_months": tenure,
            "monthly_charges": charges,
            "support_calls": calls,
            "plan": plan,
            "contract": contract,
            TIMESTAMP: start + pd.to_timedelta(np.sort(rng.integers(0, 86_400, rows)), unit="s"),
            TARGET: (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int),
        }
    )


def delivery_frame(
    rows: int = 2000, seed: int = 0, *, day: date | str = "2026-01-01", first_order_id: int = 0
) -> pd.DataFrame:
    """One day of food deliveries; the same ``seed`` gives the same rows."""
    rng = np.random.default_rng(seed)
    distance = (rng.gamma(2.0, 2.0, rows) + 0.3).clip(None, 20).round(2)
    items = rng.integers(1, 9, rows)
    vehicle = rng.choice(VEHICLES, rows, p=[0.4, 0.35, 0.25])
    weather = rng.choice(["clear", "rain", "snow"], rows, p=[0.7, 0.22, 0.08])
    hour = rng.integers(10, 23, rows)
    pace = np.select([vehicle == "bike", vehicle == "scooter"], [4.0, 3.0], 2.6)  # minutes per km
    rush = np.isin(hour, [12, 13, 19, 20])
    delay = np.select([weather == "rain", weather == "snow"], [5.0, 12.0], 0.0) + 7 * rush + rng.normal(0, 4, rows)
    minutes = (8 + pace * distance + 1.5 * items + delay).clip(5, None).round(1)
    start = pd.Timestamp(str(day), tz="UTC")
    stamps = start + pd.to_timedelta(hour * 3600 + rng.integers(0, 3600, rows), unit="s")
    order = np.argsort(stamps.to_numpy(), kind="stable")
    return pd.DataFrame(
        {
            DELIVERY_ENTITY: np.arange(first_order_id, first_order_id + rows),
            "distance_km": distance[order],
            "items": items[order],
            "vehicle": vehicle[order],
            "weather": weather[order],
            "hour": hour[order],
            TIMESTAMP: stamps[order],
            DELIVERY_TARGET: minutes[order],
            DELIVERY_LATE: (minutes[order] > LATE_AFTER_MINUTES).astype(int),
        }
    )


def corrupt(frame: pd.DataFrame, kind: str, seed: int = 0) -> pd.DataFrame:
    """The same rows with one kind of damage a validation gate must catch."""
    rng = np.random.default_rng(seed)
    damaged = frame.copy()
    rows = rng.choice(len(damaged), size=max(1, len(damaged) // 20), replace=False)
    if kind == "missing_column":
        return damaged.drop(columns=["monthly_charges"])
    if kind == "wrong_dtype":
        damaged["tenure_months"] = damaged["tenure_months"].astype(str) + " months"
    elif kind == "nulls":
        damaged.loc[damaged.index[rows], "monthly_charges"] = np.nan
    elif kind == "out_of_range":
        damaged.loc[damaged.index[rows], "tenure_months"] = -5
    elif kind == "unseen_category":
        damaged.loc[damaged.index[rows], "plan"] = "enterprise"
    elif kind == "empty":
        return damaged.head(0)
    else:
        raise ValueError(f"Unknown corruption {kind!r}; use one of {CORRUPTIONS}.")
    return damaged


def write_partitions(
    out: str | Path,
    *,
    start: date | str = "2026-01-01",
    days: int = 7,
    rows_per_day: int = 2000,
    drift: bool = False,
    corruption: str | None = None,
    seed: int = 0,
    concept_drift: bool = False,
) -> list[Path]:
    """Write ``days`` daily partitions under ``out``; each day's rows depend only on the seed and the date."""
    first = date.fromisoformat(str(start))
    written = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        day_seed = seed * 100_003 + day.toordinal()
        frame = churn_frame(
            rows_per_day, day_seed, drift=drift, day=day, first_customer_id=offset * rows_per_day,
            concept_drift=concept_drift,
        )  # fmt: skip
        if corruption:
            frame = corrupt(frame, corruption, seed=day_seed)
        written.append(_write_day(out, day, frame))
    return written


def _write_day(out: str | Path, day: date, frame: pd.DataFrame) -> Path:
    """``frame`` as the day's partition ``<out>/dt=<day>/part-00000.parquet``."""
    folder = Path(out) / f"dt={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "part-00000.parquet"
    frame.to_parquet(target, index=False)
    return target


def write_delivery_partitions(
    out: str | Path, *, start: date | str = "2026-01-01", days: int = 7, rows_per_day: int = 2000, seed: int = 0
) -> list[Path]:
    """Write ``days`` daily partitions of deliveries under ``out``, laid out as ``write_partitions`` lays out churn."""
    first = date.fromisoformat(str(start))
    written = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        frame = delivery_frame(
            rows_per_day, seed * 100_003 + day.toordinal(), day=day, first_order_id=offset * rows_per_day
        )
        written.append(_write_day(out, day, frame))
    return written


def write_labels(partitions: list[Path], labels: str | Path, *, delay_days: int = 3) -> list[Path]:
    """The labels of the rows in ``partitions`` (as ``write_partitions`` returns them), each known
    ``delay_days`` after its row's ``event_timestamp``; one file per day the labels arrive."""
    frames = []
    for path in partitions:
        rows = pd.read_parquet(path, columns=[ENTITY, TIMESTAMP, TARGET])
        rows["dt"] = path.parent.name.split("=", 1)[1]
        rows["label_timestamp"] = rows.pop(TIMESTAMP) + pd.Timedelta(days=delay_days)
        frames.append(rows)
    every = pd.concat(frames, ignore_index=True)
    written = []
    for day, group in every.groupby(every["label_timestamp"].dt.strftime("%Y-%m-%d"), sort=True):
        folder = Path(labels) / f"dt={day}"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "labels.parquet"
        if target.exists():  # labels of several prediction days may arrive on one day
            group = pd.concat([pd.read_parquet(target), group]).drop_duplicates([ENTITY, "dt"], keep="last")
        group[[ENTITY, "dt", TARGET, "label_timestamp"]].to_parquet(target, index=False)
        written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder that receives dt=YYYY-MM-DD partitions")
    parser.add_argument("--dataset", choices=DATASETS, default="churn", help="which table (default: churn)")
    parser.add_argument("--start", default="2026-01-01", help="first day (YYYY-MM-DD)")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--rows-per-day", type=int, default=2000)
    parser.add_argument("--drift", action="store_true", help="inject drift (higher charges, more pro plans)")
    parser.add_argument("--corruption", choices=CORRUPTIONS, help="inject one kind of bad data")
    parser.add_argument("--concept-drift", action="store_true", help="same inputs, another churn rule")
    parser.add_argument("--labels-out", help="also write the rows' labels here, as they arrive late")
    parser.add_argument("--label-delay-days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.dataset == "deliveries":
        churn_only = {"--drift": args.drift, "--corruption": args.corruption, "--concept-drift": args.concept_drift,
                      "--labels-out": args.labels_out}  # fmt: skip
        given = [flag for flag, value in churn_only.items() if value]
        if given:
            parser.error(f"{', '.join(given)}: only for the churn table; leave it out with --dataset deliveries")
        for path in write_delivery_partitions(
            args.out, start=args.start, days=args.days, rows_per_day=args.rows_per_day, seed=args.seed
        ):
            print(path)
        return
    written = write_partitions(
        args.out,
        start=args.start,
        days=args.days,
        rows_per_day=args.rows_per_day,
        drift=args.drift,
        corruption=args.corruption,
        seed=args.seed,
        concept_drift=args.concept_drift,
    )
    if args.labels_out:
        written += write_labels(written, args.labels_out, delay_days=args.label_delay_days)
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
