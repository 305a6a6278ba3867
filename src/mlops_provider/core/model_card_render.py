"""The model card as Markdown and as one self-contained HTML page (``render_markdown``, ``render_html``).

Both come from one layout (``sections``: titled blocks of key-value rows, tables, bullets and "not computed"
lines), so they say the same things. Every value read from MLflow is text a user controlled (a feature named
``<script>``, a reason, a URI): it is escaped where it is written, links are drawn only for http(s) URLs, and the
HTML page loads nothing from elsewhere.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from mlops_provider.core.model_card import ModelCard

MAX_ESTIMATOR_PARAMS = 40
MAX_GROUPS_SHOWN = 50


@dataclass(frozen=True)
class Code:
    """An identifier or value shown verbatim (a column, a URI, a fingerprint)."""

    text: str


@dataclass(frozen=True)
class Link:
    url: str
    label: str


Cell = Any  # str | Code | Link | number | None


@dataclass(frozen=True)
class Block:
    kind: str  # "pairs" | "table" | "bullets" | "text" | "missing"
    rows: list[Any]
    headers: tuple[str, ...] = ()


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def sections(card: ModelCard) -> list[tuple[str, list[Block]]]:
    """The card's layout: (title, blocks) per section, in reading order."""
    missing = card.missing
    out: list[tuple[str, list[Block]]] = []
    task: Any = [f"{card.task_type or '?'}, target ", Code(card.target)] if card.target else card.task_type or "-"
    summary: list[tuple[str, Any]] = [
        ("status", f"{card.status}: {card.status_detail}"),
        ("owner", _sourced(card.owner, card.owner_source)),
        ("purpose", _sourced(card.purpose, card.purpose_source)),
        ("task", task),
        ("registered", card.registered_at),
        ("card generated", f"{card.generated_at} (after: {card.trigger})"),
    ]
    if card.description:
        summary.append(("version description", card.description))
    blocks = [Block("pairs", summary)]
    for name in ("owner", "purpose"):
        if name in missing:
            blocks.append(Block("missing", [(f"{name.capitalize()} not recorded", f"To record it: {missing[name]}")]))
    out.append(("Summary", blocks))

    data = card.data
    rows_text = "-"
    if data.get("rows") is not None:
        rows_text = f"{data['rows']} ({data.get('train_rows')} train, {data.get('holdout_rows')} holdout"
        rows_text += f"; {data['split']} split)" if data.get("split") else ")"
    span = data.get("time_range") or {}
    if span.get("start"):
        span_text: Any = [Code(str(span.get("column"))), f": {span['start']} to {span.get('end')}"]
    elif span.get("train_until"):
        span_text = [Code(str(span.get("column"))), f": up to {span['train_until']} (first day not recorded)"]
    else:
        span_text = "-"
    data_rows: list[tuple[str, Any]] = [
        ("URI", Code(data["uri"]) if data.get("uri") else "-"),
        ("fingerprint", Code(data["fingerprint"]) if data.get("fingerprint") else "-"),
        ("rows", rows_text),
        ("time range", span_text),
    ]
    if span.get("train_until"):
        data_rows.append(("train until / holdout from", f"{span['train_until']} / {span.get('holdout_from')}"))
    data_blocks = [Block("pairs", data_rows)]
    if "time_range" in missing:
        data_blocks.append(Block("missing", [_not_computed(missing["time_range"], "Time range not recorded")]))
    out.append(("Training data", data_blocks))

    feature_rows: list[tuple[str, Any]] = [("features", _codes(card.features) or "-")]
    if card.numeric_features:
        feature_rows.append(("numeric", _codes(card.numeric_features)))
    if card.categorical_features:
        feature_rows.append(("categorical", _codes(card.categorical_features)))
    out.append(("Features", [Block("pairs", feature_rows)]))

    params = list(card.estimator_params.items())
    estimator_blocks = [Block("pairs", [("estimator", Code(card.estimator) if card.estimator else "-")])]
    if params:
        shown = [(Code(k), Code(v)) for k, v in params[:MAX_ESTIMATOR_PARAMS]]
        estimator_blocks.append(Block("table", shown, ("parameter", "value")))
        if len(params) > MAX_ESTIMATOR_PARAMS:
            estimator_blocks.append(Block("text", [f"... and {len(params) - MAX_ESTIMATOR_PARAMS} more (run params)"]))
    out.append(("Estimator", estimator_blocks))

    holdout = [(Code(k), v) for k, v in card.holdout_metrics.items()]
    out.append(("Holdout metrics", [Block("table", holdout, ("metric", "value"))] if holdout else
                [Block("text", ["no holdout metric was logged"])]))  # fmt: skip

    out.append(("Live metrics", _live_blocks(card)))
    out.append(("Slice metrics", _group_blocks(card.slices, "slices", missing, fairness=False)))
    out.append(("Fairness", _group_blocks(card.fairness, "fairness", missing, fairness=True)))
    out.append(("Feature importances", _importance_blocks(card)))
    out.append(("Gate decision and approvals", _gate_blocks(card)))
    if card.history:
        rows = [
            (f"#{e['seq']}", e.get("time"), e.get("action"), f"@{e.get('alias')}",
             f"v{e.get('from_version') or '-'} \u2192 v{e.get('to_version')}", e.get("by"), e.get("reason"))
            for e in card.history
        ]  # fmt: skip
        out.append(("Alias history of this version", [Block("table", rows, ("#", "time", "action", "alias",
                                                                         "move", "by", "reason"))]))  # fmt: skip
    lineage = [(k.replace("_", " "), _link_or_code(v)) for k, v in card.lineage.items()]
    out.append(("Lineage", [Block("pairs", lineage)]))
    out.append(("Known limits", [Block("bullets", card.limits or ["none recorded"])]))
    if card.notes:
        out.append(("Notes", [Block("bullets", card.notes)]))
    return out


