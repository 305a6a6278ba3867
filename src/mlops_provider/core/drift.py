"""Data drift between a reference and a current dataset, computed with Evidently's stattests.

Why not just ``Report([DataDriftPreset()])``: the preset picks its method by sample size (KS or chi-square up
to 1,000 rows, Wasserstein or Jensen-Shannon distances above), computes each column's test several times
and renders the whole HTML (114 s and 1.6 GB for 1M rows x 20 columns). Here each column is tested once,
with a method pinned per column type, on at most ``max_rows`` sampled rows per side; the HTML report is
built separately from a small sample.

Defaults and why:

* numerical columns: Evidently's ``ks`` (two-sample Kolmogorov-Smirnov), drift when p < 0.01;
* categorical columns: ``chi2_homogeneity``, a two-sample chi-square test of homogeneity registered here
  as an Evidently stattest. Evidently's own ``chisquare`` is a goodness-of-fit test that treats the
  reference shares as exact, which ignores the reference's own sampling noise: with equal sample sizes
  its statistic is about twice too large and it flags ~20% of identical distributions at n=500.
  Categories expected fewer than 5 times on either side are pooled so the chi-square approximation holds.
* p < 0.01 rather than 0.05: at 0.05 the expected false-alarm rate is exactly the 5% budget, so half of
  all audits would see more than 5%; 0.01 keeps false alarms near 1% while a 0.5 standard deviation mean
  shift or a 20-point category share shift is still caught in over 99% of checks at 500 rows per side.
* sampling: above ``max_rows`` (200,000) rows per side, a seeded uniform sample is tested. A test on a random
  sample keeps its false-alarm rate; by the Dvoretzky-Kiefer-Wolfowitz inequality each sampled empirical
  CDF (and each category share) is within sqrt(ln(2/d) / (2m)) of the full data's with probability 1-d:
  for m = 200,000 and d = 0.001, within 0.0062, so the KS distance is within 0.0124 of the full-data one.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_provider.core.errors import DriftInputError, EmptyDatasetError

if TYPE_CHECKING:
    import pandas as pd

NUMERICAL = "numerical"
CATEGORICAL = "categorical"
CHI2_HOMOGENEITY = "chi2_homogeneity"
DEFAULT_METHODS = {NUMERICAL: "ks", CATEGORICAL: CHI2_HOMOGENEITY}
DEFAULT_THRESHOLD = 0.01
DEFAULT_MAX_ROWS = 200_000
DEFAULT_REPORT_ROWS = 5_000
MIN_EXPECTED_COUNT = 5


@dataclass
class DriftSettings:
    """What to compare and how. Column types come from ``numerical_columns`` / ``categorical_columns`` when
    given (integer columns with few values are otherwise numerical here, not categorical as in Evidently)."""

    columns: list[str] | None = None
    exclude_columns: list[str] = field(default_factory=list)
    numerical_columns: list[str] = field(default_factory=list)
    categorical_columns: list[str] = field(default_factory=list)
    num_method: str = DEFAULT_METHODS[NUMERICAL]
    cat_method: str = DEFAULT_METHODS[CATEGORICAL]
    num_threshold: float = DEFAULT_THRESHOLD
    cat_threshold: float = DEFAULT_THRESHOLD
    per_column_method: dict[str, str] = field(default_factory=dict)
    per_column_threshold: dict[str, float] = field(default_factory=dict)
    drift_share: float = 0.5
    max_rows: int = DEFAULT_MAX_ROWS
    report_rows: int = DEFAULT_REPORT_ROWS
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.drift_share <= 1:
            raise DriftInputError(f"drift_share={self.drift_share} must be in (0, 1]: the share of drifted columns.")
        if self.max_rows < 100 or self.report_rows < 100:
            raise DriftInputError("max_rows and report_rows must be at least 100 rows.")
        overlap = set(self.numerical_columns) & set(self.categorical_columns)
        if overlap:
            raise DriftInputError(f"Columns {sorted(overlap)} are listed as both numerical and categorical; pick one.")
        thresholds = {"num_threshold": self.num_threshold, "cat_threshold": self.cat_threshold}
        thresholds.update({f"per_column_threshold[{c!r}]": t for c, t in self.per_column_threshold.items()})
        for name, value in thresholds.items():
            if not value > 0:
                raise DriftInputError(
                    f"{name}={value} can never raise the alarm; give a positive threshold (a p-value level such "
                    f"as {DEFAULT_THRESHOLD}, or a distance for distance methods)."
                )

    def record(self) -> dict[str, Any]:
        """The methods, thresholds and sizes a result records it was judged with."""
        return {
            "num_method": self.num_method,
            "cat_method": self.cat_method,
            "num_threshold": self.num_threshold,
            "cat_threshold": self.cat_threshold,
            "per_column_method": dict(self.per_column_method),
            "per_column_threshold": dict(self.per_column_threshold),
            "drift_share": self.drift_share,
            "max_rows": self.max_rows,
        }

    def method_for(self, column: str, column_type: str) -> tuple[str, float]:
        default_method = self.num_method if column_type == NUMERICAL else self.cat_method
        default_threshold = self.num_threshold if column_type == NUMERICAL else self.cat_threshold
        return (
            self.per_column_method.get(column, default_method),
            float(self.per_column_threshold.get(column, default_threshold)),
        )


@dataclass(frozen=True)
class ColumnDrift:
    column_type: str
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass
class DriftResult:
    drift_detected: bool
    drift_share: float
    drifted_columns: list[str]
    columns: dict[str, ColumnDrift]
    reference_rows: int
    current_rows: int
    tested_rows: dict[str, int]
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def column_verdicts(self) -> dict[str, dict[str, Any]]:
        """Per tested column: ``{method, score, threshold, drifted}`` (what the operators return in XCom)."""
        return {
            name: {"method": c.method, "score": c.score, "threshold": c.threshold, "drifted": c.drifted}
            for name, c in self.columns.items()
        }

    def summary(self) -> str:
        """One readable paragraph: the verdict and the numbers behind it."""
        tested = len(self.columns)
        verdict = "DRIFT DETECTED" if self.drift_detected else "no dataset drift"
        lines = [
            f"{verdict}: {len(self.drifted_columns)} of {tested} columns drifted "
            f"(share {self.drift_share:.2f}, dataset threshold {self.settings['drift_share']:.2f}); "
            f"reference {self.reference_rows} rows, current {self.current_rows} rows"
            + (f", tested on samples of {self.tested_rows}" if self.tested_rows["sampled"] else "")
            + "."
        ]
        for name, column in sorted(self.columns.items(), key=lambda item: (not item[1].drifted, item[0])):
            mark = "DRIFT" if column.drifted else "ok"
            lines.append(
                f"  {mark:5} {name} ({column.column_type}): {column.method} score={column.score:.4g} "
                f"threshold={column.threshold:g}"
            )
        return "\n".join(lines)


def all_null_column(column: str, side: str, rows: int) -> DriftInputError:
    """The error for a column with no value to test on one side."""
    return DriftInputError(
        f"Column {column!r} is entirely null in the {side} data ({rows} rows); a drift test "
        "on it means nothing. Fix the upstream data or exclude the column."
    )


def resolve_column_types(reference: pd.DataFrame, current: pd.DataFrame, settings: DriftSettings) -> dict[str, str]:
    """Which columns to test and as what type; raises for missing, all-null or mismatched columns."""
    from pandas.api import types as ptypes

    if settings.columns:
        columns = list(dict.fromkeys(settings.columns))
        for column in columns:
            for side, frame in (("reference", reference), ("current", current)):
                if column not in frame.columns:
                    raise DriftInputError(
                        f"Column {column!r} is missing from the {side} data (it has {list(frame.columns)[:20]}); "
                        "remove it from columns or fix the data that feeds this check."
                    )
    else:
        excluded = set(settings.exclude_columns)
        neither = sorted(excluded - set(reference.columns) - set(current.columns))
        if neither:
            raise DriftInputError(
                f"exclude_columns names {neither}, which neither side has (reference: {list(reference.columns)[:20]}); "
                "fix the column names."
            )
        absent = [c for c in reference.columns if c not in current.columns and c not in excluded]
        if absent:
            raise DriftInputError(
                f"The current data lacks the reference column(s) {absent[:20]}, so they cannot be tested; fix the "
                "data that feeds this check, or list them in exclude_columns to test the rest."
            )
        columns = [c for c in reference.columns if c in current.columns and c not in excluded]
        if not columns:
            raise DriftInputError(
                f"The reference ({list(reference.columns)[:20]}) and current ({list(current.columns)[:20]}) data "
                "share no columns to compare; check that both URIs point at the same kind of data."
            )
    unknown = sorted((set(settings.per_column_method) | set(settings.per_column_threshold)) - set(columns))
    if unknown:
        raise DriftInputError(
            f"per_column_method / per_column_threshold name {unknown}, which are not tested columns "
            f"({columns[:20]}); fix the column names."
        )
    types: dict[str, str] = {}
    for column in columns:
        ref, cur = reference[column], current[column]
        for side, series in (("reference", ref), ("current", cur)):
            if len(series) and series.isna().all():  # empty: a schema only (core.drift_wide checks its data)
                raise all_null_column(column, side, len(series))
        if column in settings.numerical_columns:
            column_type = NUMERICAL
        elif column in settings.categorical_columns:
            column_type = CATEGORICAL
        elif ptypes.is_datetime64_any_dtype(ref) or ptypes.is_timedelta64_dtype(ref):
            if settings.columns:
                raise DriftInputError(
                    f"Column {column!r} is a timestamp; drift on time columns is not meaningful. Remove it."
                )
            continue
        elif ptypes.is_numeric_dtype(ref) and not ptypes.is_bool_dtype(ref):
            column_type = NUMERICAL
        else:
            column_type = CATEGORICAL
        if column_type == NUMERICAL:
            for side, series in (("reference", ref), ("current", cur)):
                if not ptypes.is_numeric_dtype(series) or ptypes.is_bool_dtype(series):
                    raise DriftInputError(
                        f"Column {column!r} is numerical but the {side} data holds {series.dtype} values; the "
                        "two sides' dtypes do not match. Fix the upstream schema or list the column in "
                        "categorical_columns."
                    )
        types[column] = column_type
    return types


def _sample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    if len(frame) <= max_rows:
        return frame
    return frame.sample(n=max_rows, random_state=seed)


def stattest_column(column: str, column_type: str, method: str, threshold: float, ref: Any, cur: Any) -> ColumnDrift:
    """One column's test with Evidently's stattest ``method`` on its non-null values (registered methods included)."""
    import pandas as pd

    import_evidently()
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    register_stattests()
    feature_type = ColumnType.Numerical if column_type == NUMERICAL else ColumnType.Categorical
    ref, cur = pd.Series(ref), pd.Series(cur)
    try:
        stattest = get_stattest(ref, cur, feature_type, method)
    except Exception as error:
        raise DriftInputError(
            f"Drift method {method!r} for column {column!r} ({column_type}) is not an Evidently stattest "
            f"for that type ({error}); use e.g. 'ks', 'wasserstein', 'psi' for numerical or "
            f"'{CHI2_HOMOGENEITY}', 'jensenshannon', 'psi' for categorical columns."
        ) from error
    outcome = stattest(ref, cur, feature_type, threshold)
    return ColumnDrift(
        column_type=column_type,
        method=stattest.name,
        score=float(outcome.drift_score),
        threshold=float(outcome.actual_threshold),
        drifted=bool(outcome.drifted),
    )


def detect_drift(reference: pd.DataFrame, current: pd.DataFrame, settings: DriftSettings | None = None) -> DriftResult:
    """Test each column once with its pinned method; the dataset drifts when the drifted share reaches
    ``drift_share``."""
    settings = settings or DriftSettings()
    for side, frame in (("reference", reference), ("current", current)):
        if frame.empty:
            raise EmptyDatasetError(f"The {side} data has no rows; a drift check needs both sides.")
    column_types = resolve_column_types(reference, current, settings)
    if not column_types:
        raise DriftInputError("No column is left to test after excluding timestamps and excluded columns.")
    register_stattests()
    reference_sample = _sample(reference[list(column_types)], settings.max_rows, settings.seed)
    current_sample = _sample(current[list(column_types)], settings.max_rows, settings.seed + 1)
    results: dict[str, ColumnDrift] = {}
    for column, column_type in column_types.items():
        method, threshold = settings.method_for(column, column_type)
        ref = reference_sample[column].dropna()
        cur = current_sample[column].dropna()
        if column_type == CATEGORICAL:
            ref, cur = ref.astype(str), cur.astype(str)
        results[column] = stattest_column(column, column_type, method, threshold, ref, cur)
    drifted = sorted(name for name, column in results.items() if column.drifted)
    share = len(drifted) / len(results)
    return DriftResult(
        drift_detected=share >= settings.drift_share,
        drift_share=share,
        drifted_columns=drifted,
        columns=results,
        reference_rows=len(reference),
        current_rows=len(current),
        tested_rows={
            "reference": len(reference_sample),
            "current": len(current_sample),
            "sampled": len(reference_sample) < len(reference) or len(current_sample) < len(current),
        },
        settings=settings.record(),
    )


@dataclass
class ReportSection:
    """A further section of the drift report, below the input columns: its ``title``, a paragraph ``note`` (markdown)
    and, when something was tested, the two frames, the verdict and the settings it was tested with."""

    title: str
    note: str
    reference: pd.DataFrame | None = None
    current: pd.DataFrame | None = None
    result: DriftResult | None = None
    settings: DriftSettings | None = None


def render_html_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    result: DriftResult,
    settings: DriftSettings,
    section: ReportSection | None = None,
) -> str:
    """Evidently's drift report, with the same methods, on at most ``report_rows`` sampled rows per side.

    The report's per-column verdicts come from the sample and may differ from ``result`` for borderline
    columns; the verdict of record is ``result``. With ``section`` (e.g. the prediction drift), the page holds
    two groups: "Input drift" (the columns above) and the section, with its note and its own columns.
    """
    return render_column_report(reference, current, column_types_of(result), settings, section)


def column_types_of(result: DriftResult) -> dict[str, str]:
    """The tested columns and their types (``numerical`` / ``categorical``), in the result's order."""
    return {name: column.column_type for name, column in result.columns.items()}


