"""Alerts: one readable message per lifecycle event, for people, with the numbers and the links behind it.

Five events raise an alert (``ALERT_KINDS``):

| kind | raised by | when |
|---|---|---|
| ``drift_detected`` | ``DetectDriftOperator`` | the data drifted from the reference |
| ``gate_rejected`` | ``EvaluateChallengerOperator``, ``PromoteModelOperator`` | the challenger failed the gate |
| ``performance_degraded`` | ``EvaluateLivePerformanceOperator`` | the champion's live metric dropped beyond noise |
| ``approval_waiting`` | ``PromotionApprovalOperator`` | a promotion waits for a human |
| ``model_stale`` | ``FleetReportOperator`` | a model of the catalogue was not retrained for too long |

An ``Alert`` is a small frozen value: the kind, the model, a one-line ``title``, a short ``body`` with the numbers,
``facts`` (label -> value) and ``links`` (the report, the MLflow model page, the Airflow task). It renders itself
for email (``subject``, ``text``, ``html``) and for Slack's incoming webhooks (``slack_payload``: ``text`` and
``blocks``). The ``*_alert`` functions build one from what the operators already return.

Plain Python: no Airflow import.
"""

from __future__ import annotations

import html as html_escape
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DRIFT_DETECTED = "drift_detected"
GATE_REJECTED = "gate_rejected"
PERFORMANCE_DEGRADED = "performance_degraded"
APPROVAL_WAITING = "approval_waiting"
MODEL_STALE = "model_stale"
ALERT_KINDS = (DRIFT_DETECTED, GATE_REJECTED, PERFORMANCE_DEGRADED, APPROVAL_WAITING, MODEL_STALE)
LABELS = {
    DRIFT_DETECTED: "Drift detected",
    GATE_REJECTED: "Gate rejected",
    PERFORMANCE_DEGRADED: "Live performance degraded",
    APPROVAL_WAITING: "Approval waiting",
    MODEL_STALE: "Model stale",
}
SUBJECT_PREFIX = "[MLOps]"
# Slack refuses a section text above 3000 characters and a message above 50 blocks.
_SLACK_TEXT_LIMIT = 2900


@dataclass(frozen=True)
class AlertLink:
    label: str
    url: str


@dataclass(frozen=True)
class Alert:
    """One event, told once: ``title`` (one line), ``body`` (a short paragraph with the numbers), ``facts`` (the
    numbers again as label -> value, in order) and ``links``. ``source`` says which Airflow task raised it
    (``dag_id``, ``run_id``, ``task_id``)."""

    kind: str
    model_name: str | None
    title: str
    body: str
    facts: tuple[tuple[str, str], ...] = ()
    links: tuple[AlertLink, ...] = ()
    source: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ALERT_KINDS:
            raise ValueError(f"Unknown alert kind {self.kind!r}; the kinds are {', '.join(ALERT_KINDS)}.")

    @property
    def label(self) -> str:
        return LABELS[self.kind]

    @property
    def subject(self) -> str:
        """An email subject: ``[MLOps] <title>``."""
        return f"{SUBJECT_PREFIX} {self.title}"

    def with_links(self, *links: AlertLink | None) -> Alert:
        """The alert with ``links`` added (None and links to an empty URL are left out)."""
        extra = tuple(link for link in links if link is not None and link.url)
        return Alert(self.kind, self.model_name, self.title, self.body, self.facts, self.links + extra, self.source)

    def with_source(self, **source: str) -> Alert:
        return Alert(self.kind, self.model_name, self.title, self.body, self.facts, self.links, dict(source))

    @property
    def text(self) -> str:
        """The whole message as plain text: title, body, facts, links."""
        lines = [self.title, "", self.body]
        if self.facts:
            lines += ["", *(f"{label}: {value}" for label, value in self.facts)]
        if self.links:
            lines += ["", *(f"{link.label}: {link.url}" for link in self.links)]
        if self.source:
            lines += ["", "Raised by " + " / ".join(f"{k} {v}" for k, v in self.source.items())]
        return "\n".join(lines)

    @property
    def html(self) -> str:
        """The whole message as a small HTML email body."""
        e = html_escape.escape
        parts = [f"<h3>{e(self.title)}</h3>", "<p>" + e(self.body).replace("\n", "<br>") + "</p>"]
        if self.facts:
            rows = "".join(f"<tr><th align='left'>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in self.facts)
            parts.append(f"<table cellpadding='4'>{rows}</table>")
        if self.links:
            items = "".join(f"<li><a href='{e(link.url, quote=True)}'>{e(link.label)}</a></li>" for link in self.links)
            parts.append(f"<ul>{items}</ul>")
        if self.source:
            parts.append("<p><small>Raised by " + e(" / ".join(f"{k} {v}" for k, v in self.source.items())))
            parts[-1] += "</small></p>"
        return "\n".join(parts)

    def slack_payload(self) -> dict[str, Any]:
        """Slack's incoming-webhook JSON: ``text`` (the notification and fallback) and ``blocks``."""
        s = _slack_escape
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip(f"*{s(self.title)}*")}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip(s(self.body))}},
        ]
        if self.facts:
            fields = [{"type": "mrkdwn", "text": _clip(f"*{s(k)}*\n{s(v)}", 1900)} for k, v in self.facts[:10]]
            blocks.append({"type": "section", "fields": fields})
        if self.links:
            links = " | ".join(f"<{link.url}|{s(link.label)}>" for link in self.links)
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(links)}]})
        return {"text": _clip(f"{self.label}: {self.title}"), "blocks": blocks}

    def to_dict(self) -> dict[str, Any]:
        """A small JSON-ready summary (for XCom and logs): kind, model, title, link URLs."""
        return {
            "kind": self.kind,
            "model_name": self.model_name,
            "title": self.title,
            "links": {link.label: link.url for link in self.links},
        }


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int = _SLACK_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:.{digits}g}"


