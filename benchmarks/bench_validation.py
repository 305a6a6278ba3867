"""ValidateDataOperator on 10M rows x 20 columns with an inferred suite, against the same suite run directly
through Great Expectations; time and peak memory of each.

Data: 10,000,000 rows x 20 columns (12 float, 4 integer, 4 text), one parquet file, with a few bad values in
three columns so that some expectations fail and their results must be summarised. Reference: 1,000,000 clean
rows from another seed, a separate file. Both generated with fixed seeds into a temporary folder.

* provider: the whole ``ValidateDataOperator.execute`` with ``infer_from=<reference>``: read and infer from the
  reference, read the data, validate (a fresh ephemeral GX context, the provider's bounded result format, the
  summary), write the suite and render the Data Docs.
* direct GX: ``pandas.read_parquet`` of the data, then a fresh ephemeral context, pandas datasource, dataframe
  asset and batch definition, and ``batch.validate(suite)`` with GX's default result format, as GX's
  documentation shows it, on the suite the provider inferred (80 expectations). No inference, no report.

Each side runs once, in its own child process, so that one side's memory does not count against the other; the
peak RSS is the child's (interpreter and imports included, which are printed too). The RESULT line is provider
time / direct time, target <= 1.2. Both sides must fail the same expectations.

``python benchmarks/bench_validation.py step`` runs the earlier, smaller comparison instead: the validation step
alone (``core.validation.run_validation``) on 1,000,000 rows against a 40-expectation suite, three alternating
rounds. ``BENCH_VALIDATION_ROWS`` changes the number of rows of either.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["GX_ANALYTICS_ENABLED"] = "false"
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from harness import best_time, peak_rss_mb, report  # noqa: E402

ROWS = int(os.environ.get("BENCH_VALIDATION_ROWS", 10_000_000))
REFERENCE_ROWS = 1_000_000
STEP_ROWS = int(os.environ.get("BENCH_VALIDATION_ROWS", 1_000_000))
ROUNDS = 3
TARGET = 1.2
CATEGORIES = ["alpha", "beta", "gamma", "delta", "epsilon"]


def make_frame(rows: int = STEP_ROWS, seed: int = 0, bad_values: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {}
    for index in range(12):
        columns[f"f{index:02d}"] = rng.normal(100 + index, 10, rows)
    for index in range(4):
        columns[f"i{index:02d}"] = rng.integers(0, 1000, rows)
    for index in range(4):
        columns[f"s{index:02d}"] = rng.choice(CATEGORIES, rows).astype(object)
    frame = pd.DataFrame(columns)
    if not bad_values:
        return frame
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


def step_main() -> int:
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
        f"{STEP_ROWS:,} rows x {frame.shape[1]} columns, {len(expectations)} expectations:\n"
        f"  provider validation step      {provider_best:6.2f} s  (rounds {rounds(provider_times)})\n"
        f"  direct GX, default format     {direct_best:6.2f} s  (rounds {rounds(direct_times)})\n"
        f"  direct GX, provider's format  {same_best:6.2f} s  (rounds {rounds(same_format_times)})\n"
        f"  provider / direct GX with the same result format: {provider_best / same_best:.3f} "
        f"(the provider's own overhead)\n"
        f"  total benchmark time {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return 0 if report("validation_step_vs_direct_gx", provider_best / direct_best, TARGET) else 1


class _TaskInstance:
    dag_id, run_id, task_id, try_number, map_index = "bench", "manual__bench", "validate", 1, -1

    def __init__(self) -> None:
        self.xcoms: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcoms[key] = value


def provider_side(data: str, reference: str, folder: str) -> dict:
    from mlops_provider.operators.validation import ValidateDataOperator

    operator = ValidateDataOperator(
        task_id="validate", dataset_uri=data, infer_from=reference, reports_uri=folder, on_failure="warn"
    )
    import great_expectations  # noqa: F401  - imported before the clock starts, as on the other side
    import pyarrow.parquet  # noqa: F401

    imports_rss = peak_rss_mb()
    started = time.perf_counter()
    result = operator.execute({"ti": _TaskInstance()})
    seconds = time.perf_counter() - started
    failed = sorted([f["expectation"], f["column"]] for f in result["failed"])
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "imports_rss_mb": imports_rss, "failed": failed,
            "suite_uri": result["suite_uri"], "evaluated": result["evaluated"], "rows": result["rows"]}  # fmt: skip


def direct_side(data: str, suite_uri: str) -> dict:
    import great_expectations as gx

    document = json.loads(Path(suite_uri).read_text())
    imports_rss = peak_rss_mb()
    started = time.perf_counter()
    frame = pd.read_parquet(data)
    context = gx.get_context(mode="ephemeral")
    batch_definition = (
        context.data_sources.add_pandas("bench")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("all")
    )
    suite = context.suites.add(gx.ExpectationSuite(name="bench", expectations=document["expectations"]))
    result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
    seconds = time.perf_counter() - started
    failed = sorted([r.expectation_config.type, r.expectation_config.kwargs.get("column")] for r in result.results
                    if not r.success)  # fmt: skip
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "imports_rss_mb": imports_rss, "failed": failed,
            "evaluated": len(result.results)}  # fmt: skip


def child(side: str, *arguments: str) -> dict:
    """Run one side in a fresh interpreter; its last output line is its measurements as JSON."""
    command = [sys.executable, "-u", __file__, "side", side, *arguments]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"The {side} side failed (exit {done.returncode}): {done.stdout[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mlops-bench-validation-") as folder:
        data, reference = f"{folder}/data.parquet", f"{folder}/reference.parquet"
        print(f"generating {ROWS:,} rows x 20 columns and a {REFERENCE_ROWS:,}-row reference ...", flush=True)
        frame = make_frame(ROWS, seed=0)
        data_mb = frame.memory_usage(deep=False).sum() / 2**20
        frame.to_parquet(data, index=False)
        del frame
        make_frame(REFERENCE_ROWS, seed=1, bad_values=False).to_parquet(reference, index=False)
        print(f"  data in memory {data_mb:,.0f} MB (numbers and string pointers; the 5 distinct strings are shared), "
              f"parquet {Path(data).stat().st_size / 2**20:,.0f} MB ({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip

        print("provider: ValidateDataOperator.execute (read + infer + validate + suite + Data Docs) ...", flush=True)
        provider = child("provider", data, reference, f"{folder}/reports")
        print(f"  {provider['seconds']:.1f} s, peak RSS {provider['peak_rss_mb']:,.0f} MB", flush=True)
        print("direct GX: read_parquet + batch.validate(the same suite) ...", flush=True)
        direct = child("direct", data, provider["suite_uri"])
        print(f"  {direct['seconds']:.1f} s, peak RSS {direct['peak_rss_mb']:,.0f} MB", flush=True)

    assert provider["rows"] == ROWS and provider["evaluated"] == direct["evaluated"], (provider, direct)
    assert provider["failed"] == direct["failed"], (provider["failed"], direct["failed"])
    print(
        f"{ROWS:,} rows x 20 columns, {direct['evaluated']} inferred expectations, "
        f"{len(direct['failed'])} failed on both sides ({', '.join(f'{c}:{t}' for t, c in direct['failed'])}):\n"
        f"  side                   time      peak RSS   RSS after imports\n"
        f"  provider task      {provider['seconds']:7.1f} s  {provider['peak_rss_mb']:8,.0f} MB  "
        f"{provider['imports_rss_mb']:8,.0f} MB\n"
        f"  direct GX          {direct['seconds']:7.1f} s  {direct['peak_rss_mb']:8,.0f} MB  "
        f"{direct['imports_rss_mb']:8,.0f} MB\n"
        f"  data in memory {data_mb:,.0f} MB; total benchmark time {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return 0 if report("validation_task_10m_vs_direct_gx", provider["seconds"] / direct["seconds"], TARGET) else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["side"]:
        side, arguments = sys.argv[2], sys.argv[3:]
        measured = provider_side(*arguments) if side == "provider" else direct_side(*arguments)
        print(json.dumps(measured), flush=True)
        sys.exit(0)
    sys.exit(step_main() if sys.argv[1:2] == ["step"] else main())
