"""The fleet report as Prometheus metrics (the text exposition format), for the fleet page's ``/metrics``.

One gauge family per fact, labelled by ``model`` (and ``metric``, ``decision`` or ``flag`` where a model has several):

* ``mlops_model_champion_version``: the champion's version number (absent without a champion);
* ``mlops_model_champion_age_seconds``: seconds since the alias moved to it;
* ``mlops_model_seconds_since_last_training``: since the newest successful training run (else the newest version);
* ``mlops_model_last_gate_outcome``: 1 for the newest version's gate decision (``decision`` label);
* ``mlops_model_drift_share``, ``mlops_model_drift_detected``: the newest drift check's share of drifted columns,
  and 1 if it found drift;
* ``mlops_model_live_metric``, ``mlops_model_live_baseline``: the champion's newest live value of its primary
  metric, and its holdout value;
* ``mlops_model_live_degraded``: 1 if the live monitor's newest verdict is a drop beyond noise;
* ``mlops_model_pending_approvals``: promotions waiting for a human;
* ``mlops_model_flag``: 1 per flag the model has, 0 per flag it has not (``flag`` label);
* ``mlops_fleet_models``, ``mlops_fleet_catalogue_errors``: catalogued models, entries left out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlops_provider.fleet.report import FLAGS

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render_metrics(report: dict[str, Any]) -> bytes:
    """``report`` (from ``fleet_report``) in Prometheus' text format."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily

    now = datetime.fromisoformat(report["generated_at"])
    families = {
        "champion_version": GaugeMetricFamily(
            "mlops_model_champion_version", "Version number of the model's champion", labels=["model"]
        ),
        "champion_age": GaugeMetricFamily(
            "mlops_model_champion_age_seconds",
            "Seconds since the champion alias moved to its version",
            labels=["model"],
        ),
        "since_training": GaugeMetricFamily(
            "mlops_model_seconds_since_last_training",
            "Seconds since the newest successful training run (without Airflow's facts: the newest version)",
            labels=["model"],
        ),
        "gate": GaugeMetricFamily(
            "mlops_model_last_gate_outcome", "1 for the newest version's gate decision", labels=["model", "decision"]
        ),
        "drift_share": GaugeMetricFamily(
            "mlops_model_drift_share", "Share of drifted columns in the newest drift check", labels=["model"]
        ),
        "drift_detected": GaugeMetricFamily(
            "mlops_model_drift_detected", "1 if the newest drift check found drift", labels=["model"]
        ),
        "live": GaugeMetricFamily(
            "mlops_model_live_metric", "The champion's newest live value of the metric", labels=["model", "metric"]
        ),
        "baseline": GaugeMetricFamily(
            "mlops_model_live_baseline", "The champion's holdout value of the metric", labels=["model", "metric"]
        ),
        "degraded": GaugeMetricFamily(
            "mlops_model_live_degraded", "1 if the newest live verdict is a drop beyond noise", labels=["model"]
        ),
        "approvals": GaugeMetricFamily(
            "mlops_model_pending_approvals", "Promotions waiting for a human", labels=["model"]
        ),
        "flag": GaugeMetricFamily("mlops_model_flag", "1 if the model has the flag", labels=["model", "flag"]),
    }
    for model in report["models"]:
        name = model["name"]
        if model.get("champion_version") is not None:
            families["champion_version"].add_metric([name], float(model["champion_version"]))
        if model.get("champion_age_hours") is not None:
            families["champion_age"].add_metric([name], float(model["champion_age_hours"]) * 3600)
        trained = model.get("last_successful_training_run") or model.get("last_training")
        if trained:
            families["since_training"].add_metric([name], (now - datetime.fromisoformat(trained)).total_seconds())
        if model.get("last_gate_decision"):
            families["gate"].add_metric([name, str(model["last_gate_decision"])], 1.0)
        drift = model.get("drift") or {}
        if drift.get("share") is not None:
            families["drift_share"].add_metric([name], float(drift["share"]))
            families["drift_detected"].add_metric([name], 1.0 if drift.get("detected") else 0.0)
        live = model.get("live") or {}
        if live.get("value") is not None:
            families["live"].add_metric([name, str(live["metric"])], float(live["value"]))
            if live.get("holdout") is not None:
                families["baseline"].add_metric([name, str(live["metric"])], float(live["holdout"]))
        verdict = live.get("verdict") or {}
        if verdict:
            families["degraded"].add_metric([name], 1.0 if verdict.get("degraded") else 0.0)
        if model.get("pending_approvals") is not None:
            families["approvals"].add_metric([name], float(len(model["pending_approvals"])))
        for flag in FLAGS:
            families["flag"].add_metric([name, flag], 1.0 if flag in model.get("flags", ()) else 0.0)
    models = GaugeMetricFamily("mlops_fleet_models", "Models in the catalogue")
    models.add_metric([], float(len(report["models"])))
    errors = GaugeMetricFamily("mlops_fleet_catalogue_errors", "Catalogue entries left out as bad")
    errors.add_metric([], float(report.get("counts", {}).get("catalogue_errors", 0)))

    class _Report:
        def collect(self) -> Any:
            yield from families.values()
            yield models
            yield errors

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Report())
    return generate_latest(registry)
