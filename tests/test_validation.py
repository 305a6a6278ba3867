"""ValidateDataOperator and core.validation on real parquet files, GX 1.x, moto S3 and one real DAG run."""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import pytest

from mlops_provider.core import validation
from mlops_provider.core.datasets import read_dataset, write_dataset
from mlops_provider.core.errors import (
    ConfigurationError,
    DatasetError,
    DatasetNotFoundError,
    EmptyDatasetError,
    ExpectationSuiteError,
)
from support.validation_data import CORRUPTIONS, churn_partition

SAMPLE_SUITE = Path(__file__).resolve().parents[1] / "include" / "expectations" / "customer_churn.json"
ROWS = 2000


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    """Parquet files: a reference, ten clean daily partitions, and one partition per corruption."""
    root = tmp_path_factory.mktemp("churn")
    files = {"reference": str(root / "reference.parquet")}
    churn_partition(5000, seed=100, day="2025-12-01").to_parquet(files["reference"], index=False)
    for day in range(1, 11):
        uri = str(root / f"events/dt=2026-01-{day:02d}/part-00000.parquet")
        write_dataset(churn_partition(ROWS, seed=day, day=f"2026-01-{day:02d}"), uri)
        files[f"clean_{day}"] = uri
    for name, (corrupt, _, _) in CORRUPTIONS.items():
        files[name] = str(root / f"{name}.parquet")
        corrupt(churn_partition(ROWS, seed=50, day="2026-02-01")).to_parquet(files[name], index=False)
    return files


@pytest.fixture(scope="module")
def sample_suite() -> validation.ExpectationSuiteSpec:
    return validation.load_suite(str(SAMPLE_SUITE))


@pytest.fixture(scope="module")
def inferred_suite(data) -> validation.ExpectationSuiteSpec:
    return validation.infer_suite(read_dataset(data["reference"]), reference_uri=data["reference"])


def validate(uri: str, suite: validation.ExpectationSuiteSpec) -> validation.ValidationOutcome:
    frame = read_dataset(uri, allow_empty=True)
    validation.check_validation_input(frame, suite, uri)
    return validation.run_validation(frame, suite, dataset_uri=uri).outcome


@pytest.fixture(scope="module")
def sample_outcome(data, sample_suite):
    """The sample suite's verdict on a file of ``data`` by name, validated once per module (a GX run takes a
    few hundred milliseconds; the tests only read the verdicts)."""
    return functools.cache(lambda name: validate(data[name], sample_suite))


def failures(outcome: validation.ValidationOutcome) -> set[tuple[str | None, str]]:
    return {(f.column, f.expectation) for f in outcome.failed}


# -- the sample suite -------------------------------------------------------------------------------------


def test_sample_suite_passes_clean_partition(sample_outcome, sample_suite):
    outcome = sample_outcome("clean_1")
    assert outcome.success, outcome.summary()
    assert outcome.evaluated == outcome.successful == len(sample_suite.expectations) == 24
    assert outcome.failed == [] and outcome.rows == ROWS
    assert "PASSED: 24 of 24 expectations met" in outcome.summary()


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_sample_suite_catches_each_corruption(sample_outcome, corruption):
    _, column, expectation = CORRUPTIONS[corruption]
    outcome = sample_outcome(corruption)
    assert not outcome.success
    assert (column, expectation) in failures(outcome), outcome.summary()
    assert f"{column or '(table)'}: {expectation}(" in outcome.summary()


