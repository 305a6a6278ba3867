"""Names of the MLflow tags the provider writes and reads, kept light so operators can import them at parse time."""

REFERENCE_SAMPLE = "mlops.reference_sample_uri"
HOLDOUT = "mlops.holdout_uri"
TARGET_COLUMN = "mlops.target_column"
TASK_TYPE = "mlops.task_type"