def _not_computed(how: str, lead: str = "Not computed") -> tuple[str, str]:
    return lead, f"To compute it: {how}" if how else ""


def _sourced(value: str | None, source: str | None) -> Any:
    if not value:
        return "not recorded"
    return f"{value} ({source})" if source else value


def _codes(values: list[str]) -> list[Any]:
    parts: list[Any] = []
    for i, value in enumerate(values):
        if i:
            parts.append(", ")
        parts.append(Code(value))
    return parts


def _link_or_code(value: str) -> Any:
    return Link(value, value) if re.match(r"^https?://", value) else Code(value)


def _live_blocks(card: ModelCard) -> list[Block]:
    if not card.live:
        return [Block("missing", [_not_computed(card.missing.get("live", ""))])]
    rows = [
        (Code(name), m["value"], f"[{_fmt(m.get('low'))}, {_fmt(m.get('high'))}]", card.holdout_metrics.get(name))
        for name, m in card.live["metrics"].items()
    ]
    blocks = [
        Block("text", [f"newest evaluated window, {card.live.get('rows', 0)} labelled rows"]),
        Block("table", rows, ("metric", "live", "interval", "holdout")),
    ]
    verdict = card.live.get("verdict")
    if verdict:
        window = f"[{verdict.get('window_start')}, {verdict.get('window_end')})"
        blocks.append(
            Block("pairs", [("verdict", f"{verdict.get('outcome')} ({verdict.get('kind')}), window {window}"),
                            ("degraded", "yes" if verdict.get("degraded") else "no")])
        )  # fmt: skip
    return blocks