def _model(name: str | None) -> str:
    return name or "the data"


# ------------------------------------------------------------------------------------------------- the events


def drift_alert(result: Mapping[str, Any], *, threshold: float | None = None) -> Alert:
    """From DetectDriftOperator's result (``drift_detected``, ``drift_share``, ``drifted_columns``, ``columns``,
    ``current``, ``reference``, ``report_uri``) and the dataset threshold ``drift_share``."""
    model = result.get("model_name")
    drifted = list(result.get("drifted_columns") or [])
    columns = dict(result.get("columns") or {})
    share = float(result.get("drift_share") or 0.0)
    current = dict(result.get("current") or {})
    reference = dict(result.get("reference") or {})
    title = f"Drift detected in {_model(model)}: {len(drifted)} of {len(columns)} columns drifted (share {share:.2f})"
    details = []
    for name in drifted:
        column = columns.get(name) or {}
        details.append(f"{name} ({column.get('method', '?')} score {_num(column.get('score'))}, "
                       f"threshold {_num(column.get('threshold'))})")  # fmt: skip
    over = f" reaches the threshold {threshold:.2f}" if threshold is not None else ""
    body = (
        f"The data at {current.get('uri', '?')} ({current.get('rows', '?')} rows) drifted from the reference "
        f"{reference.get('uri', '?')} ({reference.get('rows', '?')} rows): the drifted share {share:.2f}{over}. "
        f"Drifted columns: {'; '.join(details) or 'none'}."
    )
    predictions = result.get("prediction_drift") or {}
    if predictions.get("drift_detected"):
        body += f" The predictions drifted too: {', '.join(predictions.get('drifted_columns') or [])}."
    facts = [("Model", _model(model)), ("Drift share", f"{share:.2f}")]
    if threshold is not None:
        facts.append(("Threshold", f"{threshold:.2f}"))
    facts += [("Drifted columns", ", ".join(drifted) or "none"), ("Current rows", str(current.get("rows", "?")))]
    return Alert(DRIFT_DETECTED, model, title, body, tuple(facts))


def gate_alert(outcome: Mapping[str, Any]) -> Alert:
    """From a gate decision (``PromotionOutcome.to_dict()``): which checks failed, with both models' numbers."""
    model = outcome.get("model_name")
    version = outcome.get("version")
    reasons = list(outcome.get("reasons") or [])
    challenger = dict(outcome.get("challenger_metrics") or {})
    champion = dict(outcome.get("champion_metrics") or {})
    champion_version = outcome.get("champion_version")
    first = reasons[0] if reasons else "rejected"
    title = f"Gate rejected {model} v{version}: {first}"
    against = f"champion v{champion_version}" if champion_version else "no champion (cold start)"
    metrics = [
        f"{name} {_num(value)}" + (f" vs {_num(champion[name])}" if name in champion else "")
        for name, value in challenger.items()
    ]
    body = (
        f"{model} version {version} was compared with {against} and rejected: {'; '.join(reasons) or 'no reason'}."
        + (f" Challenger vs champion: {', '.join(metrics)}." if metrics else "")
        + (f" {outcome['note']}." if outcome.get("note") else "")
        + f" {model}@{outcome.get('alias', 'champion')} stays where it is."
    )
    facts = [("Model", str(model)), ("Challenger", f"v{version}"), ("Champion", f"v{champion_version}" if
             champion_version else "none")]  # fmt: skip
    facts += [(name, f"{_num(value)} vs {_num(champion.get(name))}") for name, value in list(challenger.items())[:6]]
    return Alert(GATE_REJECTED, model, title, body, tuple(facts))