def render_column_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    column_types: dict[str, str],
    settings: DriftSettings,
    section: ReportSection | None = None,
) -> str:
    """``render_html_report`` from the tested columns and their types: the page does not depend on the verdicts, so
    it can be built while the columns are still being tested (``core.drift_wide.check_columns``)."""
    import_evidently()
    snapshot = _evidently_snapshot(reference, current, column_types, settings)
    if section is None:
        handle, path = tempfile.mkstemp(suffix=".html", prefix="mlops-drift-")
        os.close(handle)
        try:
            snapshot.save_html(str(path))  # Evidently writes only when given a str
            with open(path, encoding="utf-8") as report:
                return report.read()
        finally:
            os.unlink(path)
    from evidently.core.metric_types import render_widgets
    from evidently.legacy.renderers.html_widgets import group_widget, text_widget

    widgets = [text_widget(title="", text=section.note)]
    tests = list(snapshot._tests_widgets)
    if section.result is not None and section.reference is not None and section.current is not None:
        extra = _evidently_snapshot(
            section.reference, section.current, column_types_of(section.result), section.settings or settings
        )
        widgets.extend(extra._widgets)
        tests.extend(extra._tests_widgets)
    groups = [group_widget(title="Input drift", widgets=list(snapshot._widgets)),
              group_widget(title=section.title, widgets=widgets)]  # fmt: skip
    return str(render_widgets([*groups, *tests], as_iframe=False))


