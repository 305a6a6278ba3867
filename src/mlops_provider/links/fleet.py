from __future__ import annotations

from mlops_provider.links.base import PersistedUrlLink


class FleetReportLink(PersistedUrlLink):
    """Opens the fleet report of the task: one table, a row per model of the catalogue, flags highlighted."""

    name = "Fleet report"
    key = "mlops_fleet_report"
