#!/bin/sh
# Run by the minio-init service (minio/mc image) on every `docker compose up`; safe to repeat.
# Creates the buckets, and the service account that Airflow and MLflow use, limited to those buckets.
set -eu
: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${MLOPS_S3_ACCESS_KEY:?}" "${MLOPS_S3_SECRET_KEY:?}"
BUCKETS=${MLOPS_BUCKETS:-"mlflow mlops"}

mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
statements=""
for bucket in $BUCKETS; do
  mc mb --ignore-existing "local/$bucket"
  statements="$statements\"arn:aws:s3:::$bucket\",\"arn:aws:s3:::$bucket/*\","
done
policy=/tmp/mlops-service-policy.json
cat > "$policy" <<JSON
{"Version": "2012-10-17",
 "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": [${statements%,}]}]}
JSON
mc admin policy create local mlops-service "$policy"
mc admin user add local "$MLOPS_S3_ACCESS_KEY" "$MLOPS_S3_SECRET_KEY"
# attach fails when the policy is attached already (a repeated `up`): accept that case only
mc admin policy attach local mlops-service --user "$MLOPS_S3_ACCESS_KEY" 2>/dev/null \
  || mc admin user info local "$MLOPS_S3_ACCESS_KEY" | grep -q mlops-service
echo "minio-init: buckets ($BUCKETS) and service account $MLOPS_S3_ACCESS_KEY are ready"
