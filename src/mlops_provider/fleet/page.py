"""The fleet report as one HTML page: a row per model (``<tr id="model-<name>">``), its flags highlighted.

The same page serves the Airflow UI's fleet view (``plugins.fleet``, with links into Airflow) and the static report
``FleetReportOperator`` writes for users without the plugin. Plain Python: no Airflow, no MLflow.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from mlops_provider.fleet.report import FLAGS

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; font-size: 14px; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: 0.35em 0.5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; position: sticky; top: 0; }
tr.flagged { background: #fff4e5; }
small, .muted { color: #666; }
.flag { display: inline-block; padding: 0 0.4em; margin: 0 0.2em 0.2em 0; border-radius: 3px; color: #fff; }
.flag.stale, .flag.drift_unanswered, .flag.no_labels { background: #c77700; }
.flag.no_champion { background: #b00020; } .flag.not_trained { background: #666; }
.flag.approval_pending { background: #1565c0; }
.ok { color: #2e7d32; } .bad { color: #b00020; font-weight: 600; }
.errors { border: 1px solid #b00020; padding: 0.5em 1em; background: #fdecea; white-space: pre-wrap; }
"""

_COLUMNS = (
    "Model",
    "Owners",
    "Champion",
    "Last training",
    "Drift",
    "Live performance",
    "Runs",
    "Approvals",
    "Flags",
    "Links",
)
FLAG_MEANINGS = {
    "not_trained": "not in the registry yet",
    "no_champion": "versions exist, none is champion",
    "stale": "no successful training within its schedule",
    "drift_unanswered": "drift found and no version trained since",
    "no_labels": "no labels to judge live performance for several windows",
    "approval_pending": "a promotion waits for a human",
}
assert set(FLAG_MEANINGS) == set(FLAGS)


# The Airflow UI embeds a plugin's page in a sandboxed iframe that may neither navigate the UI nor open tabs; the page
# is of the UI's own origin, so it follows its links from the UI's document instead (a no-op outside a frame).
_FOLLOW_LINKS_FROM_THE_UI = """<script>
document.addEventListener("click", function (event) {
  var link = event.target.closest("a[href]");
  if (!link || window.top === window) return;
  try {
    var outside = window.top.document.createElement("a");
    outside.href = link.href;
    if (link.target === "_blank") { outside.target = "_blank"; outside.rel = "noopener"; }
    window.top.document.body.appendChild(outside);
    outside.click();
    outside.remove();
    event.preventDefault();
  } catch (error) {}
});
</script>"""


