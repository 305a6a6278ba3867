"""What the model catalogue holds: its constants, its error types and the checked entries (dataclasses).

A bad entry becomes a ``CatalogueEntryError`` naming the model, the field and the fix, and only that model is left
out; ``Catalogue.error()`` gathers every problem into one ``CatalogueError``.

Plain Python: no Airflow import.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_provider.core.alerts import ALERT_KINDS
from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.registry.gate import SCORED_METRICS

ENV_VAR = "MLOPS_MODEL_CATALOG"
VARIABLE = "mlops_model_catalog"
SAMPLE = "include/model_catalog.yaml"
DAG_ID_PREFIX = "mlops_fleet_"
# Ids the fleet uses for itself; a model of that name would take them.
RESERVED_NAMES = frozenset({"catalogue_errors", "report"})
# Airflow's cron presets (airflow.sdk.definitions.timetables._cron.CRON_PRESETS) and "@once".
CRON_PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")
SCHEDULE_PRESETS = (*CRON_PRESETS, "@once")
GATE_METRICS = tuple(dict.fromkeys(metric for metrics in SCORED_METRICS.values() for metric in metrics))
TAG_MAX_LENGTH = 100  # Airflow's limit on a DAG tag
DEFAULT_DRIFT_SHARE = 0.25
DEFAULT_LABEL_DELAY_DAYS = 3
DEFAULT_MIN_ROWS = 200
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Names people write for a field, when difflib alone would suggest another one.
_ALIASES = {
    "target": "target_column",
    "label": "target_column",
    "label_column": "target_column",
    "features": "feature_columns",
    "ids": "id_columns",
    "timestamp": "timestamp_column",
    "dataset": "dataset_uri",
    "data_uri": "dataset_uri",
    "params": "estimator_params",
    "hyperparameters": "estimator_params",
    "metric": "primary_metric",
    "owner": "owners",
    "tag": "tags",
    "cron": "schedule",
    "approval": "require_approval",
    "approver": "approvers",
    "approved_by": "approvers",
    "suite": "expectation_suite",
    "alert": "alerts",
    "notifications": "alerts",
    "notify": "alerts",
}


class CatalogueError(ConfigurationError):
    """The model catalogue holds bad entries (or cannot be read at all); the message lists every problem."""


@dataclass(frozen=True)
class CatalogueEntryError:
    """One problem of the catalogue: its message names the model (``None``: the whole file), the field and the fix."""

    message: str
    model: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class DataArrivalTrigger:
    """Retrain on each day's partition once it lands: ``<prefix>/dt=<day>/*.parquet``."""

    prefix: str


@dataclass(frozen=True)
class DriftTrigger:
    """Watch the inputs daily and retrain when at least ``share`` of the feature columns drifted."""

    share: float = DEFAULT_DRIFT_SHARE


@dataclass(frozen=True)
class PerformanceTrigger:
    """Watch the champion's live performance on late labels and retrain on a supported drop."""

    labels_uri: str
    label_delay_days: int = DEFAULT_LABEL_DELAY_DAYS
    min_rows: int = DEFAULT_MIN_ROWS


@dataclass(frozen=True)
class Triggers:
    """What retrains a model besides its schedule; ``None``: not asked for."""

    data_arrival: DataArrivalTrigger | None = None
    drift: DriftTrigger | None = None
    performance: PerformanceTrigger | None = None


@dataclass(frozen=True)
class AlertSettings:
    """Who hears of the model's events: ``email`` addresses (through the SMTP connection ``smtp_conn_id``, from
    ``from_email``) and the webhook of the connection ``webhook_conn_id`` (Slack's incoming webhook), on the kinds
    in ``on`` (default: every kind, see ``core.alerts.ALERT_KINDS``)."""

    email: tuple[str, ...] = ()
    smtp_conn_id: str | None = None
    from_email: str | None = None
    webhook_conn_id: str | None = None
    on: tuple[str, ...] = ALERT_KINDS


@dataclass(frozen=True)
class ModelEntry:
    """One model of the catalogue, checked; the key of its entry is ``name``, the registered model."""

    name: str
    dataset_uri: str
    target_column: str
    feature_columns: tuple[str, ...] | None = None
    id_columns: tuple[str, ...] = ()
    timestamp_column: str | None = None
    feature_refs: tuple[str, ...] | str = ()
    expectation_suite: str | None = None
    estimator: str | None = None
    estimator_params: Mapping[str, Any] = field(default_factory=dict)
    slice_columns: tuple[str, ...] = ()
    sensitive_columns: tuple[str, ...] = ()
    primary_metric: str | None = None
    min_improvement: float = 0.0
    thresholds: Mapping[str, Mapping[str, Any]] | None = None
    require_approval: bool = False
    approvers: tuple[str, ...] = ()
    experiment_name: str | None = None
    schedule: str | None = None
    triggers: Triggers = field(default_factory=Triggers)
    owners: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    description: str | None = None
    alerts: AlertSettings | None = None

    @property
    def dag_ids(self) -> dict[str, str]:
        """The DAGs the fleet generates for this model, by kind: the lifecycle and what its triggers ask for."""
        base = DAG_ID_PREFIX + self.name
        ids = {"lifecycle": base}
        if self.triggers.data_arrival:
            ids["data_arrival"] = f"{base}_arrival"
        if self.triggers.drift:
            ids["drift_monitor"] = f"{base}_drift"
            ids["retrain_on_drift"] = f"{base}_retrain_on_drift"
        if self.triggers.performance:
            ids["performance_monitor"] = f"{base}_performance"
            ids["retrain_on_performance"] = f"{base}_retrain_on_performance"
        return ids


@dataclass(frozen=True)
class Catalogue:
    """The checked catalogue: the good entries in file order, and every problem found."""

    path: str | None
    source: str
    models: dict[str, ModelEntry] = field(default_factory=dict)
    errors: list[CatalogueEntryError] = field(default_factory=list)

    @property
    def readable(self) -> bool:
        """False when the file as a whole could not be used (missing, not YAML, no ``models:`` mapping)."""
        return not any(error.model is None and error.field is None for error in self.errors)

    def error(self) -> CatalogueError | None:
        """One exception listing every problem, or None when the catalogue is clean."""
        if not self.errors:
            return None
        if not self.readable:
            return CatalogueError("\n".join(str(e) for e in self.errors))
        count = len(self.errors)
        good = len(self.models)
        header = (
            f"The model catalogue {self.path} (from {self.source}) has {count} problem{'s' if count > 1 else ''}; "
            f"{good} good model{'s load' if good != 1 else ' loads'} as usual, the entries named below are left "
            "out until fixed:"
        )
        return CatalogueError("\n".join([header, *(f"- {e}" for e in self.errors)]))


class _Bad(Exception):
    """A field's value is wrong: the message (without the model) says what and how to fix it."""


_MISSING: Any = object()
