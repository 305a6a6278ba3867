"""Test-only DAG: apply a feature repository, materialise the data interval in mapped slices, wait for
freshness, build a point-in-time training set; a second sensor waits for a future that never comes."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param
from airflow.timetables.interval import CronDataIntervalTimetable

from mlops_provider.operators.features import (
    FeastApplyOperator,
    GetHistoricalFeaturesOperator,
    MaterializeFeaturesOperator,
    slice_data_interval,
)
from mlops_provider.sensors.features import FeatureFreshnessSensor

with DAG(
    "mlops_test_features",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),  # runs with a one-day data interval
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "repo_path": Param("", type="string"),
        "entity_uri": Param("", type="string"),
        "output_uri": Param("", type="string"),
    },
    tags=["test"],
) as dag:
    apply = FeastApplyOperator(task_id="apply", repo_path="{{ params.repo_path }}")
    materialize = MaterializeFeaturesOperator.partial(
        task_id="materialize", repo_path="{{ params.repo_path }}", max_active_tis_per_dagrun=2
    ).expand_kwargs(slice_data_interval(slices=2))
    fresh = FeatureFreshnessSensor(
        task_id="wait_until_fresh",
        repo_path="{{ params.repo_path }}",
        feature_views=["customer_profile", "customer_activity"],
        poke_interval=1,
        timeout=60,
    )
    training_set = GetHistoricalFeaturesOperator(
        task_id="training_set",
        repo_path="{{ params.repo_path }}",
        entity_uri="{{ params.entity_uri }}",
        features="churn_model",
        output_uri="{{ params.output_uri }}",
    )
    never_fresh = FeatureFreshnessSensor(
        task_id="wait_for_the_future",
        repo_path="{{ params.repo_path }}",
        feature_views=["customer_profile"],
        fresh_until="{{ (data_interval_end + macros.timedelta(days=30)).isoformat() }}",
        poke_interval=1,
        timeout=3,
    )
    apply >> materialize >> fresh >> training_set
    materialize >> never_fresh
