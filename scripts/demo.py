"""`make demo`: the lifecycle on the embedded default (SQLite MLflow and local files under $MLOPS_HOME).

What runs depends on how far the provider has been built; each step is the provider's real code path.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
HOME = Path(os.environ.setdefault("MLOPS_HOME", str(Path.cwd() / ".mlops"))).resolve()
os.environ.setdefault("AIRFLOW_HOME", str(HOME / "airflow"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

from sample_data import churn_frame  # noqa: E402


def main() -> int:
    from mlops_provider.hooks.datasets import DatasetHook
    from mlops_provider.hooks.mlflow import MlflowHook

    started = time.perf_counter()
    storage = DatasetHook(aws_conn_id=None)
    dataset_uri = str(HOME / "demo" / "data" / "dt=2026-01-01")
    written = storage.write(churn_frame(5000, seed=42), dataset_uri)
    frame = storage.read(dataset_uri)

    hook = MlflowHook()
    client = hook.get_conn()
    experiment_id = hook.get_or_create_experiment("mlops-demo")
    run = client.create_run(experiment_id, tags={"mlops.dataset_uri": dataset_uri}, run_name="dataset-profile")
    client.log_metric(run.info.run_id, "rows", len(frame))
    client.log_metric(run.info.run_id, "churn_rate", float(frame["churned"].mean()))
    client.log_dict(run.info.run_id, frame.describe(include="all").astype(str).to_dict(), "profile.json")
    client.set_terminated(run.info.run_id)

    summary = {
        "dataset": written.to_dict(),
        "mlflow_tracking_uri": hook.settings.tracking_uri,
        "mlflow_run_id": run.info.run_id,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (HOME / "demo-summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nWrote {written.rows} rows to {dataset_uri}")
    print(f"Logged run {run.info.run_id} to {hook.settings.tracking_uri}")
    print(f"Browse: .venv/bin/mlflow ui --backend-store-uri {hook.settings.tracking_uri}")
    print(f"Summary: {HOME / 'demo-summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
