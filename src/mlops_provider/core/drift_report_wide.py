"""The drift report of a wide check: drifted columns first with a small chart each, the rest in one table.

Evidently's report adds a full widget set per column; at hundreds of columns the page takes minutes to build
and is too long to read. This page is plain HTML and inline SVG (no script, nothing fetched): the verdict and
its numbers, then every drifted column (strongest evidence first) with its test, score and a chart of both
sides from the sketch the check kept, then one compact row per undrifted column. Its size grows with the
number of drifted columns charted (at most ``MAX_CHARTS``) plus a table row per column.
"""

from __future__ import annotations

from html import escape
from typing import Any

from mlops_provider.core.drift import DriftResult

MAX_CHARTS = 100
_WIDTH, _HEIGHT = 300, 70
_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}
.drift{color:#b3261e;font-weight:600}.ok{color:#2e7d32}.num{text-align:right;font-variant-numeric:tabular-nums}
.key span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
"""


def render_wide_report(result: DriftResult, sketches: dict[str, dict[str, Any]], *, title: str = "Data drift") -> str:
    """The page for ``result``; ``sketches`` holds a chart's data per drifted column (``core.drift_wide``)."""
    columns = result.columns
    drifted = sorted(result.drifted_columns, key=lambda name: (columns[name].score, name))
    stable = sorted(
        (name for name in columns if not columns[name].drifted), key=lambda name: (columns[name].score, name)
    )
    verdict = "DRIFT DETECTED" if result.drift_detected else "No dataset drift"
    rows = result.tested_rows
    sampled = (
        f" (tested on seeded samples of {rows['reference']} and {rows['current']} rows)" if rows["sampled"] else ""
    )
    settings = result.settings
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p class='{'drift' if result.drift_detected else 'ok'}'>{verdict}: {len(drifted)} of {len(columns)} "
        f"columns drifted (share {result.drift_share:.3f}; the dataset drifts at {settings['drift_share']:g}).</p>",
        f"<p>Reference {result.reference_rows} rows, current {result.current_rows} rows{sampled}. Methods: numerical "
        f"<code>{escape(str(settings['num_method']))}</code> (drift when score &lt; {settings['num_threshold']:g}), "
        f"categorical <code>{escape(str(settings['cat_method']))}</code> (&lt; {settings['cat_threshold']:g})"
        + (
            ", with per-column overrides"
            if settings.get("per_column_method") or settings.get("per_column_threshold")
            else ""
        )  # fmt: skip
        + ". Each column is tested once; for p-value methods a lower score is stronger evidence.</p>",
        f"<h2>Drifted columns ({len(drifted)})</h2>",
    ]
    if drifted:
        parts.append(
            "<p class='key'>Share of rows per bin or category:<span style='background:#9e9e9e'></span>reference"
            "<span style='background:#e67e22'></span>current</p>"
        )
        parts.append("<table><tr><th>column</th><th>type</th><th>method</th><th>score</th><th>threshold</th>"
                     "<th>reference vs current</th></tr>")  # fmt: skip
        for index, name in enumerate(drifted):
            chart = _chart(sketches.get(name)) if index < MAX_CHARTS else "(chart left out: see the score)"
            parts.append(_row(name, columns[name], chart))
        parts.append("</table>")
    else:
        parts.append("<p>None.</p>")
    parts.append(f"<h2>Columns without drift ({len(stable)})</h2>")
    if stable:
        parts.append("<table><tr><th>column</th><th>type</th><th>method</th><th>score</th><th>threshold</th></tr>")
        parts.extend(_row(name, columns[name], None) for name in stable)
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _row(name: str, column: Any, chart: str | None) -> str:
    cells = [
        f"<td class='{'drift' if column.drifted else ''}'>{escape(name)}</td>",
        f"<td>{escape(column.column_type)}</td>",
        f"<td>{escape(column.method)}</td>",
        f"<td class='num'>{column.score:.4g}</td>",
        f"<td class='num'>{column.threshold:g}</td>",
    ]
    if chart is not None:
        cells.append(f"<td>{chart}</td>")
    return "<tr>" + "".join(cells) + "</tr>"


def _chart(sketch: dict[str, Any] | None) -> str:
    """Paired bars (reference grey, current orange) per bin or category, as inline SVG."""
    if not sketch:
        return ""
    reference, current = sketch["reference"], sketch["current"]
    top = max([*reference, *current, 1e-9])
    slot = _WIDTH / max(len(reference), 1)
    bar = max(slot / 2 - 1, 1)
    shapes = []
    for index, (ref, cur) in enumerate(zip(reference, current, strict=False)):
        for offset, value, colour in ((0.0, ref, "#9e9e9e"), (bar, cur, "#e67e22")):
            height = (_HEIGHT - 14) * value / top
            shapes.append(
                f"<rect x='{index * slot + offset:.1f}' y='{_HEIGHT - 14 - height:.1f}' width='{bar:.1f}' "
                f"height='{height:.1f}' fill='{colour}'/>"
            )
    if sketch["kind"] == "histogram":
        edges = sketch["edges"]
        caption = f"{edges[0]:.4g} .. {edges[-1]:.4g}; mean {sketch['mean'][0]:.4g} -> {sketch['mean'][1]:.4g}"
    else:
        caption = ", ".join(sketch["labels"][:4]) + ("..." if len(sketch["labels"]) > 4 else "")
    shapes.append(f"<text x='0' y='{_HEIGHT - 2}' font-size='10'>{escape(caption)}</text>")
    return f"<svg width='{_WIDTH}' height='{_HEIGHT}' role='img'>{''.join(shapes)}</svg>"
