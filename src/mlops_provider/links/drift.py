from __future__ import annotations

from mlops_provider.links.base import PersistedUrlLink


class DriftReportLink(PersistedUrlLink):
    """Opens the Evidently drift report of the task's check."""

    name = "Drift report"
    key = "mlops_drift_report"
