"""Live model performance: the prediction log, labels joined to it, and the statistics that judge it.

The names below are light (no pandas, no MLflow), for modules that only read what the monitor recorded.
"""

# Where EvaluateLivePerformanceOperator records each model's windows: one run in ``<model>-monitoring``.
MONITORING_EXPERIMENT_SUFFIX = "-monitoring"
MONITORING_RUN_NAME = "live-performance"
# What the live monitor judges on by default, per task type (see ``live.default_primary_metric``).
DEFAULT_LIVE_METRIC = {"classification": "accuracy", "regression": "rmse"}
