"""The live-performance report: one self-contained HTML page (inline SVG, no scripts, nothing downloaded).

For each model version: the live primary metric per window with its confidence interval, against the
version's training holdout value as a dashed line; then this window's table of every metric, and the
decision paragraph.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Any

WIDTH, HEIGHT, PAD = 640, 220, 40
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


@dataclass(frozen=True)
class Point:
    """One window of one version: when it ended, the metric and its interval."""

    window_end: datetime
    value: float
    low: float
    high: float
    rows: int


def _scale(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if high - low < 1e-9:
        low, high = low - 0.05, high + 0.05
    margin = (high - low) * 0.1
    return low - margin, high + margin


def _chart(points: list[Point], baseline: float | None, metric: str, colour: str) -> str:
    if not points:
        return "<p>No window of this version has labelled rows yet.</p>"
    values = [v for p in points for v in (p.low, p.high, p.value)] + ([baseline] if baseline is not None else [])
    low, high = _scale(values)
    times = [p.window_end.timestamp() for p in points]
    first, last = min(times), max(times)
    span = (last - first) or 1.0

    def x(t: float) -> float:
        return PAD + (t - first) / span * (WIDTH - 2 * PAD) if len(points) > 1 else WIDTH / 2

    def y(v: float) -> float:
        return HEIGHT - PAD - (v - low) / (high - low) * (HEIGHT - 2 * PAD)

    parts = [f'<svg width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{html.escape(metric)} over time">']
    parts.append(f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#fff" stroke="#ddd"/>')
    for tick in (low, (low + high) / 2, high):
        parts.append(f'<text x="4" y="{y(tick) + 4:.1f}" font-size="10" fill="#666">{tick:.3g}</text>')
    if baseline is not None:
        parts.append(
            f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(baseline):.1f}" y2="{y(baseline):.1f}" '
            f'stroke="#444" stroke-dasharray="5,4"><title>holdout {baseline:.4g}</title></line>'
        )
    for p in points:
        px = x(p.window_end.timestamp())
        parts.append(
            f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{y(p.low):.1f}" y2="{y(p.high):.1f}" stroke="{colour}" '
            'stroke-opacity="0.4" stroke-width="6"/>'
        )
    path = " ".join(f"{x(p.window_end.timestamp()):.1f},{y(p.value):.1f}" for p in points)
    parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
    for p in points:
        label = f"{p.window_end:%Y-%m-%d %H:%M}: {p.value:.4g} [{p.low:.4g}, {p.high:.4g}], {p.rows:,} rows"
        parts.append(
            f'<circle cx="{x(p.window_end.timestamp()):.1f}" cy="{y(p.value):.1f}" r="3" fill="{colour}">'
            f"<title>{html.escape(label)}</title></circle>"
        )
    parts.append(
        f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="10" fill="#666">{points[0].window_end:%Y-%m-%d}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" font-size="10" fill="#666" text-anchor="end">'
        f"{points[-1].window_end:%Y-%m-%d}</text></svg>"
    )
    return "".join(parts)


def render_report(result: dict[str, Any], history: dict[str, list[Point]], baselines: dict[str, float | None]) -> str:
    """``result``: ``LivePerformanceResult.to_dict()``; ``history``: per version, its points oldest first
    (this window included); ``baselines``: per version, the holdout value of the primary metric."""
    metric = result["primary_metric"]
    title = f"Live performance of {result['model_name']}"
    outcome_colour = {"degraded": "#b00020", "stable": "#1b5e20"}.get(result["outcome"], "#8a6d00")
    sections = []
    for index, version in enumerate(sorted(history, key=int)):
        info = result["versions"].get(version, {})
        role = info.get("role", "not in this window")
        sections.append(
            f"<h3>Version {html.escape(version)} ({html.escape(role)})</h3>"
            + _chart(history[version], baselines.get(version), metric, COLOURS[index % len(COLOURS)])
        )
    rows = []
    for version, info in sorted(result["versions"].items(), key=lambda item: int(item[0])):
        for name, estimate in info["metrics"].items():
            baseline = info["baseline"].get(name)
            rows.append(
                "<tr>"
                f"<td>{html.escape(version)}</td><td>{html.escape(info['role'])}</td><td>{html.escape(name)}</td>"
                f"<td>{estimate['value']:.4g}</td><td>{estimate['low']:.4g} to {estimate['high']:.4g}</td>"
                f"<td>{'' if baseline is None else f'{baseline:.4g}'}</td><td>{estimate['rows']:,}</td>"
                "</tr>"
            )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:24px;max-width:980px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ddd;padding:4px 8px;text-align:right}}td:nth-child(-n+3){{text-align:left}}
.verdict{{padding:12px;border-left:6px solid {outcome_colour};background:#f7f7f7}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>Window [{html.escape(result["window_start"])}, {html.escape(result["window_end"])}): predictions made in it, with the
labels known when the check ran. {result["labelled_rows"]:,} labelled ids.</p>
<div class="verdict"><strong>{html.escape(result["outcome"].replace("_", " "))}: {html.escape(result["kind"])}</strong>
<p>{html.escape(result["statement"])}</p></div>
<h2>{html.escape(metric)} per window (dots: live, bars: interval, dashed: training holdout)</h2>
{"".join(sections)}
<h2>This window</h2>
<table><tr><th>version</th><th>role</th><th>metric</th><th>live</th><th>interval</th><th>holdout</th><th>rows</th></tr>
{"".join(rows)}</table>
</body></html>
"""
