"""Model cards: one page per registered version saying what it is, what it was trained on, how it did and where it
stands; gathered from MLflow, rendered as Markdown and HTML (``core.model_card_render``) and logged with the
version's training run under ``model_card/``.

``gather`` reads only what the provider already records: the version and its training run (params, metrics,
tags: data URI, fingerprint, rows, time span, features, estimator), the model's promotion history (gate
decisions, alias moves, rollbacks, approvals), the monitoring run (live metrics and verdicts) and the optional
artifacts ``feature_importances.csv``, ``slices.json`` and ``fairness.json``. A piece that is absent makes its
section say "not computed" and which argument computes it; it never makes the card fail.

``publish`` overwrites the card at fixed artifact paths and tags the version with when it was generated and the
status it reflects, so generating twice gives the same card. Plain Python over an ``MlflowClient``: no Airflow.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from mlops_provider.core import tags

log = logging.getLogger(__name__)

CARD_FOLDER = "model_card"
MARKDOWN_NAME = "model_card.md"
HTML_NAME = "model_card.html"
IMPORTANCES_NAME = "feature_importances.csv"
SLICES_NAME = "slices.json"
FAIRNESS_NAME = "fairness.json"
MAX_IMPORTANCES = 15
MIN_GROUP_ROWS = 30  # as core.slicing: fewer holdout rows than this and a group's metrics mean little

# What computes each optional section, for the "not computed" line.
HOW_TO_COMPUTE = {
    "owner": "pass model_owner= to TrainModelOperator, or give the catalogue entry owners:",
    "purpose": "pass model_purpose= to TrainModelOperator, give the catalogue entry a description:, or set the "
    "registered model's description in MLflow",
    "time_range": "pass timestamp_column= to TrainModelOperator",
    "importances": "use an estimator with feature_importances_ or coef_ (TrainModelOperator logs "
    "feature_importances.csv for those)",
    "slices": "pass slice_columns=[...] to TrainModelOperator",
    "fairness": "pass sensitive_columns=[...] to TrainModelOperator",
    "gate": "run EvaluateChallengerOperator or PromoteModelOperator on this version",
    "live": "run EvaluateLivePerformanceOperator on logged predictions once their labels arrive",
}


class ModelCardError(Exception):
    """The card cannot be written (no training run to hold it)."""


@dataclass
class ModelCard:
    """The facts of one card; every field is JSON-ready. ``missing`` maps a section to how to compute it."""

    model_name: str
    version: str
    status: str
    status_detail: str
    generated_at: str
    trigger: str
    registered_at: str | None = None
    description: str | None = None
    owner: str | None = None
    owner_source: str | None = None
    purpose: str | None = None
    purpose_source: str | None = None
    aliases: list[str] = field(default_factory=list)
    run_id: str | None = None
    experiment_id: str | None = None
    task_type: str | None = None
    target: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    features: list[str] = field(default_factory=list)
    numeric_features: list[str] = field(default_factory=list)
    categorical_features: list[str] = field(default_factory=list)
    estimator: str | None = None
    estimator_params: dict[str, str] = field(default_factory=dict)
    holdout_metrics: dict[str, float] = field(default_factory=dict)
    live: dict[str, Any] | None = None
    slices: dict[str, Any] | None = None
    fairness: dict[str, Any] | None = None
    importances: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    approvals: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    lineage: dict[str, str] = field(default_factory=dict)
    limits: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # optional pieces that exist but could not be read
    # The version's mlops.card.* tags when gathered: publish writes only those that change (each is a registry
    # write, ~40 ms on a tracking server).
    recorded: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PublishedCard:
    model_name: str
    version: str
    status: str
    artifact_uri: str  # the HTML card, ``runs:/<run>/model_card/model_card.html``
    ui_url: str | None  # the card in the MLflow UI (None without a UI URL)
    seconds: float


def card_ui_url(base_ui_url: str | None, experiment_id: str | None, run_id: str | None) -> str | None:
    """The HTML card opened in the MLflow UI's artifact view of its run, or None when any part is unknown."""
    if not (base_ui_url and experiment_id and run_id):
        return None
    return (
        f"{base_ui_url.rstrip('/')}/#/experiments/{quote(str(experiment_id))}/runs/{quote(str(run_id))}"
        f"/artifacts/{CARD_FOLDER}/{HTML_NAME}"
    )


