#!/usr/bin/env bash
# `make up`: Airflow (standalone: api-server, scheduler, dag-processor, triggerer) with the reference DAGs and
# this provider, plus the MLflow UI on the same embedded store. Ctrl-C stops both.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
VENV_BIN="$REPO/.venv/bin"
export PATH="$VENV_BIN:$PATH"  # standalone starts its components as `airflow ...` commands
export MLOPS_HOME="${MLOPS_HOME:-$REPO/.mlops}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$MLOPS_HOME/airflow}"
AIRFLOW_PORT="${AIRFLOW_PORT:-8080}"
MLFLOW_PORT="${MLFLOW_PORT:-5000}"

export AIRFLOW__CORE__DAGS_FOLDER="$REPO/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
# standalone would start 32 LocalExecutor workers; a laptop or a 2-core VM wants a handful.
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
export AIRFLOW__API__PORT="$AIRFLOW_PORT"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$AIRFLOW_PORT/execution/"
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-30}"
export AIRFLOW_CONN_MLFLOW_DEFAULT="{\"conn_type\": \"mlflow\", \"host\": \"127.0.0.1\", \"port\": $MLFLOW_PORT, \"extra\": {\"ui_url\": \"http://127.0.0.1:$MLFLOW_PORT\"}}"
export AIRFLOW_CONN_FS_DEFAULT='{"conn_type": "fs", "extra": {"path": "/"}}'
export GX_ANALYTICS_ENABLED=false
# The fleet: one lifecycle per model of the sample catalogue, and the Browse > Model fleet page (docs/fleet.md).
export MLOPS_MODEL_CATALOG="${MLOPS_MODEL_CATALOG:-$REPO/include/model_catalog.yaml}"

mkdir -p "$MLOPS_HOME/mlflow/artifacts" "$AIRFLOW_HOME"
if [ ! -d "$MLOPS_HOME/data/churn" ]; then
  echo "Writing two weeks of sample churn data to $MLOPS_HOME/data/churn"
  "$VENV_BIN/python" "$REPO/include/sample_data.py" --out "$MLOPS_HOME/data/churn" --start 2026-01-01 --days 14 >/dev/null
fi
if [ ! -d "$MLOPS_HOME/data/deliveries" ]; then
  echo "Writing two weeks of sample delivery data to $MLOPS_HOME/data/deliveries"
  "$VENV_BIN/python" "$REPO/include/sample_data.py" --dataset deliveries --out "$MLOPS_HOME/data/deliveries" \
    --start 2026-01-01 --days 14 >/dev/null
fi
if [ ! -f "$REPO/include/feature_repo/data/customer_profile.parquet" ]; then
  "$VENV_BIN/python" "$REPO/include/feature_repo/generate_data.py" >/dev/null
fi

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  sleep 5
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
}
trap stop INT TERM EXIT

# MLflow's job runner (GenAI evaluation jobs) adds several busy worker processes; the lifecycle needs none.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"
set -m  # each service in its own process group, so stop() takes its workers too
"$VENV_BIN/mlflow" server --host 127.0.0.1 --port "$MLFLOW_PORT" \
  --backend-store-uri "sqlite:///$MLOPS_HOME/mlflow/mlflow.db" \
  --artifacts-destination "$MLOPS_HOME/mlflow/artifacts" --serve-artifacts \
  >"$MLOPS_HOME/mlflow-server.log" 2>&1 &
pids+=($!)
"$VENV_BIN/airflow" standalone >"$AIRFLOW_HOME/standalone.log" 2>&1 &
pids+=($!)
set +m

echo "Starting Airflow and MLflow (logs: $AIRFLOW_HOME/standalone.log, $MLOPS_HOME/mlflow-server.log) ..."
for _ in $(seq 1 180); do
  if curl -fs "http://127.0.0.1:$AIRFLOW_PORT/api/v2/monitor/health" >/dev/null 2>&1 \
     && curl -fs "http://127.0.0.1:$MLFLOW_PORT/health" >/dev/null 2>&1; then
    break
  fi
  sleep 2
done
# Every fleet `train` task takes a slot of this pool (docs/fleet.md); without it they are never scheduled.
"$VENV_BIN/airflow" pools set mlops_training "${MLOPS_TRAINING_SLOTS:-2}" "models training at once, fleet-wide" >/dev/null
passwords="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
cat <<EOF

  Airflow UI   http://127.0.0.1:$AIRFLOW_PORT   login: $("$VENV_BIN/python" -c 'import json, sys; print(", ".join(f"{u} / {p}" for u, p in json.load(open(sys.argv[1])).items()))' "$passwords" 2>/dev/null || echo "see $passwords")
  MLflow UI    http://127.0.0.1:$MLFLOW_PORT
  DAGs         $REPO/dags (trigger mlops_lifecycle: its defaults run on the sample data)
  Fleet        http://127.0.0.1:$AIRFLOW_PORT/plugin/mlops-fleet (the models of $MLOPS_MODEL_CATALOG)

Ctrl-C stops both.
EOF
wait -n "${pids[@]}"
