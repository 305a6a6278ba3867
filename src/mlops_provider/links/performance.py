from __future__ import annotations

from mlops_provider.links.base import PersistedUrlLink


class PerformanceReportLink(PersistedUrlLink):
    """Opens the live-performance report of the task's evaluation (live metrics over time per version)."""

    name = "Live performance report"
    key = "mlops_performance_report"