def data_time_range(frame: Any, column: str | None) -> dict[str, str] | None:
    """The span of ``column`` in the training data as ``{"column", "start", "end"}`` (for ``DATA_TIME_RANGE``)."""
    if not column or column not in getattr(frame, "columns", ()):
        return None
    import pandas as pd

    stamps = pd.to_datetime(frame[column], errors="coerce", utc=True).dropna()
    if stamps.empty:
        return None
    return {"column": column, "start": stamps.min().isoformat(), "end": stamps.max().isoformat()}


# -- gathering ------------------------------------------------------------------------------------------------


def gather(
    client: Any,
    model_name: str,
    version: str,
    *,
    trigger: str = "manual",
    owner: str | None = None,
    owner_source: str | None = None,
    purpose: str | None = None,
    purpose_source: str | None = None,
    ui_url: str | None = None,
) -> ModelCard:
    """The facts of ``model_name`` version ``version``. ``owner``/``purpose`` are fallbacks (e.g. from the fleet
    catalogue) used when neither the version nor the registered model carries them; ``ui_url`` is the MLflow UI
    base URL, for links."""
    model_version = client.get_model_version(model_name, str(version))
    model = client.get_registered_model(model_name)
    vtags = dict(model_version.tags or {})
    mtags = dict(model.tags or {})
    run = client.get_run(model_version.run_id) if model_version.run_id else None
    params = dict(run.data.params) if run else {}
    metrics = dict(run.data.metrics) if run else {}
    run_tags = dict(run.data.tags) if run else {}
    facts = {**run_tags, **vtags}  # the version's tags win: they are the registry's record
    version = str(model_version.version)
    card = ModelCard(
        model_name=model_name,
        version=version,
        status="registered",
        status_detail="registered; not judged by a gate yet",
        generated_at=_now(),
        trigger=trigger,
        registered_at=_millis(model_version.creation_timestamp),
        description=model_version.description or None,
        aliases=sorted(model_version.aliases or []),
        run_id=model_version.run_id or None,
        experiment_id=str(run.info.experiment_id) if run else None,
        task_type=facts.get(tags.TASK_TYPE) or params.get("task_type"),
        target=facts.get(tags.TARGET_COLUMN) or params.get("target_column"),
        recorded={k: v for k, v in vtags.items() if k.startswith("mlops.card.")},
    )
    _owner_and_purpose(card, vtags, mtags, model, owner, owner_source, purpose, purpose_source)
    _data(card, facts, params)
    card.features = _split_list(params.get("feature_columns"))
    card.numeric_features = _split_list(params.get("preprocessing.numeric_columns"))
    card.categorical_features = _split_list(params.get("preprocessing.categorical_columns"))
    card.estimator = params.get("estimator")
    card.estimator_params = {k[len("estimator.") :]: v for k, v in sorted(params.items()) if k.startswith("estimator.")}
    card.holdout_metrics = {
        k: float(v) for k, v in sorted(metrics.items()) if "." not in k and k != "fit_seconds" and _finite(v)
    }
    history = _history(mtags)
    _gate_and_history(card, vtags, history)
    _status(card, history)
    if run is not None:
        _artifacts(client, card, metrics)
    _live(client, card)
    _lineage(card, facts, ui_url)
    _limits(card, facts)
    for section in ("owner", "purpose", "importances", "slices", "fairness", "gate", "live"):
        if not _present(card, section):
            card.missing[section] = HOW_TO_COMPUTE[section]
    if not card.data.get("time_range"):
        card.missing["time_range"] = HOW_TO_COMPUTE["time_range"]
    return card