def test_summary_names_column_expectation_counts_and_examples(sample_outcome):
    outcome = sample_outcome("out_of_range")
    [failure] = outcome.failed  # a value-level corruption trips exactly its own expectation
    assert failure.column == "monthly_charges" and failure.expectation == "expect_column_values_to_be_between"
    assert failure.arguments == {"min_value": 0.0, "max_value": 500.0}
    assert failure.unexpected_count == ROWS // 100 and failure.unexpected_percent == 1.0
    assert failure.element_count == ROWS
    assert 1 <= len(failure.examples) <= validation.DEFAULT_EXAMPLES
    assert set(failure.examples) <= {-15.0, 9999.0}
    line = outcome.summary().splitlines()[1]
    assert "monthly_charges: expect_column_values_to_be_between(min_value=0.0, max_value=500.0)" in line
    assert "20 of 2,000 rows unexpected (1.00%)" in line and "examples: " in line

    unseen = sample_outcome("unseen_category")
    assert [(f.column, f.examples[0], f.unexpected_count) for f in unseen.failed] == [("plan", "enterprise", 40)]
    empty = sample_outcome("empty_partition")
    assert [(f.column, f.observed_value) for f in empty.failed] == [(None, 0)]
    missing = sample_outcome("missing_column")
    assert missing.failed[0].expectation == "expect_column_to_exist"  # the cause comes first
    assert {f.error for f in missing.failed[1:]} == {"column 'monthly_charges' is missing"}
    wrong_type = sample_outcome("wrong_dtype")
    type_failure = next(f for f in wrong_type.failed if f.expectation == "expect_column_values_to_be_in_type_list")
    assert type_failure.unexpected_percent == 100.0 and type_failure.examples[0].endswith(" months")
    json.dumps([outcome.to_dict(), missing.to_dict(), wrong_type.to_dict(), empty.to_dict()])  # XCom-safe


# -- inferred suites --------------------------------------------------------------------------------------


def test_inferred_suite_states_its_rules(inferred_suite):
    by_column: dict[str | None, dict[str, dict]] = {}
    for expectation in inferred_suite.expectations:
        by_column.setdefault(expectation["kwargs"].get("column"), {})[expectation["type"]] = expectation["kwargs"]
    # One file, no partition folders: nothing says how many rows a new batch holds, so only "not empty" (#13).
    assert by_column[None]["expect_table_row_count_to_be_between"] == {"min_value": 1, "max_value": None}
    tenure = by_column["tenure_months"]
    assert tenure["expect_column_values_to_be_between"] == {"column": "tenure_months", "min_value": 0, "max_value": 87}
    charges = by_column["monthly_charges"]["expect_column_values_to_be_between"]
    assert 0 <= charges["min_value"] < 20.01 and 120 < charges["max_value"] < 140  # 20% of the range each side
    assert by_column["plan"]["expect_column_values_to_be_in_set"]["value_set"] == ["basic", "plus", "pro"]
    assert by_column["churned"]["expect_column_values_to_be_in_set"]["value_set"] == [0, 1]
    assert "expect_column_values_to_be_between" not in by_column["customer_id"]  # ids: new data, new values
    assert by_column["event_timestamp"]["expect_column_values_to_be_of_type"]["type_"] == "datetime64"
    assert "expect_column_values_to_be_between" not in by_column["event_timestamp"]
    for column in ("customer_id", "tenure_months", "monthly_charges", "plan", "event_timestamp", "churned"):
        assert {"expect_column_to_exist", "expect_column_values_to_not_be_null"} <= set(by_column[column])
    # Saved JSON reloads as the same suite, through GX's own checks.
    reloaded = validation.parse_suite(json.loads(inferred_suite.to_json()), source="saved")
    assert reloaded.expectations == inferred_suite.expectations and reloaded.name == inferred_suite.name


def test_inferred_suite_accepts_ten_clean_partitions(data, inferred_suite):
    outcomes = [validate(data[f"clean_{day}"], inferred_suite) for day in range(1, 11)]
    assert [o.success for o in outcomes] == [True] * 10, [o.summary() for o in outcomes if not o.success]


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_inferred_suite_rejects_each_corruption(data, inferred_suite, corruption):
    _, column, expectation = CORRUPTIONS[corruption]
    outcome = validate(data[corruption], inferred_suite)
    assert not outcome.success
    assert (column, expectation) in failures(outcome), outcome.summary()


