"""Seeded tables for training tests.

Classification uses the churn table from ``include/sample_data.py`` (``churn_frame``: customer_id,
tenure_months, monthly_charges, support_calls, plan, contract, event_timestamp, churned). Regression uses
``delivery_frame`` below: how long a delivery takes, which depends on its features plus noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DELIVERY_TARGET = "delivery_minutes"
DELIVERY_FEATURES = ["distance_km", "items", "zone", "rush_hour"]


def delivery_frame(rows: int = 2000, seed: int = 0, *, day: str = "2026-01-01") -> pd.DataFrame:
    """Deliveries of one day: order_id, distance_km (some missing), items, zone, rush_hour, event_timestamp
    and the target delivery_minutes; the same ``seed`` gives the same rows."""
    rng = np.random.default_rng(seed)
    distance = rng.gamma(2.0, 2.5, rows).round(2)
    items = rng.integers(1, 12, rows)
    zone = rng.choice(["centre", "north", "south"], rows, p=[0.5, 0.3, 0.2])
    rush_hour = rng.random(rows) < 0.3
    minutes = (
        12
        + 3.1 * distance
        + 0.8 * items
        + np.select([zone == "north", zone == "south"], [4.0, 7.5], 0.0)
        + 9.0 * rush_hour
        + rng.normal(0, 3, rows)
    )
    frame = pd.DataFrame(
        {
            "order_id": np.arange(rows),
            "distance_km": distance,
            "items": items,
            "zone": zone,
            "rush_hour": rush_hour,
            "event_timestamp": pd.Timestamp(day, tz="UTC")
            + pd.to_timedelta(np.sort(rng.integers(0, 86_400, rows)), unit="s"),
            DELIVERY_TARGET: minutes.round(1),
        }
    )
    frame.loc[rng.random(rows) < 0.02, "distance_km"] = np.nan  # the imputer has work to do
    return frame


def numeric_logistic_pipeline(c: float = 1.0):
    """A pipeline factory for ``TrainModelOperator(estimator="support.training_data:numeric_logistic_pipeline")``:
    scaling and a logistic regression, no imputation (numeric features without missing values only)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()), ("logistic", LogisticRegression(C=c))])
