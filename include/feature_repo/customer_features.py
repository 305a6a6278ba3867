"""Feature definitions of the churn sample: one entity, two feature views, one feature service.

The data behind them is made by ``generate_data.py`` (daily snapshots per customer, seeded). Applied with
``FeastApplyOperator`` (or ``feast apply``); materialised with ``MaterializeFeaturesOperator``.
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.INT64,
    description="A subscriber of the service.",
)

customer_profile_source = FileSource(
    name="customer_profile_source",
    path="data/customer_profile.parquet",
    timestamp_field="event_timestamp",
)

customer_activity_source = FileSource(
    name="customer_activity_source",
    path="data/customer_activity.parquet",
    timestamp_field="event_timestamp",
)

customer_profile = FeatureView(
    name="customer_profile",
    entities=[customer],
    ttl=timedelta(days=35),
    schema=[
        Field(name="tenure_months", dtype=Int64),
        Field(name="monthly_charges", dtype=Float64),
        Field(name="support_calls", dtype=Int64),
        Field(name="plan", dtype=String),
        Field(name="contract", dtype=String),
    ],
    source=customer_profile_source,
    online=True,
    description="Contract and billing state of a customer, one snapshot a day.",
)

customer_activity = FeatureView(
    name="customer_activity",
    entities=[customer],
    ttl=timedelta(days=7),
    schema=[
        Field(name="sessions_7d", dtype=Int64),
        Field(name="sessions_30d", dtype=Int64),
        Field(name="minutes_7d", dtype=Float64),
        Field(name="data_gb_7d", dtype=Float64),
        Field(name="days_since_last_login", dtype=Int64),
    ],
    source=customer_activity_source,
    online=True,
    description="Usage of the service over trailing windows, one snapshot a day.",
)

churn_model = FeatureService(
    name="churn_model",
    features=[customer_profile, customer_activity],
    description="Every feature the churn model trains and predicts on.",
)
