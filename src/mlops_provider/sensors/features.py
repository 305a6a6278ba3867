"""FeatureFreshnessSensor: wait until feature views are materialised up to a point in time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from mlops_provider import arguments
from mlops_provider.core.errors import MaterializationWindowError
from mlops_provider.operators.mixins import FEAST_FIELDS, FeastHookMixin

if TYPE_CHECKING:
    from airflow.sdk import Context


class FeatureFreshnessSensor(FeastHookMixin, BaseSensorOperator):
    """Succeed once every one of ``feature_views`` is materialised up to ``fresh_until``.

    Freshness comes from the Feast registry: each materialisation (``MaterializeFeaturesOperator`` or
    ``feast materialize``) records its interval on the feature view. A view is fresh when the newest recorded
    interval ends at or after ``fresh_until``; with ``covered_since`` the recorded intervals must also cover
    ``covered_since .. fresh_until`` without a gap (useful after a sliced backfill). The sensor re-reads the
    registry at every poke, runs in ``reschedule`` mode by default (no worker slot held between pokes) and
    returns the freshness report as XCom. An unknown feature view fails at once instead of waiting.

    :param feature_views: the views to wait for (default: every online feature view).
    :param fresh_until: templated; default: the run's ``data_interval_end``.
    :param covered_since: templated; when set, no gap may remain between it and ``fresh_until``.

    Connection arguments: see ``FeastHookMixin``.
    """

    template_fields: Sequence[str] = ("feature_views", "fresh_until", "covered_since", *FEAST_FIELDS)
    ui_color = "#d8ecf7"

    def __init__(
        self,
        *,
        feature_views: Sequence[str] | None = None,
        fresh_until: Any = None,
        covered_since: Any = None,
        mode: str = "reschedule",
        **kwargs: Any,
    ) -> None:
        super().__init__(mode=mode, **kwargs)
        self.feature_views = feature_views
        self.fresh_until = fresh_until
        self.covered_since = covered_since

    def poke(self, context: Context) -> PokeReturnValue | bool:
        from mlops_provider.core.features import check_freshness

        fresh_until = context.get("data_interval_end") if arguments.is_unset(self.fresh_until) else self.fresh_until
        if fresh_until is None:
            raise MaterializationWindowError(
                "No fresh_until: the run has no data interval (e.g. a manual run of an unscheduled DAG); pass "
                "fresh_until, e.g. '{{ logical_date }}'."
            )
        from mlops_provider.core.windows import to_utc

        fresh_until = to_utc(fresh_until, name="fresh_until", allow_naive=False)
        views = arguments.optional_list(self.feature_views, "feature_views")
        covered_since = None
        if not arguments.is_unset(self.covered_since):
            covered_since = to_utc(self.covered_since, name="covered_since", allow_naive=False)
        report = check_freshness(self.feast_hook.get_conn(), views, fresh_until, covered_since)
        self.log.info("%s", report.summary())
        if report.fresh:
            return PokeReturnValue(is_done=True, xcom_value=report.to_dict())
        return False