def degradation_alert(event: Mapping[str, Any], statement: str | None = None) -> Alert:
    """From EvaluateLivePerformanceOperator's degradation (its Asset event's extra) and its ``statement``."""
    model = event.get("model_name")
    metric = event.get("metric")
    interval = list(event.get("interval") or [None, None])
    title = (
        f"Live performance of {model} v{event.get('version')} degraded: {metric} {_num(event.get('live'))} "
        f"(holdout {_num(event.get('holdout'))})"
    )
    body = statement or (
        f"{model} version {event.get('version')} on {event.get('labelled_rows')} labelled predictions made in "
        f"[{event.get('window_start')}, {event.get('window_end')}): {metric} {_num(event.get('live'))} "
        f"(interval {_num(interval[0])} to {_num(interval[1])}) against {_num(event.get('holdout'))} on its "
        f"holdout (p={_num(event.get('p_value'), 2)}): {event.get('kind')}."
    )
    facts = (
        ("Model", f"{model} v{event.get('version')}"),
        (str(metric), f"{_num(event.get('live'))} [{_num(interval[0])}, {_num(interval[1])}]"),
        ("Holdout", _num(event.get("holdout"))),
        ("p-value", _num(event.get("p_value"), 2)),
        ("Labelled rows", str(event.get("labelled_rows"))),
        ("Kind", str(event.get("kind"))),
    )
    return Alert(PERFORMANCE_DEGRADED, model, title, body, facts)


def approval_alert(model_name: str | None, subject: str, body: str, *, timeout: str | None = None) -> Alert:
    """From the approval request as the human sees it (its rendered ``subject`` and ``body``)."""
    title = f"Approval waiting: {subject.strip()}"
    text = body.strip() + (f"\n\nWithout an answer by {timeout} the request times out." if timeout else "")
    facts = (("Model", _model(model_name)),) + ((("Answer by", timeout),) if timeout else ())
    return Alert(APPROVAL_WAITING, model_name, title, text, facts)


def stale_alert(status: Mapping[str, Any], *, stale_after_periods: float) -> Alert:
    """From a model's row of the fleet report (``fleet.report.model_status``) flagged ``stale``."""
    model = status.get("name")
    trained = status.get("last_successful_training_run") or status.get("last_training") or "never"
    schedule = status.get("schedule") or "none"
    title = f"{model} is stale: not retrained since {trained} (schedule {schedule})"
    champion = status.get("champion_version")
    age = status.get("champion_age_hours")
    body = (
        f"{model} should retrain on the schedule {schedule}, but its newest training is from {trained}: more than "
        f"{stale_after_periods:g} periods ago. "
        + (
            f"The champion is version {champion}, champion for {_num(age)} hours. "
            if champion
            else "It has no champion. "
        )
        + "Check its lifecycle DAG's runs and its data."
    )
    facts = (
        ("Model", str(model)),
        ("Schedule", schedule),
        ("Last training", str(trained)),
        ("Champion", f"v{champion}" if champion else "none"),
    )
    return Alert(MODEL_STALE, model, title, body, facts)


def check_alert_kinds(value: Any, name: str = "alert_on") -> tuple[str, ...] | None:
    """``value`` as a tuple of known kinds (None stays None: every kind that applies); ``ValueError`` otherwise."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        shown = f"[{value!r}]" if isinstance(value, str) else f"[{', '.join(repr(k) for k in ALERT_KINDS[:2])}]"
        raise ValueError(f"{name}={value!r} must be a list of alert kinds; write {name}={shown}")
    unknown = [kind for kind in value if kind not in ALERT_KINDS]
    if unknown:
        import difflib

        prefixed = [kind for kind in ALERT_KINDS if str(unknown[0]) and kind.startswith(str(unknown[0]))]
        close = prefixed[:1] if len(prefixed) == 1 else difflib.get_close_matches(str(unknown[0]), ALERT_KINDS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"{name} names {unknown[0]!r}, which is no alert kind; {hint}the kinds are "
                         f"{', '.join(ALERT_KINDS)}")  # fmt: skip
    return tuple(dict.fromkeys(value))
