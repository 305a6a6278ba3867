"""ValidateDataOperator's validation step against the same suite run directly through Great Expectations.

Data: 1,000,000 rows x 20 columns (12 float, 4 integer, 4 text), with a few bad values in three columns so
that some expectations fail and their results must be summarised. Suite: 40 expectations (20 not-null,
16 between, 4 in-set).

* provider: ``core.validation.run_validation``, the call ValidateDataOperator makes once the data is read and
  the suite loaded: a fresh ephemeral GX context, datasource, suite and validation definition (the
  ``add_or_update`` calls), the run with the provider's bounded result format, and the summary
  (``ValidationOutcome`` with failed expectations, counts, examples). Data Docs rendering is a separate step
  (``publish_data_docs``) and is not timed here; neither is reading the dataset, which both paths would share.
* direct GX: a fresh ephemeral context, pandas datasource, dataframe asset and batch definition, then
  ``batch.validate(suite)`` with GX's default result format (``SUMMARY``), as GX's documentation shows it.
  This is the RESULT line's denominator.
* direct GX, same format: the same, with the provider's bounded ``BASIC`` result format. Printed for
  information: it isolates the provider's own overhead (contexts, summary) from the result-format saving.

The paths alternate, three rounds each; the best time of each is compared. Target: provider / direct <= 1.2.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ["GX_ANALYTICS_ENABLED"] = "false"
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from harness import best_time, report  # noqa: E402

ROWS = 1_000_000
ROUNDS = 3
TARGET = 1.2
CATEGORIES = ["alpha", "beta", "gamma", "delta", "epsilon"]


def make_frame(rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {}
    for index in range(12):
        columns[f"f{index:02d}"] = rng.normal(100 + index, 10, rows)
    for index in range(4):
        columns[f"i{index:02d}"] = rng.integers(0, 1000, rows)
    for index in range(4):
        columns[f"s{index:02d}"] = rng.choice(CATEGORIES, rows).astype(object)
    frame = pd.DataFrame(columns)
    # A few bad values so that some expectations fail and the summary has work to do.
    bad = rng.choice(rows, rows // 200, replace=False)
    frame.loc[bad, "f00"] = -1e6
    frame.loc[bad[: len(bad) // 2], "f01"] = np.nan
    frame.loc[bad[::3], "s00"] = "unknown"
    return frame


def make_expectations() -> list[dict]:
    expectations = []
    for index in range(12):
        column = f"f{index:02d}"
        expectations.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": column}})
        expectations.append(
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": column, "min_value": 0, "max_value": 300},
            }
        )
    for index in range(4):
        column = f"i{index:02d}"
        expectations.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": column}})
        expectations.append(
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": column, "min_value": 0, "max_value": 999},
            }
        )
    for index in range(4):
        column = f"s{index:02d}"
        expectations.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": column}})
        expectations.append(
            {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": column, "value_set": CATEGORIES}}
        )
    assert len(expectations) == 40
    return expectations


def main() -> int:
    from mlops_provider.core import validation

    started = time.perf_counter()
    frame = make_frame()
    expectations = make_expectations()
    spec = validation.suite_from_expectations(expectations, name="bench")

    import great_expectations as gx

    def provider_step() -> object:
        return validation.run_validation(frame, spec, dataset_uri="bench").outcome

    def direct_gx(result_format: object = None) -> object:
        context = gx.get_context(mode="ephemeral")
        batch_definition = (
            context.data_sources.add_pandas("bench")
            .add_dataframe_asset("frame")
            .add_batch_definition_whole_dataframe("all")
        )
        suite = context.suites.add(gx.ExpectationSuite(name="bench", expectations=[dict(e) for e in expectations]))
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        return batch.validate(suite) if result_format is None else batch.validate(suite, result_format=result_format)

    same_format = {"result_format": "BASIC", "partial_unexpected_count": validation.DEFAULT_EXAMPLES}

    # Both paths must reach the same verdict on the same expectations before their times mean anything.
    outcome = provider_step()
    direct = direct_gx()
    direct_failed = sorted(
        (r.expectation_config.type, r.expectation_config.kwargs["column"]) for r in direct.results if not r.success
    )
    provider_failed = sorted((f.expectation, f.column) for f in outcome.failed)
    assert outcome.evaluated == len(direct.results) == 40, (outcome.evaluated, len(direct.results))
    assert provider_failed == direct_failed, (provider_failed, direct_failed)
    print(outcome.summary(), flush=True)

    provider_times, direct_times, same_format_times = [], [], []
    for _ in range(ROUNDS):  # alternate, so that load from other processes hits all paths alike
        provider_times.append(best_time(provider_step, repeat=1))
        direct_times.append(best_time(direct_gx, repeat=1))
        same_format_times.append(best_time(lambda: direct_gx(same_format), repeat=1))
    provider_best, direct_best, same_best = min(provider_times), min(direct_times), min(same_format_times)

    def rounds(times: list[float]) -> str:
        return ", ".join(f"{t:.2f}" for t in times)

    print(
        f"{ROWS:,} rows x {frame.shape[1]} columns, {len(expectations)} expectations:\n"
        f"  provider validation step      {provider_best:6.2f} s  (rounds {rounds(provider_times)})\n"
        f"  direct GX, default format     {direct_best:6.2f} s  (rounds {rounds(direct_times)})\n"
        f"  direct GX, provider's format  {same_best:6.2f} s  (rounds {rounds(same_format_times)})\n"
        f"  provider / direct GX with the same result format: {provider_best / same_best:.3f} "
        f"(the provider's own overhead)\n"
        f"  total benchmark time {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return 0 if report("validation_step_vs_direct_gx", provider_best / direct_best, TARGET) else 1


if __name__ == "__main__":
    sys.exit(main())
