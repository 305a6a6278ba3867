"""Backfill-safe materialisation: Feast's own per-view materialisation with a guarded online write."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_provider.core.errors import ConfigurationError, FeatureViewNotFoundError
from mlops_provider.core.features import compat
from mlops_provider.core.features.guards import WriteGuard, WriteStats
from mlops_provider.core.features.registry import record_materialization
from mlops_provider.core.windows import MaterializationWindow

if TYPE_CHECKING:
    from feast import FeatureStore


def _materializable_views(store: FeatureStore) -> dict[str, Any]:
    views = {view.name: view for view in store.list_feature_views()}
    views.update({view.name: view for view in store.list_stream_feature_views()})
    return views


def resolve_feature_views(store: FeatureStore, names: Sequence[str] | None) -> list[Any]:
    """The feature views to materialise: the named ones (checked), or every online one."""
    views = _materializable_views(store)
    if not names:
        chosen = [view for view in views.values() if view.online]
        if not chosen:
            raise FeatureViewNotFoundError(
                f"The Feast project {store.project!r} has no online feature views to materialise; apply the "
                "feature repository first or mark a feature view online=True."
            )
        return sorted(chosen, key=lambda view: view.name)
    if isinstance(names, str):
        names = [names]
    on_demand = {view.name for view in store.list_on_demand_feature_views()}
    unknown = [name for name in names if name not in views]
    if unknown:
        hint = ""
        if set(unknown) & on_demand:
            hint = " On-demand feature views are computed at request time and are not materialised."
        raise FeatureViewNotFoundError(
            f"Unknown feature view(s) {unknown} in Feast project {store.project!r}; registered: "
            f"{sorted(views) or 'none (apply the repository first)'}.{hint}"
        )
    offline_only = [name for name in names if not views[name].online]
    if offline_only:
        raise ConfigurationError(
            f"Feature view(s) {offline_only} have online=False, so there is nothing to materialise; set "
            "online=True in their definition and apply, or leave them out of feature_views."
        )
    return [views[name] for name in dict.fromkeys(names)]


@dataclass
class ViewMaterialization:
    name: str
    rows: int
    values: int
    values_written: int
    values_kept_out: int
    interval_recorded: bool
    seconds: float
    rows_superseded: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MaterializationResult:
    window: MaterializationWindow
    online_store: str
    guard: str
    guard_description: str
    atomic: bool
    views: list[ViewMaterialization] = field(default_factory=list)
    seconds: float = 0.0
    slices: int = 1
    slices_resumed: int = 0

    @property
    def values_kept_out(self) -> int:
        return sum(view.values_kept_out for view in self.views)

    def summary(self) -> str:
        if self.window.empty:
            return (
                f"The window {self.window} is empty (a half-open window holds no instant when it starts where it "
                f"ends): nothing was read, written or recorded for {len(self.views)} feature view(s)."
            )
        lines = [
            f"Materialised {len(self.views)} feature view(s) for {self.window} (rows stamped at or after its "
            f"start and before its end) into the {self.online_store} online store in {self.seconds:.1f} s.",
            f"Backfill safety: {self.guard} ({self.guard_description}).",
        ]
        for view in self.views:
            lines.append(
                f"  {view.name}: {view.rows:,} entity rows from the offline store; {view.values_written:,} of "
                f"{view.values:,} feature values written, {view.values_kept_out:,} kept out because the online "
                f"store already held a newer value; interval "
                f"{'recorded in' if view.interval_recorded else 'already in'} the registry."
            )
        if self.slices > 1:
            superseded = sum(view.rows_superseded for view in self.views)
            lines.append(
                f"In {self.slices} time slices, newest first ({self.slices_resumed} already recorded by an earlier "
                f"try, skipped); {superseded:,} entity rows skipped because a newer slice of this window had "
                "already written the entity."
            )
        if self.values_kept_out:
            lines.append(
                "Values were kept out: this window is older than what is online for those entities (a backfill "
                "or a rerun after newer windows), so the newer values stay online."
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.window.to_dict(),
            "online_store": self.online_store,
            "guard": self.guard,
            "atomic": self.atomic,
            "feature_views": [view.to_dict() for view in self.views],
            "values_written": sum(view.values_written for view in self.views),
            "values_kept_out": self.values_kept_out,
            "seconds": round(self.seconds, 3),
            "slices": self.slices,
            "slices_resumed": self.slices_resumed,
        }


def _silent_progress(length: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=length, disable=True)


def _write_guard(online_store: Any, config: Any) -> WriteGuard:
    # Looked up on the package at call time: ``mlops_provider.core.features.write_guard_for`` is the one
    # place to swap the chooser (the tests do, to run the read-compare-write guard on SQLite).
    from mlops_provider.core import features

    return features.write_guard_for(online_store, config)


def prepare_materialization(
    store: FeatureStore, feature_views: Sequence[str] | None
) -> tuple[list[Any], Any, WriteGuard]:
    """The checks every materialisation makes before writing anything: the views, the provider, the guard."""
    if getattr(store.config.online_store, "type", None) == "remote":
        raise ConfigurationError(
            "The repository uses a remote online store (a Feast feature server); backfill-safe "
            "materialisation needs direct access to the online store. Point feature_store.yaml at it."
        )
    views = resolve_feature_views(store, feature_views)  # bad names fail before anything is written
    provider = compat.provider_of(store)
    online_store = provider.online_store
    if online_store is None:
        raise ConfigurationError(
            f"The Feast repository {store.repo_path} has no online store; add online_store to feature_store.yaml."
        )
    engine = compat.foreign_batch_engine(provider)
    if engine is not None:
        raise ConfigurationError(
            f"The repository's batch engine is {engine}, which writes the online "
            "store from its own workers where the older-row guard cannot run; use the local batch engine "
            "(batch_engine: local in feature_store.yaml) for backfill-safe materialisation."
        )
    return views, provider, _write_guard(online_store, store.config)


def materialize_window(
    store: FeatureStore,
    window: MaterializationWindow,
    feature_views: Sequence[str] | None = None,
) -> MaterializationResult:
    """Materialise ``window`` of ``feature_views`` (default: every online view) without ever replacing a
    newer online value by an older one, and record the interval in the registry once.

    The window is half-open, ``[start, end)``: a row stamped exactly at ``start`` is written, one stamped
    exactly at ``end`` is not (the next window writes it). Feast's offline read includes its end, so it is
    handed the last instant before ``end`` (``compat.offline_read_end``); the registry records the window
    itself, ``start`` .. ``end``, so consecutive windows' intervals touch and merge. An empty window
    (``start == end``) reads, writes and records nothing.

    Uses Feast's own per-view materialisation (offline read, dedup to the newest row per entity in the
    window, conversion) with the online write step replaced by ``write_guard_for``'s guard.
    """
    views, provider, guard = prepare_materialization(store, feature_views)
    result = MaterializationResult(
        window=window,
        online_store=str(getattr(store.config.online_store, "type", type(provider.online_store).__name__)),
        guard=guard.strategy,
        guard_description=guard.description,
        atomic=guard.atomic,
    )
    if window.empty:
        result.views = [ViewMaterialization(view.name, 0, 0, 0, 0, False, 0.0) for view in views]
        return result
    read_end = compat.offline_read_end(store.config, window.end)  # Feast includes it: the last instant before end
    started = time.perf_counter()
    with guard.installed():
        for view in views:
            view_started = time.perf_counter()
            compat.materialize_view(provider, store, view, window.start, read_end, _silent_progress)
            recorded = record_materialization(store, view.name, window)
            stats = guard.stats.get(view.name, WriteStats())
            result.views.append(
                ViewMaterialization(
                    name=view.name,
                    rows=stats.rows,
                    values=stats.values,
                    values_written=stats.values_written,
                    values_kept_out=stats.values_kept_out,
                    interval_recorded=recorded,
                    seconds=round(time.perf_counter() - view_started, 3),
                )
            )
    result.seconds = time.perf_counter() - started
    return result