def _present(card: ModelCard, section: str) -> bool:
    return bool(getattr(card, section))


def _owner_and_purpose(
    card: ModelCard, vtags: dict, mtags: dict, model: Any, owner: Any, owner_source: Any, purpose: Any, p_source: Any
) -> None:
    for key, name, fallback, fallback_source, extra in (
        (tags.OWNER, "owner", owner, owner_source, None),
        (tags.PURPOSE, "purpose", purpose, p_source, getattr(model, "description", None)),
    ):
        if vtags.get(key):
            value, source = vtags[key], f"given to training as model_{name}"
        elif mtags.get(key):
            value, source = mtags[key], f"from the registered model's tag {key}"
        elif extra:
            value, source = extra, "from the registered model's description"
        elif fallback:
            value, source = fallback, fallback_source or "given"
        else:
            continue
        setattr(card, name, str(value))
        setattr(card, f"{name}_source", source)


def _data(card: ModelCard, facts: dict, params: dict) -> None:
    train_rows = _int(params.get("split.train_rows"))
    test_rows = _int(params.get("split.test_rows"))
    data: dict[str, Any] = {
        "uri": facts.get(tags.DATASET_URI),
        "fingerprint": facts.get(tags.DATA_FINGERPRINT),
        "rows": (train_rows + test_rows) if train_rows is not None and test_rows is not None else None,
        "train_rows": train_rows,
        "holdout_rows": test_rows,
        "split": params.get("split.method"),
    }
    time_range = _json(facts.get(tags.DATA_TIME_RANGE))
    if isinstance(time_range, dict) and time_range.get("start"):
        data["time_range"] = time_range
    elif params.get("split.train_until"):
        # A time split records where training ended and the holdout began, not the data's first day.
        data["time_range"] = {
            "column": params.get("split.timestamp_column"),
            "start": None,
            "end": None,
            "train_until": params.get("split.train_until"),
            "holdout_from": params.get("split.test_from"),
        }
    if isinstance(data.get("time_range"), dict) and params.get("split.train_until"):
        data["time_range"].setdefault("train_until", params.get("split.train_until"))
        data["time_range"].setdefault("holdout_from", params.get("split.test_from"))
    card.data = {k: v for k, v in data.items() if v is not None}


def _history(mtags: dict) -> list[dict[str, Any]]:
    entries = []
    for key, value in mtags.items():
        if key.startswith(tags.HISTORY_PREFIX):
            entry = _json(value)
            if isinstance(entry, dict) and "seq" in entry:
                entries.append(entry)
    return sorted(entries, key=lambda entry: entry["seq"])


def _gate_and_history(card: ModelCard, vtags: dict, history: list[dict[str, Any]]) -> None:
    decision = vtags.get(tags.GATE_DECISION)
    if decision:
        detail = _json(vtags.get(tags.GATE_DETAIL)) or {}
        by = _json(vtags.get(tags.GATE_BY)) or {}
        card.gate = {
            "decision": decision,
            "time": detail.get("time"),
            "reasons": list(detail.get("reasons") or []),
            "note": detail.get("note") or "",
            "thresholds": detail.get("thresholds") or {},
            "challenger_metrics": detail.get("challenger_metrics") or {},
            "champion_metrics": detail.get("champion_metrics") or {},
            "champion_version": detail.get("champion_version"),
            "by": _who(by),
            "approved_by": by.get("approved_by"),
        }
    mine = [e for e in history if card.version in (str(e.get("to_version")), str(e.get("from_version")))]
    card.history = [
        {
            "seq": e.get("seq"),
            "time": e.get("time"),
            "action": e.get("action"),
            "alias": e.get("alias"),
            "from_version": e.get("from_version"),
            "to_version": e.get("to_version"),
            "reason": _first_line(e.get("reason")),
            "by": _who(e.get("by") or {}),
        }
        for e in mine
    ]
    for entry in mine:
        approver = (entry.get("by") or {}).get("approved_by")
        if approver and str(entry.get("to_version")) == card.version:
            card.approvals.append(
                {"approved_by": approver, "time": entry.get("time"), "action": entry.get("action"),
                 "alias": entry.get("alias"), "by": _who(entry.get("by") or {})}
            )  # fmt: skip
    if not card.approvals and card.gate and card.gate.get("approved_by"):
        card.approvals.append(
            {"approved_by": card.gate["approved_by"], "time": card.gate.get("time"), "action": "gate",
             "alias": None, "by": card.gate.get("by")}
        )  # fmt: skip


