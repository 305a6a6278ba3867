#!/usr/bin/env bash
# Runs once, when the PostgreSQL volume is first initialised (docker-entrypoint-initdb.d).
# POSTGRES_USER/POSTGRES_DB (airflow) already exist; this adds a login and a database of its own for MLflow's
# backend store and for Feast's registry, each owned by its login, so one service cannot touch another's data.
set -euo pipefail

create_database() {
  local name=$1 password=$2
  if [[ -z "$password" ]]; then
    echo "init-databases: no password for the '$name' login; set it in .env (docker/generate-env.sh)" >&2
    exit 1
  fi
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
       -v name="$name" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
SQL
  echo "init-databases: database '$name' owned by login '$name' is ready"
}

create_database mlflow "${MLFLOW_DB_PASSWORD:-}"
create_database feast "${FEAST_DB_PASSWORD:-}"
