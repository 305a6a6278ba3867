"""Copies of the sample feature repository (include/feature_repo) on a chosen online store, for tests."""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_REPO = REPO_ROOT / "include" / "feature_repo"
sys.path.insert(0, str(SAMPLE_REPO))

import generate_data  # noqa: E402

DEFINITION_FILES = ("customer_features.py", ".feastignore", "generate_data.py")


def online_store_config(kind: str, *, redis_url: str | None = None, postgres_url: str | None = None) -> dict:
    """The ``online_store`` block of feature_store.yaml for sqlite, redis (redis_url) or postgres (postgres_url)."""
    if kind == "sqlite":
        return {"type": "sqlite", "path": "data/online_store.db"}
    if kind == "redis":
        url = urlsplit(redis_url)
        db = url.path.strip("/") or "0"
        return {"type": "redis", "connection_string": f"{url.hostname}:{url.port or 6379},db={db}"}
    if kind == "postgres":
        url = urlsplit(postgres_url)
        return {
            "type": "postgres",
            "host": url.hostname,
            "port": url.port or 5432,
            "database": url.path.strip("/"),
            "db_schema": "public",
            "user": url.username or "postgres",
            "password": url.password or "unused-trust-auth",
            "sslmode": "disable",
        }
    raise ValueError(f"unknown online store kind {kind!r}")


def make_feature_repo(
    root: Path,
    *,
    online_store: dict | None = None,
    project: str | None = None,
    customers: int = 40,
    days: int = 3,
    seed: int = 0,
) -> Path:
    """The sample repository's definitions and generated data under ``root/feature_repo``.

    Each copy gets its own project name unless given, so repositories that share a Redis server do not see
    each other's keys.
    """
    repo = Path(root) / "feature_repo"
    repo.mkdir(parents=True, exist_ok=True)
    for name in DEFINITION_FILES:
        shutil.copy(SAMPLE_REPO / name, repo / name)
    config = yaml.safe_load((SAMPLE_REPO / "feature_store.yaml").read_text())
    config["project"] = project or f"churn_{uuid.uuid4().hex[:10]}"
    if online_store is not None:
        config["online_store"] = online_store
    (repo / "feature_store.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    generate_data.generate(repo / "data", customers=customers, days=days, seed=seed)
    return repo


def source_frame(repo: Path, view: str):
    import pandas as pd

    return pd.read_parquet(repo / "data" / f"{view}.parquet")


def newest_values(repo: Path, view: str, feature: str, *, until=None) -> dict[int, object]:
    """Per customer, the value of the newest row (optionally among rows stamped at or before ``until``)."""
    frame = source_frame(repo, view)
    if until is not None:
        frame = frame[frame["event_timestamp"] <= until]
    newest = frame.sort_values("event_timestamp").groupby("customer_id").tail(1)
    return dict(zip(newest["customer_id"].astype(int), newest[feature], strict=False))


def online_values(store, view: str, feature: str, customer_ids) -> dict[int, object]:
    response = store.get_online_features(
        features=[f"{view}:{feature}"], entity_rows=[{"customer_id": int(i)} for i in customer_ids]
    ).to_dict()
    return dict(zip(response["customer_id"], response[feature], strict=False))
