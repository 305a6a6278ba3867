"""FeastHook on a small feature repository built in tmp_path."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest

from mlops_provider.core.errors import ConfigurationError
from mlops_provider.hooks.feast import FeastHook

DEFINITIONS = """
from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64

customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
activity_source = FileSource(path="data/activity.parquet", timestamp_field="event_timestamp")
customer_activity = FeatureView(
    name="customer_activity",
    entities=[customer],
    ttl=timedelta(days=30),
    schema=[Field(name="sessions", dtype=Int64), Field(name="spend", dtype=Float64)],
    source=activity_source,
)
"""


@pytest.fixture
def feature_repo(tmp_path):
    repo = tmp_path / "feature_repo"
    (repo / "data").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(
        textwrap.dedent(
            """\
            project: hook_test
            registry: data/registry.db
            provider: local
            online_store:
              type: sqlite
              path: data/online.db
            offline_store:
              type: file
            entity_key_serialization_version: 3
            """
        )
    )
    (repo / "definitions.py").write_text(DEFINITIONS)
    rng = np.random.default_rng(3)
    pd.DataFrame(
        {
            "customer_id": np.arange(20),
            "sessions": rng.integers(0, 30, 20),
            "spend": rng.normal(50, 10, 20),
            "event_timestamp": pd.Timestamp("2026-01-01", tz="UTC"),
        }
    ).to_parquet(repo / "data" / "activity.parquet", index=False)
    return repo


def apply_definitions(store, repo):
    namespace: dict = {}
    exec(compile((repo / "definitions.py").read_text(), "definitions.py", "exec"), namespace)  # noqa: S102
    store.apply([namespace["customer"], namespace["customer_activity"]])


def test_connection_lists_feature_views(feature_repo, connection_env):
    connection_env("feast_test", conn_type="feast", extra={"repo_path": str(feature_repo)})
    hook = FeastHook(feast_conn_id="feast_test")
    ok, message = hook.test_connection()
    assert ok and "none registered yet" in message

    apply_definitions(hook.get_conn(), feature_repo)
    ok, message = FeastHook(feast_conn_id="feast_test").test_connection()
    assert ok and "customer_activity" in message

    store = FeastHook(repo_path=str(feature_repo)).get_conn()
    store.materialize(pd.Timestamp("2025-12-31", tz="UTC"), pd.Timestamp("2026-01-02", tz="UTC"))
    online = store.get_online_features(
        features=["customer_activity:sessions"], entity_rows=[{"customer_id": 4}]
    ).to_dict()
    source = pd.read_parquet(feature_repo / "data" / "activity.parquet")
    assert online["sessions"] == [int(source.loc[4, "sessions"])]


def test_repo_path_without_feature_store_yaml(tmp_path):
    with pytest.raises(ConfigurationError, match="has no feature_store.yaml"):
        FeastHook(repo_path=str(tmp_path)).get_conn()
    ok, message = FeastHook(repo_path=str(tmp_path)).test_connection()
    assert not ok and "feature_store.yaml" in message


def test_connection_without_repo_path(connection_env):
    connection_env("feast_empty", conn_type="feast", extra={})
    with pytest.raises(ConfigurationError, match="has no extra.repo_path"):
        FeastHook(feast_conn_id="feast_empty").get_conn()


def test_missing_connection():
    with pytest.raises(ConfigurationError, match="'feast_nope' is not defined"):
        FeastHook(feast_conn_id="feast_nope").get_conn()