def render_html(report: dict[str, Any], *, airflow_url: str | None = None, title: str = "Model fleet") -> str:
    """The page; with ``airflow_url`` (``""`` for the Airflow UI's own origin) DAGs and runs link into Airflow."""
    counts = report.get("counts", {})
    summary = ", ".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in counts.items())
    rows = "\n".join(_row(model, airflow_url) for model in report.get("models", []))
    header = "".join(f"<th>{name}</th>" for name in _COLUMNS)
    legend = "; ".join(f"<b>{flag}</b>: {meaning}" for flag, meaning in FLAG_MEANINGS.items())
    errors = report.get("catalogue_errors") or []
    error_block = (
        f'<div class="errors" id="catalogue-errors"><b>Catalogue entries left out:</b>\n{_lines(errors)}</div>'
        if errors
        else ""
    )
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>Generated at {_text(report.get("generated_at"))} from the catalogue {_text(report.get("catalogue"))}.
Stale after {_text(report.get("stale_after_periods"))} schedule periods without a successful training;
no labels after {_text(report.get("no_labels_windows"))} windows without.</p>
<p id="counts">{summary}</p>
{error_block}
<table>
<thead><tr>{header}</tr></thead>
<tbody>
{rows}
</tbody>
</table>
<p class="muted"><small>{legend}</small></p>
{_FOLLOW_LINKS_FROM_THE_UI if airflow_url is not None else ""}
</body></html>
"""


def _row(model: dict[str, Any], airflow_url: str | None) -> str:
    flags = model.get("flags") or []
    links = model.get("links") or {}
    dags = links.get("dags") or {}
    name = str(model["name"])
    description = f"<br><small>{_text(model['description'])}</small>" if model.get("description") else ""
    tags_line = f"<br><small>{_join(model.get('tags'))}</small>" if model.get("tags") else ""
    cells = [
        f"<strong>{html.escape(name)}</strong>{description}{tags_line}",
        _join(model.get("owners")),
        _champion(model),
        _training(model),
        _drift(model.get("drift"), links.get("drift_report")),
        _live(model.get("live"), links.get("live_report")),
        _runs(model.get("runs") or {}, airflow_url),
        _approvals(model.get("pending_approvals"), airflow_url),
        "".join(f'<span class="flag {html.escape(f)}">{html.escape(f)}</span>' for f in flags)
        or '<span class="ok">ok</span>',
        "<br>".join(_links(links, dags, airflow_url)),
    ]
    css = ' class="flagged"' if flags else ""
    body = "".join(f"<td>{cell}</td>" for cell in cells)
    return f'<tr id="model-{html.escape(name, quote=True)}"{css}>{body}</tr>'


def _champion(model: dict[str, Any]) -> str:
    version = model.get("champion_version")
    if version is None:
        return "-"
    age = model.get("champion_age_hours")
    since = f"<br><small>for {_age(age)}</small>" if age is not None else ""
    return f"v{html.escape(str(version))}{since}"


def _training(model: dict[str, Any]) -> str:
    if model.get("newest_version") is None:
        return "-"
    decision = model.get("last_gate_decision")
    gate = f"<br><small>gate: {_text(decision)}</small>" if decision else ""
    return f"v{_text(model['newest_version'])} at {_text(model.get('last_training'))}{gate}"


def _drift(drift: dict[str, Any] | None, report: str | None) -> str:
    if not drift:
        return "-"
    share = drift.get("share")
    shown = f"{share:.0%}" if isinstance(share, (int, float)) else "?"
    columns = f"{drift.get('drifted_columns', '?')}/{drift.get('tested_columns', '?')} columns"
    verdict = (
        f'<span class="bad">drift</span> {shown} ({columns})'
        if drift.get("detected")
        else f'<span class="ok">no drift</span> {shown} ({columns})'
    )
    return f"{verdict}<br><small>checked {_text(drift.get('checked_at'))}</small>{_link(report, 'report')}"


def _live(live: dict[str, Any] | None, report: str | None) -> str:
    if not live:
        return "-"
    parts = []
    if live.get("metric") is not None and live.get("value") is not None:
        baseline = f" (holdout {live['holdout']:.4g})" if live.get("holdout") is not None else ""
        parts.append(f"{_text(live['metric'])} {live['value']:.4g}{baseline}")
    verdict = live.get("verdict") or {}
    if verdict:
        outcome = str(verdict.get("outcome"))
        css = "bad" if verdict.get("degraded") else ("muted" if outcome.startswith("insufficient") else "ok")
        without = int(verdict.get("windows_without_labels") or 0)
        waiting = f", {without} window{'s' if without != 1 else ''} without labels" if without else ""
        parts.append(f'<span class="{css}">{html.escape(outcome)}</span>{waiting}')
        parts.append(f"<small>window to {_text(verdict.get('window_end'))}</small>")
    return "<br>".join(parts) + _link(report, "report")


def _runs(runs: dict[str, dict[str, Any]], airflow_url: str | None) -> str:
    if not runs:
        return "-"
    lines = []
    for dag_id, run in runs.items():
        state = html.escape(str(run.get("state")))
        css = "bad" if run.get("state") == "failed" else ("ok" if run.get("state") == "success" else "muted")
        label = f'{html.escape(dag_id)}: <span class="{css}">{state}</span>'
        if airflow_url is not None and run.get("run_id"):
            href = f"{airflow_url}/dags/{quote(dag_id, safe='')}/runs/{quote(str(run['run_id']), safe='')}"
            label = f'<a href="{html.escape(href, quote=True)}" target="_top">{label}</a>'
        lines.append(f"{label}<br><small>{_text(run.get('end') or run.get('start'))}</small>")
    return "<br>".join(lines)


def _approvals(pending: list[dict[str, Any]] | None, airflow_url: str | None) -> str:
    if pending is None:
        return '<span class="muted">-</span>'
    if not pending:
        return "none"
    lines = []
    for item in pending:
        label = f"{_text(item.get('subject'))}<br><small>since {_text(item.get('since'))}</small>"
        if airflow_url is not None and item.get("dag_id") and item.get("run_id"):
            href = (
                f"{airflow_url}/dags/{quote(str(item['dag_id']), safe='')}/runs/{quote(str(item['run_id']), safe='')}"
                f"/tasks/{quote(str(item.get('task_id', '')), safe='')}/required_actions"
            )
            label = f'<a href="{html.escape(href, quote=True)}" target="_top">{label}</a>'
        lines.append(label)
    return "<br>".join(lines)


def _links(links: dict[str, Any], dags: dict[str, str], airflow_url: str | None) -> list[str]:
    shown = []
    if links.get("mlflow_model"):
        shown.append(f'<a href="{html.escape(links["mlflow_model"], quote=True)}" target="_blank">MLflow model</a>')
    for kind, dag_id in dags.items():
        if airflow_url is None:
            shown.append(f"DAG {html.escape(dag_id)}")
        else:
            href = f"{airflow_url}/dags/{quote(dag_id, safe='')}"
            shown.append(f'<a href="{html.escape(href, quote=True)}" target="_top" title="{html.escape(kind)}">'
                         f"{html.escape(dag_id)}</a>")  # fmt: skip
    return shown


def _link(href: str | None, label: str) -> str:
    return f'<br><a href="{html.escape(href, quote=True)}" target="_blank">{label}</a>' if href else ""


def _age(hours: float) -> str:
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def _lines(values: Iterable[Any]) -> str:
    return "\n".join(f"- {html.escape(str(v))}" for v in values)


def _text(value: Any) -> str:
    return "-" if value is None or value == "" else html.escape(str(value))


def _join(values: Iterable[Any] | None) -> str:
    return html.escape(", ".join(str(v) for v in values or ())) or "-"
