"""Freshness: whether the materialisation intervals recorded in the registry reach a point in time.

Recorded intervals are the materialised windows, half-open ``[start, end)``: a view materialised up to
``end`` holds every row stamped before ``end``, and the row stamped exactly at ``end`` comes with the next
window. So ``[a, b)`` and ``[b, c)`` cover ``[a, c)`` with no gap, and a view is fresh until ``t`` once an
interval ends at or after ``t``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlops_provider.core.errors import MaterializationWindowError
from mlops_provider.core.features.materialize import resolve_feature_views
from mlops_provider.core.windows import to_utc

if TYPE_CHECKING:
    from feast import FeatureStore


def merge_intervals(intervals: Sequence[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Union of half-open intervals; touching (``[a, b)`` then ``[b, c)``: consecutive windows or slices) or
    overlapping ones merge."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted((to_utc(s, name="interval start"), to_utc(e, name="interval end")) for s, e in intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


@dataclass
class ViewFreshness:
    name: str
    fresh: bool
    materialized_until: datetime | None
    covered_from: datetime | None
    intervals: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fresh": self.fresh,
            "materialized_until": self.materialized_until.isoformat() if self.materialized_until else None,
            "covered_from": self.covered_from.isoformat() if self.covered_from else None,
            "intervals": self.intervals,
            "reason": self.reason,
        }


@dataclass
class FreshnessReport:
    fresh_until: datetime
    covered_since: datetime | None
    views: list[ViewFreshness]

    @property
    def fresh(self) -> bool:
        return all(view.fresh for view in self.views)

    def summary(self) -> str:
        head = f"Freshness up to {self.fresh_until.isoformat()}"
        if self.covered_since:
            head += f" without gaps since {self.covered_since.isoformat()}"
        lines = [head + (": all feature views are fresh." if self.fresh else ": not yet.")]
        lines += [f"  {view.name}: {'fresh' if view.fresh else 'stale'} ({view.reason})" for view in self.views]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fresh": self.fresh,
            "fresh_until": self.fresh_until.isoformat(),
            "covered_since": self.covered_since.isoformat() if self.covered_since else None,
            "feature_views": [view.to_dict() for view in self.views],
        }


def assess_view_freshness(
    name: str,
    intervals: Sequence[tuple[datetime, datetime]],
    fresh_until: datetime,
    covered_since: datetime | None = None,
) -> ViewFreshness:
    """Fresh when the newest materialised interval reaches ``fresh_until`` (every row stamped before it is
    materialised); with ``covered_since``, the materialised intervals must also cover
    ``[covered_since, fresh_until)`` without a gap."""
    merged = merge_intervals(intervals)
    if not merged:
        return ViewFreshness(name, False, None, None, 0, "never materialised")
    until = merged[-1][1]
    if covered_since is None:
        fresh = until >= fresh_until
        reason = f"materialised up to {until.isoformat()}"
        return ViewFreshness(name, fresh, until, None, len(intervals), reason)
    covering = next((span for span in merged if span[0] <= covered_since and span[1] >= fresh_until), None)
    if covering:
        reason = f"covered {covering[0].isoformat()} .. {covering[1].isoformat()}"
        return ViewFreshness(name, True, until, covering[0], len(intervals), reason)
    gaps = []
    cursor = covered_since
    for start, end in merged:
        if end <= cursor:
            continue
        if start > cursor:
            gaps.append(f"{cursor.isoformat()} .. {min(start, fresh_until).isoformat()}")
        cursor = max(cursor, end)
        if cursor >= fresh_until:
            break
    if cursor < fresh_until:
        gaps.append(f"{cursor.isoformat()} .. {fresh_until.isoformat()}")
    return ViewFreshness(name, False, until, None, len(intervals), f"not materialised: {', '.join(gaps)}")


def check_freshness(
    store: FeatureStore,
    feature_views: Sequence[str] | None,
    fresh_until: datetime,
    covered_since: datetime | None = None,
) -> FreshnessReport:
    """Freshness of each feature view from the materialisation intervals recorded in the Feast registry."""
    store.refresh_registry()
    views = resolve_feature_views(store, feature_views)
    fresh_until = to_utc(fresh_until, name="fresh_until")
    since = to_utc(covered_since, name="covered_since") if covered_since is not None else None
    if since is not None and since > fresh_until:
        raise MaterializationWindowError(
            f"covered_since {since.isoformat()} is after fresh_until {fresh_until.isoformat()}; swap them."
        )
    return FreshnessReport(
        fresh_until=fresh_until,
        covered_since=since,
        views=[assess_view_freshness(v.name, v.materialization_intervals, fresh_until, since) for v in views],
    )
