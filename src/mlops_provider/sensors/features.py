"""FeatureFreshnessSensor: wait until feature views are materialised up to a point in time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from mlops_provider.core.errors import MaterializationWindowError
from mlops_provider.hooks.feast import FeastHook


class FeatureFreshnessSensor(BaseSensorOperator):
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
    :param feast_conn_id: a ``feast`` connection whose ``extra.repo_path`` names the repository.
    :param repo_path: the repository folder; overrides the connection.
    """

    template_fields: Sequence[str] = ("feature_views", "fresh_until", "covered_since", "feast_conn_id", "repo_path")
    ui_color = "#d8ecf7"

    def __init__(
        self,
        *,
        feature_views: Sequence[str] | None = None,
        fresh_until: Any = None,
        covered_since: Any = None,
        feast_conn_id: str = FeastHook.default_conn_name,
        repo_path: str | None = None,
        mode: str = "reschedule",
        **kwargs: Any,
    ) -> None:
        super().__init__(mode=mode, **kwargs)
        self.feature_views = feature_views
        self.fresh_until = fresh_until
        self.covered_since = covered_since
        self.feast_conn_id = feast_conn_id
        self.repo_path = repo_path

    def poke(self, context: Any) -> PokeReturnValue | bool:
        from mlops_provider.core.features import check_freshness

        fresh_until = self.fresh_until if self.fresh_until not in (None, "") else context.get("data_interval_end")
        if fresh_until is None:
            raise MaterializationWindowError(
                "No fresh_until: the run has no data interval (e.g. a manual run of an unscheduled DAG); pass "
                "fresh_until, e.g. '{{ logical_date }}'."
            )
        views = [self.feature_views] if isinstance(self.feature_views, str) else self.feature_views
        store = FeastHook(feast_conn_id=self.feast_conn_id, repo_path=self.repo_path).get_conn()
        report = check_freshness(store, views, fresh_until, self.covered_since or None)
        self.log.info("%s", report.summary())
        if report.fresh:
            return PokeReturnValue(is_done=True, xcom_value=report.to_dict())
        return False