def test_inferred_type_checks_hold_for_other_pandas_dtypes():
    import pandas as pd

    rows = 300
    reference = pd.DataFrame(
        {
            "seen_at": pd.date_range("2026-01-01", periods=rows, freq="min", tz="UTC"),
            "active": [i % 3 == 0 for i in range(rows)],
            "tier": pd.Categorical(["gold", "silver", "bronze"] * (rows // 3)),
            "visits": pd.array([None if i % 10 == 0 else i for i in range(rows)], dtype="Int64"),
            "score": [float(i) / 7 for i in range(rows)],
        }
    )
    suite = validation.infer_suite(reference)
    types = {e["kwargs"]["column"]: e for e in suite.expectations if "type" in e["type"]}
    assert (
        types["seen_at"]["kwargs"]["type_"] == "Timestamp"
        and types["tier"]["kwargs"]["type_"] == "CategoricalDtypeType"
    )
    assert ("expect_column_values_to_not_be_null", "visits") not in {
        (e["type"], e["kwargs"].get("column")) for e in suite.expectations
    }  # the reference has nulls there
    assert validation.run_validation(reference, suite).outcome.success

    changed = reference.assign(
        seen_at=reference["seen_at"].dt.tz_localize(None),  # time zone lost
        active=reference["active"].astype(int),
        tier=reference["tier"].astype(str),
        score=reference["score"].astype(str),
    )
    failed = failures(validation.run_validation(changed, suite).outcome)
    assert {
        ("seen_at", "expect_column_values_to_be_of_type"),
        ("active", "expect_column_values_to_be_in_type_list"),
        ("tier", "expect_column_values_to_be_of_type"),
        ("score", "expect_column_values_to_be_in_type_list"),
    } <= failed


def test_gx_0x_suite_keys_are_read():
    legacy = {
        "expectation_suite_name": "legacy",
        "expectations": [{"expectation_type": "expect_column_to_exist", "kwargs": {"column": "plan"}, "meta": {}}],
    }
    suite = validation.parse_suite(legacy, source="legacy.json")
    assert suite.name == "legacy" and suite.expectations[0]["type"] == "expect_column_to_exist"


def test_inference_settings_change_the_rules(data):
    reference = read_dataset(data["reference"])
    strict = validation.infer_suite(
        reference,
        validation.InferenceSettings(range_tolerance=0.0, max_categories=2, row_count_factor=None),
    )
    kwargs = {(e["type"], e["kwargs"].get("column")): e["kwargs"] for e in strict.expectations}
    assert kwargs[("expect_column_values_to_be_between", "tenure_months")]["max_value"] == 72
    assert ("expect_column_values_to_be_in_set", "plan") not in kwargs  # 3 plans > max_categories=2
    assert kwargs[("expect_table_row_count_to_be_between", None)] == {"min_value": 1, "max_value": None}
    rare = reference.assign(plan=["rare" if i == 0 else p for i, p in enumerate(reference["plan"])])
    relaxed = validation.infer_suite(rare)
    assert ("expect_column_values_to_be_in_set", "plan") not in {
        (e["type"], e["kwargs"].get("column")) for e in relaxed.expectations
    }, "a value seen once means the column is open-ended"
    with pytest.raises(ConfigurationError, match="range_tolerance=-1"):
        validation.InferenceSettings(range_tolerance=-1)


# -- reports ----------------------------------------------------------------------------------------------


def test_data_docs_replace_earlier_tries_and_leave_no_temp_dirs(data, sample_suite, tmp_path, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # every temp folder GX or we make lands here
    docs = tmp_path / "reports" / "data_docs"
    pages = []
    for uri in (data["out_of_range"], data["clean_2"]):  # a failed try, then a retry on fixed data
        frame = read_dataset(uri)
        run = validation.run_validation(frame, sample_suite, dataset_uri=uri, run_name="manual_2026")
        pages.append(validation.publish_data_docs(run, str(docs)))
    assert list(scratch.iterdir()) == []
    first, second = map(Path, pages)
    assert not first.exists() and second.is_file() and (docs / "index.html").is_file()
    assert [p.name for p in (docs / "validations").rglob("*.html")] == [second.name]
    html = second.read_text()
    assert "customer_churn" in html and "manual_2026" in html
    assert 'href="../../../../index.html"' in html and (second.parents[4] / "index.html") == docs / "index.html"
    assert (docs / "static" / "styles" / "data_docs_default_styles.css").is_file()
    assert second.relative_to(docs).as_posix() in (docs / "index.html").read_text()  # the index links the page

    failed_run = validation.run_validation(read_dataset(data["out_of_range"]), sample_suite)
    failed_html = Path(validation.publish_data_docs(failed_run, str(tmp_path / "failed"))).read_text()
    assert "monthly_charges" in failed_html and "9999" in failed_html  # the bad values are on the page


# -- bad input: a clear error before anything is written --------------------------------------------------


def operator(tmp_path: Path, **kwargs):
    from mlops_provider.operators.validation import ValidateDataOperator

    return ValidateDataOperator(task_id="validate", reports_uri=str(tmp_path / "reports"), **kwargs)


def run_bad_input(op, tmp_path: Path, error: type[Exception], match: str) -> None:
    # An empty context: the operator reaches the task instance only after every input has been checked,
    # so a bad input must fail before it, and before the report folder exists.
    with pytest.raises(error, match=match):
        op.execute({})
    assert not (tmp_path / "reports").exists()


def test_missing_empty_and_unreadable_datasets(data, tmp_path):
    suite = str(SAMPLE_SUITE)
    run_bad_input(
        operator(tmp_path, dataset_uri=str(tmp_path / "nope"), expectation_suite=suite),
        tmp_path, DatasetNotFoundError, "No dataset at .*nope.*does not exist",
    )  # fmt: skip
    landed = tmp_path / "landed"
    landed.mkdir()
    (landed / "_SUCCESS").touch()
    run_bad_input(
        operator(tmp_path, dataset_uri=str(landed), expectation_suite=suite),
        tmp_path, EmptyDatasetError, "contains no data files",
    )  # fmt: skip
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"this is not parquet")
    run_bad_input(
        operator(tmp_path, dataset_uri=str(garbage), expectation_suite=suite),
        tmp_path, DatasetError, "Could not read .*garbage.parquet.* as parquet",
    )  # fmt: skip
    inline = [{"type": "expect_column_values_to_not_be_null", "column": "plan"}]
    run_bad_input(
        operator(tmp_path, dataset_uri=data["empty_partition"], expectations=inline),
        tmp_path, EmptyDatasetError, "has no rows and suite 'inline_suite' .* has no row-count expectation",
    )  # fmt: skip
    run_bad_input(
        operator(tmp_path, dataset_uri=data["clean_1"], infer_from=data["empty_partition"]),
        tmp_path, EmptyDatasetError, "has no rows",
    )  # fmt: skip


def test_bad_suites(data, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x", "expectations": [')
    run_bad_input(
        operator(tmp_path, dataset_uri=data["clean_1"], expectation_suite=str(broken)),
        tmp_path, ExpectationSuiteError, "broken.json' is not valid JSON",
    )  # fmt: skip
    typo = tmp_path / "typo.json"
    typo.write_text(
        json.dumps(
            {"name": "t", "expectations": [{"type": "expect_column_values_to_be_nul", "kwargs": {"column": "plan"}}]}
        )
    )
    run_bad_input(
        operator(tmp_path, dataset_uri=data["clean_1"], expectation_suite=str(typo)),
        tmp_path, ExpectationSuiteError,
        "'expect_column_values_to_be_nul' is not a Great Expectations 1.x expectation type. "
        "Did you mean expect_column_values_to_be_null",
    )  # fmt: skip
    bad_arguments = [{"type": "expect_column_values_to_be_between", "column": "plan", "min_value": "low"}]
    run_bad_input(
        operator(tmp_path, dataset_uri=data["clean_1"], expectations=bad_arguments),
        tmp_path, ExpectationSuiteError, r"expectation #1 \(expect_column_values_to_be_between\).*min_value",
    )  # fmt: skip
    run_bad_input(
        operator(tmp_path, dataset_uri=data["clean_1"], expectation_suite=str(tmp_path / "absent.json")),
        tmp_path, ExpectationSuiteError, "absent.json' does not exist",
    )  # fmt: skip
    unknown_column = [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "discount"}}]
    run_bad_input(
        operator(tmp_path, dataset_uri=data["clean_1"], expectations=unknown_column),
        tmp_path, ExpectationSuiteError, "'discount' \\(used by expect_column_values_to_not_be_null\\)",
    )  # fmt: skip
    # With expect_column_to_exist the same absence is a validation failure, not a bad suite.
    asserted = [{"type": "expect_column_to_exist", "column": "discount"}, *unknown_column]
    frame = read_dataset(data["clean_1"])
    suite = validation.suite_from_expectations(asserted)
    validation.check_validation_input(frame, suite, data["clean_1"])


def test_operator_arguments_are_checked_when_the_dag_is_parsed(tmp_path):
    with pytest.raises(ConfigurationError, match="no expectation suite"):
        operator(tmp_path, dataset_uri="x.parquet")
    with pytest.raises(ConfigurationError, match="expectation_suite and infer_from"):
        operator(tmp_path, dataset_uri="x.parquet", expectation_suite="s.json", infer_from="r.parquet")
    with pytest.raises(ConfigurationError, match="on_failure='ignore'"):
        operator(tmp_path, dataset_uri="x.parquet", infer_from="r.parquet", on_failure="ignore")
    with pytest.raises(ConfigurationError, match="row_count_factor=0.5"):
        operator(tmp_path, dataset_uri="x.parquet", infer_from="r.parquet", row_count_factor=0.5)
    templated = operator(
        tmp_path, dataset_uri="x.parquet", expectation_suite="{{ params.suite }}", infer_from="{{ params.ref }}"
    )
    templated.expectation_suite, templated.infer_from = "", ""  # both rendered empty
    with pytest.raises(ConfigurationError, match="exactly one suite source after templating, got none"):
        templated.execute({})


# -- on_failure policy ------------------------------------------------------------------------------------


def test_on_failure_policy(sample_outcome, tmp_path, capsys):
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    failed = sample_outcome("unseen_category")
    passed = sample_outcome("clean_3")
    for policy in ("fail", "skip", "warn"):
        operator(tmp_path, dataset_uri="x", infer_from="r", on_failure=policy).apply_policy(passed, "report.html")

    with pytest.raises(AirflowFailException) as failure:
        operator(tmp_path, dataset_uri="x", infer_from="r").apply_policy(failed, "/reports/page.html")
    message = str(failure.value)
    assert "FAILED: 23 of 24 expectations met, 1 failed" in message
    assert "plan: expect_column_values_to_be_in_set" in message and "40 of 2,000 rows unexpected (2.00%)" in message
    assert "'enterprise'" in message and "Report: /reports/page.html" in message

    with pytest.raises(AirflowSkipException, match="on_failure='skip'"):
        operator(tmp_path, dataset_uri="x", infer_from="r", on_failure="skip").apply_policy(failed, "r.html")

    capsys.readouterr()
    operator(tmp_path, dataset_uri="x", infer_from="r", on_failure="warn").apply_policy(failed, "r.html")
    logged = capsys.readouterr().out  # Airflow's task logger writes through structlog
    assert "Continuing although validation failed (on_failure='warn')" in logged and "'enterprise'" in logged


# -- S3 ---------------------------------------------------------------------------------------------------


def test_s3_dataset_suite_and_report(data, s3_bucket, sample_suite):
    from mlops_provider.hooks.datasets import DatasetHook

    hook = DatasetHook()  # aws_default points at the moto server
    client = hook.s3_client
    dataset_uri = f"s3://{s3_bucket}/events/dt=2026-01-04/"
    hook.write(read_dataset(data["clean_4"]), dataset_uri)
    client.put_object(Bucket=s3_bucket, Key="suites/churn.json", Body=SAMPLE_SUITE.read_bytes())

    suite = validation.load_suite(f"s3://{s3_bucket}/suites/churn.json", s3_client=client)
    assert suite.expectations == sample_suite.expectations
    frame = hook.read(dataset_uri, allow_empty=True)
    validation.check_validation_input(frame, suite, dataset_uri)
    run = validation.run_validation(frame, suite, dataset_uri=dataset_uri)
    assert run.outcome.success and run.outcome.rows == ROWS

    docs_uri = f"s3://{s3_bucket}/reports/validation/data_docs"
    stale_key = "reports/validation/data_docs/validations/customer_churn/old/page.html"
    client.put_object(Bucket=s3_bucket, Key=stale_key, Body=b"an earlier try")
    page = validation.publish_data_docs(run, docs_uri, s3_client=client)
    validation.write_suite(suite, f"s3://{s3_bucket}/reports/validation/expectation_suite.json", s3_client=client)
    keys = {item["Key"] for item in client.list_objects_v2(Bucket=s3_bucket, Prefix="reports/")["Contents"]}
    assert page.startswith(docs_uri + "/validations/") and page.removeprefix(f"s3://{s3_bucket}/") in keys
    assert "reports/validation/data_docs/index.html" in keys and stale_key not in keys
    saved = client.get_object(Bucket=s3_bucket, Key="reports/validation/expectation_suite.json")["Body"].read()
    assert json.loads(saved)["name"] == "customer_churn"

    with pytest.raises(ExpectationSuiteError, match="does not exist"):
        validation.load_suite(f"s3://{s3_bucket}/suites/absent.json", s3_client=client)


# -- one real DAG run: skip propagation, XCom, extra link -------------------------------------------------


@pytest.mark.airflow_db
def test_dag_skips_downstream_on_bad_data_and_links_the_report(airflow_db, data, s3_bucket, monkeypatch, tmp_path):
    from dags.mlops_test_validation import dag
    from mlops_provider.hooks.datasets import DatasetHook

    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    clean_uri = f"s3://{s3_bucket}/events/dt=2026-01-05/"
    DatasetHook().write(read_dataset(data["clean_5"]), clean_uri)
    dag_run = dag.test(
        run_conf={
            "clean_uri": clean_uri,
            "bad_uri": data["unseen_category"],
            "reference_uri": data["reference"],
            "clean_reports_uri": f"s3://{s3_bucket}/reports",
        }
    )
    assert dag_run.state == "success", "a skipped validation must not turn the run red"
    tis = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    assert {task_id: ti.state for task_id, ti in tis.items()} == {
        "validate_clean": "success",
        "train_on_clean": "success",
        "validate_bad": "skipped",
        "train_on_bad": "skipped",
    }

    clean = tis["validate_clean"].xcom_pull(task_ids="validate_clean")
    assert clean["success"] and clean["evaluated"] == clean["successful"] == 24 and clean["failed"] == []
    assert clean["report_uri"].startswith(f"s3://{s3_bucket}/reports/validation/mlops_test_validation/")
    assert clean["suite_uri"].endswith("/validate_clean/expectation_suite.json")
    link = tis["validate_clean"].xcom_pull(task_ids="validate_clean", key="mlops_validation_report")
    assert link.startswith(f"https://s3.console.aws.amazon.com/s3/object/{s3_bucket}?prefix=reports/validation/")
    assert tis["train_on_clean"].xcom_pull(task_ids="train_on_clean") == 24

    bad = tis["validate_bad"].xcom_pull(task_ids="validate_bad", key="validation_result")
    assert not bad["success"]
    assert [(f["column"], f["expectation"]) for f in bad["failed"]] == [("plan", "expect_column_values_to_be_in_set")]
    report = Path(bad["report_uri"])
    assert report.is_file() and str(tmp_path / "home" / "reports" / "validation") in str(report)
    inferred = json.loads(Path(bad["suite_uri"]).read_text())
    assert (
        inferred["name"] == "inferred_validate_bad" and report.parents[4] == Path(bad["suite_uri"]).parent / "data_docs"
    )
    assert inferred["meta"]["mlops_inference"]["reference_uri"] == data["reference"]
    bad_link = tis["validate_bad"].xcom_pull(task_ids="validate_bad", key="mlops_validation_report")
    assert bad_link == "file://" + bad["report_uri"]
