from __future__ import annotations

from mlops_provider.links.base import PersistedUrlLink


class ValidationReportLink(PersistedUrlLink):
    """Opens the Great Expectations Data Docs page of the task's validation run."""

    name = "Validation report"
    key = "mlops_validation_report"