_IMPORTING_EVIDENTLY = threading.Lock()


def import_evidently() -> None:
    """Import Evidently, one thread at a time; every use of it comes through here first.

    Evidently's package imports all of itself (seconds). A thread that imports one of its modules while another
    thread is still inside that import can get a module half run: an ``ImportError`` (``partially initialized
    module``) or a stattest registry that lacks a valid method, which would read as a bad ``num_method``. The report
    thread imports Evidently while the calling thread tests columns, and a column test with a method of Evidently's
    own (``wasserstein``, ``psi``, ...) imports it too: the second waits here until the first is done.
    """
    with _IMPORTING_EVIDENTLY:
        import evidently  # noqa: F401


def import_report_libraries() -> None:
    """Import what ``render_column_report`` uses (Evidently: seconds), e.g. in a thread while the data is tested."""
    import_evidently()
    import evidently.core.metric_types  # noqa: F401
    import evidently.legacy.renderers.html_widgets  # noqa: F401
    from evidently import DataDefinition, Dataset, Report  # noqa: F401
    from evidently.presets import DataDriftPreset  # noqa: F401

    register_stattests()


def _evidently_snapshot(
    reference: pd.DataFrame, current: pd.DataFrame, column_types: dict[str, str], settings: DriftSettings
) -> Any:
    """Evidently's ``DataDriftPreset`` run on samples of ``report_rows`` per side, the columns typed as
    ``column_types`` says and tested with ``settings``' methods."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    register_stattests()
    columns = list(column_types)
    numerical = [c for c, column_type in column_types.items() if column_type == NUMERICAL]
    categorical = [c for c in columns if c not in numerical]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    reference_sample = _sample(reference[columns], settings.report_rows, settings.seed)
    current_sample = _sample(current[columns], settings.report_rows, settings.seed + 1)
    for column in categorical:
        reference_sample[column] = reference_sample[column].astype(str)
        current_sample[column] = current_sample[column].astype(str)
    preset = DataDriftPreset(
        columns=columns,
        num_method=settings.num_method,
        cat_method=settings.cat_method,
        num_threshold=settings.num_threshold,
        cat_threshold=settings.cat_threshold,
        per_column_method=dict(settings.per_column_method) or None,
        per_column_threshold=dict(settings.per_column_threshold) or None,
        drift_share=settings.drift_share,
    )
    with _unshown_widgets_skipped():
        return Report([preset]).run(
            Dataset.from_pandas(current_sample, data_definition=definition),
            Dataset.from_pandas(reference_sample, data_definition=definition),
        )


_SKIPPING_WIDGETS = threading.Lock()


@contextmanager
def _unshown_widgets_skipped() -> Iterator[None]:
    """While ``DataDriftPreset`` runs, its per-column ``ValueDrift`` metrics build no widgets.

    The preset's page is its own render (the dataset verdict and ``DataDriftTable`` with every column's charts);
    Evidently still builds each ``ValueDrift`` metric's charts, which no page shows, and that is most of the
    page's build time. The page is the same without them (``tests/test_drift.py`` compares both). Held under a
    lock: the switch is the class's, for the process, and a second report must not restore it early.
    """
    from evidently.metrics.column_statistics import ValueDriftCalculation

    render = ValueDriftCalculation.__dict__.get("_render")
    if render is None:  # another Evidently: leave it as it is
        yield
        return
    with _SKIPPING_WIDGETS:
        ValueDriftCalculation._render = _no_widgets
        try:
            yield
        finally:
            ValueDriftCalculation._render = render


def _no_widgets(*_: Any) -> list[Any]:
    return []


_REGISTERED = False
_REGISTERING = threading.Lock()


def register_stattests() -> None:
    """Add ``chi2_homogeneity`` to Evidently's stattest registry (once per process)."""
    global _REGISTERED
    if _REGISTERED:
        return
    with _REGISTERING:
        if _REGISTERED:
            return
        import_evidently()
        from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
        from evidently.legacy.core import ColumnType

        register_stattest(
            StatTest(
                name=CHI2_HOMOGENEITY,
                display_name="chi-square test of homogeneity p_value",
                allowed_feature_types=[ColumnType.Categorical],
                default_threshold=DEFAULT_THRESHOLD,
            ),
            default_impl=_chi2_homogeneity,
        )
        _REGISTERED = True