def _status(card: ModelCard, history: list[dict[str, Any]]) -> None:
    """One status word and a sentence: the alias the version holds, else what last moved an alias off it, else
    the gate's decision."""
    held = [a for a in card.aliases if not a.startswith("previous_")]
    mine = [e for e in history if card.version in (str(e.get("to_version")), str(e.get("from_version")))]
    if held:
        arrived = [e for e in mine if str(e.get("to_version")) == card.version and e.get("alias") in held]
        last = arrived[-1] if arrived else None
        how = ""
        if last is not None:
            verb = "rolled back to" if last.get("action") == "rollback" else "promoted to"
            how = f"; {verb} @{last.get('alias')} at {last.get('time')} (history #{last.get('seq')})"
        card.status = "@" + ", @".join(held)
        card.status_detail = f"serving as {card.status}{how}"
        return
    if mine and str(mine[-1].get("from_version")) == card.version:
        last = mine[-1]
        if last.get("action") == "rollback":
            card.status = "rolled back"
            card.status_detail = (
                f"rolled back: @{last.get('alias')} moved from this version to v{last.get('to_version')} at "
                f"{last.get('time')} (history #{last.get('seq')}): {_first_line(last.get('reason'))}"
            )
        else:
            card.status = "replaced"
            card.status_detail = (
                f"replaced: @{last.get('alias')} moved to v{last.get('to_version')} at {last.get('time')} "
                f"({last.get('action')}, history #{last.get('seq')})"
            )
        return
    if card.gate:
        decision = card.gate["decision"]
        # "promoted" without the alias and without a move off it: the alias was moved by hand, outside the history.
        words = {"passed": "gate passed", "rejected": "gate rejected", "waiting": "waiting for live evidence",
                 "promoted": "promoted earlier"}  # fmt: skip
        card.status = words.get(decision, f"gate {decision}")
        against = card.gate.get("champion_version")
        card.status_detail = (
            f"{card.status} at {card.gate.get('time')} against "
            f"{'v' + str(against) if against else 'no champion (cold start)'}"
        )


def _artifacts(client: Any, card: ModelCard, metrics: dict[str, float]) -> None:
    """Feature importances, slices and fairness: the artifact files, else the metrics, else "not computed"."""
    try:
        found = _artifact_index(client, str(card.run_id))
    except Exception as error:  # the run's artifact store unreadable: the card still says what the run holds
        card.notes.append(f"the training run's artifacts could not be listed ({type(error).__name__}: {error})")
        found = {}
    table = _read_artifact(client, card, found.get(IMPORTANCES_NAME), kind="csv")
    if table:
        card.importances = _importances(table)
    slices = _read_artifact(client, card, found.get(SLICES_NAME), kind="json")
    if isinstance(slices, dict) and slices.get("columns"):
        card.slices = {"columns": slices["columns"], "source": found[SLICES_NAME]}
    else:
        from_metrics = _group_metrics(metrics, "slice.")
        if from_metrics:
            card.slices = {"metrics": from_metrics, "source": "run metrics slice.*"}
    fairness = _read_artifact(client, card, found.get(FAIRNESS_NAME), kind="json")
    if isinstance(fairness, dict) and fairness.get("columns"):
        card.fairness = {"columns": fairness["columns"], "source": found[FAIRNESS_NAME]}
    else:
        from_metrics = _group_metrics(metrics, "fairness.")
        if from_metrics:
            card.fairness = {"metrics": from_metrics, "source": "run metrics fairness.*"}