def _group_blocks(
    value: dict[str, Any] | None, section: str, missing: dict[str, str], *, fairness: bool
) -> list[Block]:
    if not value:
        return [Block("missing", [_not_computed(missing.get(section, ""))])]
    blocks: list[Block] = [Block("text", [f"source: {value.get('source')}"])]
    if value.get("metrics"):  # only the flat run metrics were found
        flat: list[tuple[Any, ...]] = [(Code(k), v) for k, v in value["metrics"].items()]
        return blocks + [Block("table", flat, ("metric", "value"))]
    for column, report in (value.get("columns") or {}).items():
        if not isinstance(report, dict):
            continue
        groups = [g for g in report.get("groups") or [] if isinstance(g, dict)]
        rows: list[tuple[Any, ...]]
        if fairness:
            worst = report.get("worst_group") or {}
            summary = [
                ("demographic parity difference", report.get("demographic_parity_difference")),
                ("equalized odds difference", report.get("equalized_odds_difference")),
            ]
            if worst:
                summary.append(
                    ("worst group", f"{worst.get('value')} on {worst.get('metric')}: {_fmt(worst.get('score'))}")
                )
            blocks.append(Block("text", [["column ", Code(column)]]))
            blocks.append(Block("pairs", summary))
            names = sorted({k for g in groups for k in g if k not in ("value", "rows", "metrics")})
            rows = [(Code(str(g.get("value"))), g.get("rows"), *(g.get(n) for n in names)) for g in groups]
            headers = ("group", "rows", *names)
        else:
            metric_names = sorted({k for g in groups for k in (g.get("metrics") or {})})
            rows = [
                (Code(str(g.get("value"))), g.get("rows"), *((g.get("metrics") or {}).get(n) for n in metric_names))
                for g in groups
            ]
            headers = ("group", "rows", *metric_names)
            blocks.append(Block("text", [["column ", Code(column)]]))
            worst = report.get("worst") or {}
            if worst:
                blocks.append(Block("pairs", [(f"worst {m}", f"{w.get('value')}: {_fmt(w.get('score'))}")
                                              for m, w in worst.items() if isinstance(w, dict)]))  # fmt: skip
        blocks.append(Block("table", rows[:MAX_GROUPS_SHOWN], headers))
    return blocks


def _importance_blocks(card: ModelCard) -> list[Block]:
    value = card.importances
    if not value:
        return [Block("missing", [_not_computed(card.missing.get("importances", ""))])]
    rows = [(Code(row["feature"]), row["importance"]) for row in value["top"]]
    shown = f"top {len(rows)} of {value['features']}" if value["features"] > len(rows) else f"all {len(rows)}"
    return [Block("text", [f"method: {value['method']}; {shown}"]), Block("table", rows, ("feature", "importance"))]


def _gate_blocks(card: ModelCard) -> list[Block]:
    gate = card.gate
    if not gate:
        return [Block("missing", [_not_computed(card.missing.get("gate", ""), "No gate decision yet")])]
    against = gate.get("champion_version")
    pairs: list[tuple[str, Any]] = [
        ("decision", gate["decision"]),
        ("when", gate.get("time")),
        ("against", f"v{against}" if against else "no champion (cold start)"),
        ("decided by", gate.get("by") or "-"),
    ]
    if gate.get("note"):
        pairs.append(("note", gate["note"]))
    blocks = [Block("pairs", pairs)]
    if gate.get("reasons"):
        blocks.append(Block("bullets", list(gate["reasons"])))
    challenger, champion = gate.get("challenger_metrics") or {}, gate.get("champion_metrics") or {}
    if challenger:
        rows = [(Code(k), v, champion.get(k), _rules(gate["thresholds"].get(k))) for k, v in challenger.items()]
        blocks.append(Block("table", rows, ("metric", f"v{card.version}", f"v{against}" if against else "champion",
                                            "threshold")))  # fmt: skip
    approvals = [
        f"{a['approved_by']} approved at {a.get('time')} ({a.get('action')}"
        + (f" to @{a['alias']})" if a.get("alias") else ")")
        for a in card.approvals
    ]
    blocks.append(Block("bullets", approvals or ["no human approval recorded"]))
    return blocks


def _rules(rules: Any) -> Any:
    if not isinstance(rules, dict) or not rules:
        return "-"
    return Code(", ".join(f"{k} {v}" for k, v in rules.items()))


# -- Markdown -----------------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|#!])")
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def _md_text(text: str) -> str:
    """Prose safe in Markdown and in a table cell: one line, no raw HTML, no accidental emphasis or links."""
    one_line = re.sub(r"\s+", " ", str(text))
    return _MD_UNDERSCORE.sub(r"\\_", _MD_SPECIAL.sub(r"\\\1", one_line))


def _md_code(text: str) -> str:
    one_line = " ".join(str(text).split()).replace("|", "\\|")
    fence = "``" if "`" in one_line else "`"
    return f"{fence} {one_line} {fence}" if fence == "``" else f"`{one_line}`"


