from __future__ import annotations

from mlops_provider.links.base import PersistedUrlLink


class ModelCardLink(PersistedUrlLink):
    """Opens the model card (HTML) of the task's version in the MLflow UI: what it was trained on, how it did, its
    gate decision, approvals, alias moves and known limits. Empty without an MLflow UI URL (see ``links.mlflow``)."""

    name = "Model card"
    key = "mlops_model_card"