def _artifact_index(client: Any, run_id: str) -> dict[str, str]:
    """Artifact path by file name, for the files the card reads, at the run's root or one folder down."""
    wanted = {IMPORTANCES_NAME, SLICES_NAME, FAIRNESS_NAME}
    found: dict[str, str] = {}
    folders = []
    for entry in client.list_artifacts(run_id):
        name = entry.path.rsplit("/", 1)[-1]
        if entry.is_dir:
            if name in ("evaluation", "slices", "fairness", "reports"):
                folders.append(entry.path)
        elif name in wanted:
            found[name] = entry.path
    for folder in folders:
        if wanted <= set(found):
            break
        for entry in client.list_artifacts(run_id, folder):
            name = entry.path.rsplit("/", 1)[-1]
            if not entry.is_dir and name in wanted:
                found.setdefault(name, entry.path)
    return found


def _read_artifact(client: Any, card: ModelCard, path: str | None, *, kind: str) -> Any:
    if not path:
        return None
    try:
        with tempfile.TemporaryDirectory(prefix="mlops-card-") as folder:
            local = client.download_artifacts(str(card.run_id), path, folder)
            with open(local, encoding="utf-8") as handle:
                if kind == "json":
                    return json.load(handle)
                import csv

                return list(csv.DictReader(handle))
    except Exception as error:  # an optional piece: said on the card, never a failed card
        card.notes.append(f"{path} could not be read ({type(error).__name__}: {error})")
        return None


def _importances(rows: list[dict[str, str]]) -> dict[str, Any]:
    source = (rows[0].get("source") or "").strip()
    if "permutation" in source:
        method = "permutation importance on the holdout: the drop in score when the feature's values are shuffled"
    elif source == "feature_importances_":
        method = (
            "the estimator's own feature_importances_ (impurity-based for trees, from the training data; "
            "not permutation importance, and biased towards features with many distinct values)"
        )
    elif source == "|coef_|":
        method = (
            "absolute coefficients |coef_| of the linear estimator on the preprocessed (scaled, one-hot) "
            "features; not permutation importance"
        )
    else:
        method = f"{source or 'unknown method'} (as logged by training)"
    top = []
    for row in rows[:MAX_IMPORTANCES]:
        value = _float(row.get("importance"))
        if value is not None:
            top.append({"feature": row.get("feature", ""), "importance": value})
    return {"method": method, "source": source, "top": top, "features": len(rows)}


