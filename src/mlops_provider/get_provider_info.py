"""Provider metadata read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point.

Kept free of imports beyond the package version so that provider discovery stays cheap.
"""

from __future__ import annotations

from mlops_provider import __version__

_PACKAGE = "mlops_provider"


def get_provider_info() -> dict:
    return {
        "package-name": "airflow-provider-mlops",
        "name": "MLOps",
        "description": (
            "The machine-learning lifecycle as Airflow tasks: validation (Great Expectations), "
            "features (Feast), training (scikit-learn), tracking and registry (MLflow), gated "
            "promotion and drift detection (Evidently)."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "MLflow",
                "external-doc-url": "https://mlflow.org/docs/latest/",
                "how-to-guide": [
                    "/docs/operators/training.md",
                    "/docs/operators/registry.md",
                    "/docs/operators/performance.md",
                    "/docs/operators/rollout.md",
                ],
                "tags": ["ml"],
            },
            {
                "integration-name": "Feast",
                "external-doc-url": "https://docs.feast.dev/",
                "how-to-guide": ["/docs/operators/features.md"],
                "tags": ["ml"],
            },
            {
                "integration-name": "Great Expectations",
                "external-doc-url": "https://docs.greatexpectations.io/docs/",
                "how-to-guide": ["/docs/operators/validation.md"],
                "tags": ["ml"],
            },
            {
                "integration-name": "Evidently",
                "external-doc-url": "https://docs.evidentlyai.com/",
                "how-to-guide": ["/docs/operators/drift.md"],
                "tags": ["ml"],
            },
        ],
        "hooks": [
            {"integration-name": "MLflow", "python-modules": [f"{_PACKAGE}.hooks.mlflow"]},
            {"integration-name": "Feast", "python-modules": [f"{_PACKAGE}.hooks.feast"]},
        ],
        "operators": [
            {"integration-name": "Feast", "python-modules": [f"{_PACKAGE}.operators.features"]},
            {
                "integration-name": "MLflow",
                "python-modules": [
                    f"{_PACKAGE}.operators.training",
                    f"{_PACKAGE}.operators.registry",
                    f"{_PACKAGE}.operators.prediction",
                    f"{_PACKAGE}.operators.lifecycle",
                    f"{_PACKAGE}.operators.datasets",
                    f"{_PACKAGE}.operators.performance",
                    f"{_PACKAGE}.operators.fleet",
                    f"{_PACKAGE}.operators.rollout",
                ],
            },
            {"integration-name": "Great Expectations", "python-modules": [f"{_PACKAGE}.operators.validation"]},
            {"integration-name": "Evidently", "python-modules": [f"{_PACKAGE}.operators.drift"]},
        ],
        "sensors": [
            {"integration-name": "Feast", "python-modules": [f"{_PACKAGE}.sensors.features"]},
            {
                "integration-name": "MLflow",
                "python-modules": [f"{_PACKAGE}.sensors.registry", f"{_PACKAGE}.sensors.performance"],
            },
            {"integration-name": "Evidently", "python-modules": [f"{_PACKAGE}.sensors.drift"]},
        ],
        "triggers": [
            {"integration-name": "MLflow", "python-modules": [f"{_PACKAGE}.triggers.registry"]},
        ],
        "connection-types": [
            {
                "hook-class-name": f"{_PACKAGE}.hooks.mlflow.MlflowHook",
                "hook-name": "MLflow",
                "connection-type": "mlflow",
            },
            {
                "hook-class-name": f"{_PACKAGE}.hooks.feast.FeastHook",
                "hook-name": "Feast",
                "connection-type": "feast",
            },
        ],
        # The Slack-compatible webhook notifier (alerts, docs/governance.md). No connection type of its own: it reads
        # the Slack provider's `slackwebhook` connection (webhook URL in the password) or an `http` one.
        "notifications": [f"{_PACKAGE}.notifications.webhook.WebhookNotifier"],
        "extra-links": [
            f"{_PACKAGE}.links.mlflow.MlflowRunLink",
            f"{_PACKAGE}.links.validation.ValidationReportLink",
            f"{_PACKAGE}.links.drift.DriftReportLink",
            f"{_PACKAGE}.links.performance.PerformanceReportLink",
            f"{_PACKAGE}.links.fleet.FleetReportLink",
            f"{_PACKAGE}.links.model_card.ModelCardLink",
        ],
        "asset-uris": [
            {"schemes": ["mlops"], "handler": f"{_PACKAGE}.assets.sanitize_mlops_uri"},
            {"schemes": ["mlflow"], "handler": f"{_PACKAGE}.assets.sanitize_mlflow_uri"},
        ],
    }