def _md(cell: Cell) -> str:
    if isinstance(cell, list):
        return "".join(_md(part) for part in cell)
    if isinstance(cell, Code):
        return _md_code(cell.text)
    if isinstance(cell, Link):
        url = cell.url.replace("(", "%28").replace(")", "%29").replace(" ", "%20").replace("|", "%7C")
        return f"[{_md_text(cell.label)}]({url})"
    if isinstance(cell, (int, float)) or cell is None:
        return _fmt(cell)
    return _md_text(cell)


def render_markdown(card: ModelCard) -> str:
    lines = [f"# Model card: {_md_text(card.model_name)} v{_md_text(card.version)}", ""]
    for title, blocks in sections(card):
        lines += [f"## {title}", ""]
        for block in blocks:
            lines += _md_block(block)
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _md_block(block: Block) -> list[str]:
    if block.kind == "pairs":
        return ["| | |", "|---|---|", *(f"| {_md(k)} | {_md(v)} |" for k, v in block.rows)]
    if block.kind == "table":
        return [
            "| " + " | ".join(_md_text(h) for h in block.headers) + " |",
            "|" + "---|" * len(block.headers),
            *("| " + " | ".join(_md(c) for c in row) + " |" for row in block.rows),
        ]
    if block.kind == "bullets":
        return [f"- {_md(item)}" for item in block.rows]
    if block.kind == "missing":
        return [f"_{_md(lead)}._" + (f" {_md(how)}." if how else "") for lead, how in block.rows]
    return [_md(item) for item in block.rows]


# -- HTML ---------------------------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1f2328;max-width:1000px;margin:24px auto;
padding:0 16px}h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;border-bottom:1px solid #d0d7de;padding-bottom:4px;
margin-top:28px}table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}td,th{border:1px solid #d0d7de;
padding:3px 8px;text-align:left;vertical-align:top}th{background:#f6f8fa}table.pairs td:first-child{color:#57606a;
white-space:nowrap}code{font:12px ui-monospace,Menlo,Consolas,monospace;background:#f6f8fa;padding:0 3px;
word-break:break-all}.missing{color:#9a6700;background:#fff8c5;padding:4px 8px;border-radius:4px;display:inline-block}
.status{display:inline-block;padding:2px 8px;border-radius:10px;background:#ddf4ff;color:#0969da;font-weight:600}
"""


def _h(cell: Cell) -> str:
    if isinstance(cell, list):
        return "".join(_h(part) for part in cell)
    if isinstance(cell, Code):
        return f"<code>{html.escape(cell.text)}</code>"
    if isinstance(cell, Link):
        if re.match(r"^https?://", cell.url):
            return f'<a href="{html.escape(cell.url, quote=True)}">{html.escape(cell.label)}</a>'
        return html.escape(cell.label)
    if isinstance(cell, (int, float)) or cell is None:
        return html.escape(_fmt(cell))
    return html.escape(str(cell))


def render_html(card: ModelCard) -> str:
    title = f"Model card: {card.model_name} v{card.version}"
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p><span class="status">{html.escape(card.status)}</span> generated {html.escape(card.generated_at)}</p>',
    ]
    for heading, blocks in sections(card):
        body.append(f"<h2>{html.escape(heading)}</h2>")
        body += [_html_block(block) for block in blocks]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _html_block(block: Block) -> str:
    if block.kind == "pairs":
        rows = "".join(f"<tr><td>{_h(k)}</td><td>{_h(v)}</td></tr>" for k, v in block.rows)
        return f'<table class="pairs">{rows}</table>'
    if block.kind == "table":
        head = "".join(f"<th>{html.escape(h)}</th>" for h in block.headers)
        rows = "".join("<tr>" + "".join(f"<td>{_h(c)}</td>" for c in row) + "</tr>" for row in block.rows)
        return f"<table><tr>{head}</tr>{rows}</table>"
    if block.kind == "bullets":
        return "<ul>" + "".join(f"<li>{_h(item)}</li>" for item in block.rows) + "</ul>"
    if block.kind == "missing":
        return "".join(
            f'<p class="missing"><b>{_h(lead)}.</b>{f" {_h(how)}." if how else ""}</p>' for lead, how in block.rows
        )
    return "".join(f"<p>{_h(item)}</p>" for item in block.rows)