def _chi2_homogeneity(
    reference: pd.Series, current: pd.Series, feature_type: Any, threshold: float
) -> tuple[float, bool]:
    """Two-sample chi-square test of homogeneity on the 2 x k table of category counts."""
    return chi2_homogeneity_counts(reference.value_counts(), current.value_counts(), threshold)


def chi2_homogeneity_counts(reference: pd.Series, current: pd.Series, threshold: float) -> tuple[float, bool]:
    """The test on category counts (a Series per side, indexed by category); ``core.drift_wide`` counts in Arrow."""
    import numpy as np
    import pandas as pd
    from scipy.stats import chi2_contingency

    counts = pd.concat([reference.rename("reference"), current.rename("current")], axis=1).fillna(0)
    totals = counts.sum(axis=0)
    # Expected count of each category on each side under "same distribution".
    expected = np.outer(counts.sum(axis=1), totals / totals.sum())
    rare = (expected < MIN_EXPECTED_COUNT).any(axis=1)
    if rare.any():
        pooled = counts[rare].sum(axis=0)
        counts = counts[~rare]
        if pooled.sum() > 0:
            counts.loc["__pooled_rare__"] = pooled
    if len(counts) < 2:
        return 1.0, False
    p_value = float(chi2_contingency(counts.to_numpy().T, correction=False)[1])
    return p_value, p_value < threshold
