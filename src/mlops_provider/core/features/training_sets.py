"""Point-in-time training sets: each entity row gets the feature values as they were at its timestamp."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_provider.core.errors import EmptyDatasetError, EntityFrameError, FeatureReferenceError

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

DEFAULT_TIMESTAMP_COLUMN = "event_timestamp"
ROW_ORDER_COLUMN = "__mlops_row_order"


@dataclass
class TrainingSet:
    frame: pd.DataFrame
    features: list[str]
    timestamp_column: str
    feature_service: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": int(len(self.frame)),
            "columns": [str(c) for c in self.frame.columns],
            "features": self.features,
            "feature_service": self.feature_service,
        }


def resolve_feature_refs(store: FeatureStore, features: str | Sequence[str]) -> tuple[list[str], Any]:
    """Check feature references (``view:feature``) or a feature service name; return refs and the service."""
    from feast.errors import FeatureServiceNotFoundException

    if isinstance(features, str) and ":" not in features:
        try:
            service = store.get_feature_service(features)
        except FeatureServiceNotFoundException:
            services = sorted(s.name for s in store.list_feature_services())
            raise FeatureReferenceError(
                f"features={features!r} is neither a 'view:feature' reference nor a feature service of project "
                f"{store.project!r}; feature services: {services or 'none'}."
            ) from None
        refs = [
            f"{projection.name_to_use()}:{feature.name}"
            for projection in service.feature_view_projections
            for feature in projection.features
        ]
        return refs, service
    refs = [features] if isinstance(features, str) else list(features)
    if not refs:
        raise FeatureReferenceError("features is empty; list feature references such as 'customer_profile:plan'.")
    views = {view.name: view for view in store.list_all_feature_views()}
    problems = []
    for ref in refs:
        view_name, _, feature_name = str(ref).partition(":")
        if not feature_name:
            problems.append(f"{ref!r} is not of the form 'view:feature'")
        elif view_name not in views:
            problems.append(f"{ref!r}: no feature view {view_name!r}")
        elif feature_name not in {f.name for f in views[view_name].features}:
            known = sorted(f.name for f in views[view_name].features)
            problems.append(f"{ref!r}: feature view {view_name!r} has no feature {feature_name!r} (it has {known})")
    if problems:
        raise FeatureReferenceError(
            f"Bad feature reference(s) for Feast project {store.project!r}: {'; '.join(problems)}. Registered "
            f"feature views: {sorted(views) or 'none (apply the repository first)'}."
        )
    return refs, None


def build_training_set(
    store: FeatureStore,
    entity_frame: pd.DataFrame,
    features: str | Sequence[str],
    *,
    timestamp_column: str = DEFAULT_TIMESTAMP_COLUMN,
    full_feature_names: bool = False,
) -> TrainingSet:
    """Join the features onto each entity row as they were at that row's timestamp (point in time).

    Feast takes, per row and feature view, the newest feature row with ``event_timestamp <= row timestamp``
    and not older than the view's ttl; later feature rows never leak into a row. Extra entity-frame columns
    (labels) pass through; rows keep their input order.
    """
    import pandas as pd

    refs, service = resolve_feature_refs(store, features)
    if entity_frame.empty:
        raise EmptyDatasetError("The entity frame has no rows; a training set needs entity keys and timestamps.")
    if timestamp_column not in entity_frame.columns:
        raise EntityFrameError(
            f"The entity frame has no timestamp column {timestamp_column!r} (columns: {list(entity_frame.columns)}); "
            "set timestamp_column to the column holding each row's label time."
        )
    if timestamp_column != DEFAULT_TIMESTAMP_COLUMN and DEFAULT_TIMESTAMP_COLUMN in entity_frame.columns:
        raise EntityFrameError(
            f"The entity frame has both {timestamp_column!r} and {DEFAULT_TIMESTAMP_COLUMN!r}; Feast would read the "
            f"latter. Drop or rename one of them."
        )
    views = {view.name: view for view in store.list_all_feature_views()}
    needed_keys: dict[str, list[str]] = {}
    for ref in refs:
        view = views.get(ref.split(":", 1)[0])
        if view is None:  # a service projection renamed with `with_name`: not found by that name, not checked
            continue
        for column in getattr(view, "entity_columns", None) or []:
            needed_keys.setdefault(column.name, []).append(view.name)
    missing = {key: sorted(set(names)) for key, names in needed_keys.items() if key not in entity_frame.columns}
    if missing:
        raise EntityFrameError(
            f"The entity frame lacks the entity key column(s) {sorted(missing)} that feature view(s) "
            f"{sorted({n for names in missing.values() for n in names})} join on; add them."
        )
    frame = entity_frame.copy()
    try:
        frame[timestamp_column] = pd.to_datetime(frame[timestamp_column], utc=True)
    except (ValueError, TypeError) as error:
        raise EntityFrameError(
            f"The timestamp column {timestamp_column!r} does not parse as timestamps: {error}"
        ) from None
    if frame[timestamp_column].isna().any():
        raise EntityFrameError(
            f"{int(frame[timestamp_column].isna().sum())} row(s) have no {timestamp_column!r}; every row needs the "
            "time its label was observed."
        )
    frame[ROW_ORDER_COLUMN] = range(len(frame))
    frame = frame.rename(columns={timestamp_column: DEFAULT_TIMESTAMP_COLUMN})
    job = store.get_historical_features(
        entity_df=frame,
        features=service if service is not None else refs,
        full_feature_names=full_feature_names,
    )
    joined = job.to_df()
    joined = joined.sort_values(ROW_ORDER_COLUMN, kind="stable").drop(columns=[ROW_ORDER_COLUMN]).reset_index(drop=True)
    joined = joined.rename(columns={DEFAULT_TIMESTAMP_COLUMN: timestamp_column})
    ordered = [c for c in entity_frame.columns if c in joined.columns]
    ordered += [c for c in joined.columns if c not in entity_frame.columns]
    return TrainingSet(
        frame=joined[ordered],
        features=refs,
        timestamp_column=timestamp_column,
        feature_service=service.name if service is not None else None,
    )
