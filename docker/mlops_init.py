"""One-shot preparation run by the ``mlops-init`` service of docker-compose.yml, after ``airflow-init``.

1. Puts the Feast feature repository on the shared ``MLOPS_HOME`` volume at ``$MLOPS_FEAST_REPO``: the feature
   definitions from the image (``/opt/airflow/include/feature_repo``) with the production
   ``feature_store.yaml`` from ``docker/feast/`` (registry in PostgreSQL, online store in Redis). Run on every
   ``docker compose up``, so a rebuilt image brings its new definitions; the repository's ``data/`` stays.
2. With ``MLOPS_SEED_SAMPLE_DATA=true`` (the default in docker-compose.yml), and only where nothing is there yet:
   writes the sample feature data into the repository's ``data/`` and a week of sample churn partitions
   under ``$MLOPS_DATA_URI`` (through the ``aws_default`` connection for ``s3://``), so that a bare trigger
   of ``mlops_lifecycle`` works on a fresh deployment. Set it to ``false`` when the URIs hold your own data.
3. Creates the Airflow pool ``mlops_training`` that every fleet ``train`` task takes a slot of (docs/fleet.md), with
   ``MLOPS_TRAINING_SLOTS`` slots (default 4), when it does not exist; a size set since is left alone.

Every failure names what was wrong and exits non-zero, which stops the services that wait for this job.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

INCLUDE = Path(os.environ.get("MLOPS_INCLUDE_DIR", "/opt/airflow/include"))
FEATURE_STORE_YAML = Path(
    os.environ.get("MLOPS_FEATURE_STORE_YAML") or Path(__file__).with_name("feast") / "feature_store.yaml"
)
SAMPLE_START = "2026-01-01"
SAMPLE_DAYS = 7
TRAINING_POOL = "mlops_training"  # = mlops_provider.fleet.dags.TRAINING_POOL


def fail(message: str) -> None:
    print(f"mlops-init: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def required_env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        fail(f"{name} is not set; docker-compose.yml sets it for every Airflow service, check your overrides.")
    return value


def install_feature_repo(repo: Path) -> None:
    source = INCLUDE / "feature_repo"
    if not (source / "feature_store.yaml").is_file():
        fail(f"{source} holds no Feast repository; the image must copy include/ (see the Dockerfile).")
    if not FEATURE_STORE_YAML.is_file():
        fail(f"{FEATURE_STORE_YAML} is missing; mount the checkout's docker/ at {FEATURE_STORE_YAML.parent.parent}.")
    repo.mkdir(parents=True, exist_ok=True)
    for definition in sorted(source.glob("*.py")):
        shutil.copy2(definition, repo / definition.name)
    shutil.copy2(FEATURE_STORE_YAML, repo / "feature_store.yaml")
    print(f"mlops-init: Feast repository ready at {repo} (definitions from {source})", flush=True)


def seed_feature_data(repo: Path) -> None:
    data = repo / "data"
    if (data / "customer_profile.parquet").exists():
        print(f"mlops-init: feature data already in {data}; left as it is", flush=True)
        return
    sys.path.insert(0, str(INCLUDE / "feature_repo"))
    from generate_data import generate

    generate(str(data), days=SAMPLE_DAYS, start=SAMPLE_START)
    print(f"mlops-init: sample feature data written to {data}", flush=True)


def seed_dataset(data_uri: str) -> None:
    sys.path.insert(0, str(INCLUDE))
    from sample_data import write_partitions

    if not data_uri.startswith("s3://"):
        target = Path(data_uri)
        if target.exists() and any(target.iterdir()):
            print(f"mlops-init: {data_uri} already holds data; no sample data written", flush=True)
            return
        write_partitions(str(target), start=SAMPLE_START, days=SAMPLE_DAYS)
        print(f"mlops-init: {SAMPLE_DAYS} days of sample churn data written to {data_uri}", flush=True)
        return

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    bucket, _, prefix = data_uri[len("s3://") :].partition("/")
    prefix = prefix.strip("/")
    hook = S3Hook(aws_conn_id="aws_default")
    try:
        existing = hook.list_keys(bucket_name=bucket, prefix=f"{prefix}/" if prefix else "", max_items=1)
    except Exception as error:  # the connection is what users get wrong: say which one and what it reached
        fail(
            f"cannot list {data_uri} with the aws_default connection ({type(error).__name__}: {error}); "
            "check AIRFLOW_CONN_AWS_DEFAULT (keys, endpoint_url) and that the bucket exists."
        )
    if existing:
        print(f"mlops-init: {data_uri} already holds data; no sample data written", flush=True)
        return
    with tempfile.TemporaryDirectory(prefix="mlops-sample-") as folder:
        for path in write_partitions(folder, start=SAMPLE_START, days=SAMPLE_DAYS):
            key = "/".join(filter(None, [prefix, Path(path).relative_to(folder).as_posix()]))
            hook.load_file(filename=str(path), key=key, bucket_name=bucket, replace=True)
    print(f"mlops-init: {SAMPLE_DAYS} days of sample churn data uploaded to {data_uri}", flush=True)


def ensure_training_pool() -> None:
    airflow = shutil.which("airflow") or "airflow"
    if subprocess.run([airflow, "pools", "get", TRAINING_POOL], capture_output=True).returncode == 0:
        return
    slots = os.environ.get("MLOPS_TRAINING_SLOTS", "4")
    result = subprocess.run(
        [airflow, "pools", "set", TRAINING_POOL, slots, "models training at once, fleet-wide"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        fail(f"could not create the pool {TRAINING_POOL} with MLOPS_TRAINING_SLOTS={slots!r}: {result.stderr[-500:]}")
    print(f"mlops-init: pool {TRAINING_POOL} created with {slots} slots", flush=True)


def main() -> None:
    repo = Path(required_env("MLOPS_FEAST_REPO"))
    install_feature_repo(repo)
    ensure_training_pool()
    if os.environ.get("MLOPS_SEED_SAMPLE_DATA", "false").strip().lower() not in ("1", "true", "yes"):
        print("mlops-init: MLOPS_SEED_SAMPLE_DATA is off; no sample data written", flush=True)
        return
    seed_feature_data(repo)
    seed_dataset(required_env("MLOPS_DATA_URI"))


if __name__ == "__main__":
    main()
