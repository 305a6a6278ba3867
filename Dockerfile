# syntax=docker/dockerfile:1
#
# The production image: the official Apache Airflow image with this provider installed, pinned to uv.lock.
# One image serves every Airflow component of docker-compose.yml and the MLflow tracking server.
#
#   docker build -t airflow-provider-mlops:local .
#
# How the lock is applied: `uv export` turns uv.lock (all dependency groups) into a constraints file, so every
# package this project locks gets its locked version. The Celery provider, the FAB auth manager and psycopg2
# are resolved in the same install, so the build fails, naming the conflict, if one of them cannot run with
# the locked versions; the image's other providers stay as they are. The build ends with an import check.

ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11

FROM ${AIRFLOW_IMAGE} AS lock
# The uv release that wrote uv.lock; an older uv may not read a newer lock format.
ARG UV_VERSION=0.13.9
USER airflow
WORKDIR /tmp/lock
COPY --chown=airflow:0 pyproject.toml uv.lock ./
RUN python -m venv /tmp/uv-venv \
 && /tmp/uv-venv/bin/pip install --no-cache-dir --quiet "uv==${UV_VERSION}" \
 && cp /tmp/uv-venv/bin/uv /tmp/lock/uv \
 && /tmp/lock/uv export --frozen --no-hashes --no-emit-project --all-groups --output-file /tmp/lock/constraints.txt


FROM ${AIRFLOW_IMAGE} AS airflow
USER airflow
ENV MLOPS_HOME=/opt/airflow/mlops \
    GX_ANALYTICS_ENABLED=false \
    PYTHONDONTWRITEBYTECODE=1

# pyproject.toml names README.md as the package description: the wheel build needs it.
COPY --chown=airflow:0 pyproject.toml uv.lock README.md /opt/airflow/mlops-provider/
COPY --chown=airflow:0 src/ /opt/airflow/mlops-provider/src/

# The provider, the Celery executor, the FAB auth manager and PostgreSQL's driver (Airflow's metadata DB, the
# Celery result backend and MLflow's backend store), every one constrained by the lock where it pins them.
RUN --mount=type=bind,from=lock,source=/tmp/lock,target=/tmp/lock \
    /tmp/lock/uv pip install --no-cache --constraints /tmp/lock/constraints.txt \
        "apache-airflow==${AIRFLOW_VERSION}" \
        /opt/airflow/mlops-provider \
        apache-airflow-providers-celery \
        apache-airflow-providers-fab \
        psycopg2-binary \
 && python -c "import mlops_provider, mlflow, boto3, psycopg2, feast, sklearn, great_expectations, evidently; \
import airflow.providers.celery.executors.celery_executor, airflow.providers.fab.auth_manager.fab_auth_manager; \
from airflow.providers_manager import ProvidersManager; \
assert 'airflow-provider-mlops' in ProvidersManager().providers, 'airflow-provider-mlops is not registered'"

# The reference DAGs and what they read (sample data generators, expectation suites, the Feast repository).
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 include/ /opt/airflow/include/
# Mount point of the shared MLOPS_HOME volume; created here so that a new named volume belongs to airflow.
RUN mkdir -p /opt/airflow/mlops