def _group_metrics(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {k: float(v) for k, v in sorted(metrics.items()) if k.startswith(prefix) and _finite(v)}


def _live(client: Any, card: ModelCard) -> None:
    """The version's newest live metrics (the monitoring run's time series) and the monitors' verdicts."""
    from mlops_provider.core.monitoring import find_monitoring_run, read_verdicts

    try:
        run = find_monitoring_run(client, card.model_name)
    except Exception as error:  # no monitoring yet is normal; a broken read is said, not raised
        card.notes.append(f"the monitoring run could not be read ({type(error).__name__}: {error})")
        return
    if run is None:
        return
    prefix = f"live.v{card.version}."
    values = {k[len(prefix) :]: float(v) for k, v in run.data.metrics.items() if k.startswith(prefix) and _finite(v)}
    verdicts = read_verdicts(run)
    live_verdict = verdicts.get("live")
    metrics = {}
    for name, value in sorted(values.items()):
        if name == "rows" or name.endswith((".low", ".high")):
            continue
        metrics[name] = {"value": value, "low": values.get(f"{name}.low"), "high": values.get(f"{name}.high")}
    if metrics:
        card.live = {"metrics": metrics, "rows": int(values.get("rows", 0)), "verdict": None}
        if live_verdict and str(live_verdict.get("champion_version")) == card.version:
            card.live["verdict"] = live_verdict
    drift = verdicts.get("drift")
    if drift and card.status.startswith("@"):
        card.lineage["drift_report"] = drift.get("report_uri") or ""
        if drift.get("detected"):
            card.limits.append(
                f"input drift found on {drift.get('data_interval_end', '?')}: {drift.get('drifted_columns', '?')} of "
                f"{drift.get('tested_columns', '?')} features drifted (share {drift.get('share', '?')}); the "
                "holdout metrics describe the training distribution, not the current one"
            )


def _lineage(card: ModelCard, facts: dict, ui_url: str | None) -> None:
    links = {
        "model_uri": f"models:/{card.model_name}/{card.version}",
        "dataset": facts.get(tags.DATASET_URI) or "",
        "reference_sample": facts.get(tags.REFERENCE_SAMPLE) or "",
        "holdout": facts.get(tags.HOLDOUT) or "",
    }
    trained_by = [facts.get(tags.AIRFLOW_DAG_ID), facts.get(tags.AIRFLOW_RUN_ID), facts.get(tags.AIRFLOW_TASK_ID)]
    if all(trained_by):
        links["trained_by"] = " / ".join(str(part) for part in trained_by)
    if ui_url and card.experiment_id and card.run_id:
        base = ui_url.rstrip("/")
        links["mlflow_run"] = f"{base}/#/experiments/{quote(card.experiment_id)}/runs/{quote(card.run_id)}"
        links["mlflow_version"] = f"{base}/#/models/{quote(card.model_name)}/versions/{quote(card.version)}"
    card.lineage.update({k: v for k, v in links.items() if v})
    card.lineage = {k: v for k, v in card.lineage.items() if v}


def _limits(card: ModelCard, facts: dict) -> None:
    limits: list[str] = []
    span = card.data.get("time_range") or {}
    if span.get("start") and span.get("end"):
        limits.append(
            f"trained on data from {span['start']} to {span['end']} ({span.get('column')}): behaviour on later "
            "periods is measured only by the live evaluation"
        )
    elif span.get("train_until"):
        limits.append(
            f"trained on data up to {span['train_until']} ({span.get('column')}), held out from "
            f"{span.get('holdout_from')}; the data's first day was not recorded"
        )
    else:
        limits.append("the data's time span is unknown (no timestamp column): recency of the training data is unclear")
    rows = card.data.get("holdout_rows")
    if rows:
        accuracy = card.holdout_metrics.get("accuracy")
        if accuracy is not None and 0 <= accuracy <= 1:
            half = 1.96 * math.sqrt(max(accuracy * (1 - accuracy), 1e-12) / rows)
            limits.append(
                f"holdout metrics come from {rows} rows: accuracy {accuracy:.3f} is known to about ±{half:.3f} "
                "(95% normal interval); smaller differences between versions are noise"
            )
        else:
            limits.append(f"holdout metrics come from {rows} rows")
    for section, name in (("slices", "slice"), ("fairness", "fairness group")):
        value = getattr(card, section) or {}
        for column, report in (value.get("columns") or {}).items():
            small = [
                f"{g.get('value')} ({g.get('rows')} rows)"
                for g in (report.get("groups") or [])
                if isinstance(g, dict) and (_int(g.get("rows")) or 0) < MIN_GROUP_ROWS
            ]
            if small:
                limits.append(
                    f"{name} {column}: {', '.join(small[:10])}{' ...' if len(small) > 10 else ''} had fewer than "
                    f"{MIN_GROUP_ROWS} holdout rows: not measured, the model's quality there is unknown"
                )
    delay = facts.get(tags.LABEL_DELAY)
    if delay:
        limits.append(f"labels arrive {delay} after the predictions: live metrics lag the model by that much")
    if card.live is None:
        limits.append("not yet measured on live traffic with labels")
    given = facts.get(tags.KNOWN_LIMITS)
    if given:
        limits.append(str(given))
    card.limits = limits + card.limits


# -- publishing -----------------------------------------------------------------------------------------------


def publish(client: Any, card: ModelCard, *, ui_url: str | None = None) -> PublishedCard:
    """Log the card (Markdown and HTML) to the version's training run, replacing the previous one, and tag the
    version with its generation time, the status it reflects and what made it; a stale mark is removed."""
    from mlops_provider.core.model_card_render import render_html, render_markdown

    started = time.perf_counter()
    if not card.run_id:
        raise ModelCardError(
            f"{card.model_name} v{card.version} has no training run to hold its card (registered from a model "
            "URI without a run); register versions with TrainModelOperator."
        )
    with tempfile.TemporaryDirectory(prefix="mlops-card-") as folder:
        for name, text in ((MARKDOWN_NAME, render_markdown(card)), (HTML_NAME, render_html(card))):
            with open(os.path.join(folder, name), "w", encoding="utf-8") as handle:
                handle.write(text)
        client.log_artifacts(card.run_id, folder, artifact_path=CARD_FOLDER)
    artifact_uri = f"runs:/{card.run_id}/{CARD_FOLDER}/{HTML_NAME}"
    version_tags = {
        tags.CARD_GENERATED_AT: card.generated_at,
        tags.CARD_STATUS: card.status,
        tags.CARD_TRIGGER: card.trigger,
        tags.CARD_URI: artifact_uri,
    }
    for key, value in version_tags.items():
        if card.recorded.get(key) != value:
            client.set_model_version_tag(card.model_name, card.version, key, value)
    if tags.CARD_STALE in card.recorded:
        client.delete_model_version_tag(card.model_name, card.version, tags.CARD_STALE)
    return PublishedCard(
        model_name=card.model_name,
        version=card.version,
        status=card.status,
        artifact_uri=artifact_uri,
        ui_url=card_ui_url(ui_url, card.experiment_id, card.run_id),
        seconds=time.perf_counter() - started,
    )


def refresh(
    client: Any, model_name: str, version: str, *, trigger: str, ui_url: str | None = None, **fallbacks: Any
) -> PublishedCard:
    """Gather and publish the card of one version (``fallbacks``: ``owner``, ``owner_source``, ``purpose``,
    ``purpose_source``, see ``gather``); returns where it is and how long it took."""
    started = time.perf_counter()
    card = gather(client, model_name, version, trigger=trigger, ui_url=ui_url, **fallbacks)
    published = publish(client, card, ui_url=ui_url)
    return PublishedCard(**{**asdict(published), "seconds": time.perf_counter() - started})


def mark_stale(client: Any, model_name: str, version: str, reason: str) -> None:
    """Say on the version that its card no longer reflects it (a regeneration failed after its status changed)."""
    text = f"{_now()}: {reason}"[:4000]
    client.set_model_version_tag(model_name, str(version), tags.CARD_STALE, text)


# -- small helpers --------------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _millis(value: Any) -> str | None:
    if not value:
        return None
    return datetime.fromtimestamp(int(value) / 1000, timezone.utc).isoformat(timespec="seconds")


def _json(text: Any) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):  # a tag edited by hand: treated as absent
        return None


def _split_list(text: str | None) -> list[str]:
    if not text or text == "-":
        return []
    return [part for part in text.split(",") if part]


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _finite(value: Any) -> bool:
    return _float(value) is not None


def _first_line(text: Any) -> str:
    return str(text or "").strip().splitlines()[0] if str(text or "").strip() else ""


def _who(actor: dict[str, Any]) -> str:
    """A history or gate actor as one line: the Airflow task, the user and the approver."""
    if not isinstance(actor, dict) or not actor:
        return ""
    parts = [" / ".join(str(actor[k]) for k in ("dag_id", "run_id", "task_id") if actor.get(k))]
    if actor.get("user"):
        parts.append(f"triggered by {actor['user']}")
    if actor.get("approved_by"):
        parts.append(f"approved by {actor['approved_by']}")
    return ", ".join(p for p in parts if p)
