"""The verdict of a validation: failed expectations described for a person, and a small JSON-ready outcome.

``summarise_result`` turns GX's ``ExpectationSuiteValidationResult`` into a ``ValidationOutcome`` whose
``summary()`` is the paragraph for the task log and whose ``to_dict()`` goes to XCom.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_provider.core.validation._common import _json_safe, _short

if TYPE_CHECKING:
    from mlops_provider.core.validation.suites import ExpectationSuiteSpec

# Example values kept per failed expectation: enough to recognise the problem, small enough for XCom and for
# GX not to collect long unexpected-value lists on a million rows.
DEFAULT_EXAMPLES = 5
_MAX_SHOWN_ITEMS = 12


@dataclass
class FailedExpectation:
    """One unmet expectation, described for a person on call (and small enough for XCom)."""

    expectation: str
    column: str | None
    arguments: dict[str, Any]
    observed_value: Any = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    element_count: int | None = None
    examples: list[Any] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        where = self.column if self.column is not None else "(table)"
        arguments = ", ".join(f"{k}={_short(v)}" for k, v in self.arguments.items())
        text = f"{where}: {self.expectation}({arguments})"
        details = []
        if self.error:
            details.append(f"could not be evaluated: {self.error}")
        if self.observed_value is not None:
            details.append(f"observed {_short(self.observed_value)}")
        if self.unexpected_count is not None:
            percent = f" ({self.unexpected_percent:.2f}%)" if self.unexpected_percent is not None else ""
            of_rows = f" of {self.element_count:,}" if self.element_count is not None else ""
            details.append(f"{self.unexpected_count:,}{of_rows} rows unexpected{percent}")
        if self.examples:
            details.append("examples: " + ", ".join(_short(v) for v in self.examples))
        return text + (" -> " + "; ".join(details) if details else " -> failed")


@dataclass
class ValidationOutcome:
    """The verdict of one validation: small, JSON-ready, with one readable summary."""

    success: bool
    evaluated: int
    successful: int
    failed: list[FailedExpectation]
    suite_name: str
    suite_source: str
    dataset_uri: str
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "evaluated": self.evaluated,
            "successful": self.successful,
            "failed": [failure.to_dict() for failure in self.failed],
            "suite_name": self.suite_name,
            "suite_source": self.suite_source,
            "dataset_uri": self.dataset_uri,
            "rows": self.rows,
        }

    def summary(self) -> str:
        verdict = "PASSED" if self.success else "FAILED"
        head = (
            f"Validation of {self.dataset_uri} ({self.rows:,} rows) against suite {self.suite_name!r} "
            f"({self.suite_source}) {verdict}: {self.successful} of {self.evaluated} expectations met"
        )
        if self.success:
            return head + "."
        lines = [head + f", {len(self.failed)} failed:"]
        lines.extend(f"  - {failure.describe()}" for failure in self.failed)
        return "\n".join(lines)


def summarise_result(
    result: Any, *, suite: ExpectationSuiteSpec, dataset_uri: str, rows: int, examples: int = DEFAULT_EXAMPLES
) -> ValidationOutcome:
    """The verdict of a GX ``ExpectationSuiteValidationResult`` as a ``ValidationOutcome``."""
    failed = [_describe_failure(item, examples) for item in result.results if not item.success]
    missing = {f.column for f in failed if f.expectation == "expect_column_to_exist"}
    for failure in failed:
        if failure.column in missing and failure.expectation != "expect_column_to_exist" and failure.error:
            failure.error = f"column {failure.column!r} is missing"  # GX's own message can be an IndexError
    failed.sort(key=_failure_order)
    statistics = result.statistics
    return ValidationOutcome(
        success=bool(result.success),
        evaluated=int(statistics.get("evaluated_expectations", len(result.results))),
        successful=int(statistics.get("successful_expectations", len(result.results) - len(failed))),
        failed=failed,
        suite_name=suite.name,
        suite_source=suite.source,
        dataset_uri=dataset_uri,
        rows=rows,
    )


def _failure_order(failure: FailedExpectation) -> tuple[int, str, str]:
    """Table-level failures, then missing columns, then value failures, then what could not be evaluated."""
    if failure.column is None:
        rank = 0
    elif failure.expectation == "expect_column_to_exist":
        rank = 1
    else:
        rank = 3 if failure.error else 2
    return rank, failure.column or "", failure.expectation


def _describe_failure(item: Any, examples: int) -> FailedExpectation:
    configuration = item.expectation_config
    kwargs = dict(configuration.kwargs)
    column = kwargs.pop("column", None)
    if column is None and ("column_A" in kwargs or "column_list" in kwargs):
        names = [kwargs.get("column_A"), kwargs.get("column_B")] if "column_A" in kwargs else kwargs["column_list"]
        column = ", ".join(str(name) for name in names if name is not None)
    kwargs = {k: v for k, v in kwargs.items() if v is not None and k not in ("batch_id", "result_format")}
    outcome = item.result or {}
    observed = outcome.get("observed_value")
    if observed is None and configuration.type == "expect_column_to_exist":
        observed = "column missing"
    return FailedExpectation(
        expectation=configuration.type,
        column=column,
        arguments=_json_safe(_truncate_arguments(kwargs)),
        observed_value=_json_safe(observed),
        unexpected_count=_json_safe(outcome.get("unexpected_count")),
        unexpected_percent=_round_percent(outcome.get("unexpected_percent")),
        element_count=_json_safe(outcome.get("element_count")),
        examples=_json_safe(list(outcome.get("partial_unexpected_list") or [])[:examples]),
        error=_exception_message(item.exception_info),
    )


def _truncate_arguments(kwargs: dict[str, Any]) -> dict[str, Any]:
    shortened = {}
    for key, value in kwargs.items():
        if isinstance(value, (list, tuple, set)) and len(value) > _MAX_SHOWN_ITEMS:
            value = [*list(value)[:_MAX_SHOWN_ITEMS], f"... {len(value) - _MAX_SHOWN_ITEMS} more"]
        shortened[key] = value
    return shortened


def _round_percent(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else round(value, 4)


def _exception_message(info: Any) -> str | None:
    """GX puts either one exception dict or a dict of them (keyed by metric) in ``exception_info``."""
    if not info:
        return None
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for entry in entries:
        if entry.get("raised_exception") or entry.get("exception_message"):
            message = str(entry.get("exception_message") or "").strip().splitlines()
            return (message[-1] if message else "an exception was raised")[:300]
    return None
