"""``mlops-serve``'s micro-batching as a real process: concurrent requests scored together still get each its own
answer (and log row), and a request the model cannot read, inside a concurrent burst, gets its own 400."""

from __future__ import annotations

import re
import threading
import time
import uuid

import pandas as pd
import pytest

from mlops_provider.core.prediction import score_frame
from support.serving import (
    CHURN_ID,
    call,
    churn_records,
    load_version,
    read_log,
    register_churn_versions,
    set_alias,
    start_serving,
)

THREADS = 12
PER_THREAD = 40
RECORDS = churn_records(THREADS * PER_THREAD, seed=23, first_id=50_000)  # distinct rows, distinct ids


@pytest.fixture(scope="module")
def served(mlflow_server, tmp_path_factory):
    name = f"batch-{uuid.uuid4().hex[:8]}"
    (version,) = register_churn_versions(mlflow_server.url, name, 1)
    set_alias(mlflow_server.url, name, "champion", version)
    model = load_version(mlflow_server.url, name, version)
    process = start_serving(
        mlflow_server.url, name, tmp_path_factory.mktemp("batching"), extra_args=["--log-rotate-seconds", "1"]
    )
    yield process, name, version, model
    process.stop()


def burst(url: str, bodies: list[list[dict]]) -> list[list[tuple[int, object]]]:
    """Each thread posts its bodies back to back over one keep-alive connection, all threads starting together;
    the (status, answer) of every request, per thread in order."""
    import http.client
    import json
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    results: list[list[tuple[int, object]]] = [[] for _ in bodies]
    start = threading.Barrier(len(bodies))

    def run(index: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        start.wait()
        try:
            for body in bodies[index]:
                connection.request("POST", "/predict", json.dumps(body), {"Content-Type": "application/json"})
                response = connection.getresponse()
                results[index].append((response.status, json.loads(response.read())))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def logged(process, name: str, ids: set, timeout: float = 30) -> pd.DataFrame:
    """The log rows of ``ids``, waiting for the journal's rotation to bring them all in."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            log = read_log(process.extra["log_root"], name)
            rows = log[log[CHURN_ID].isin(ids)]
        except FileNotFoundError:
            rows = pd.DataFrame(columns=[CHURN_ID, "prediction"])
        if len(rows) >= len(ids) or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def batch_counts(url: str, name: str) -> tuple[float, float]:
    """(batches of one row, all batches) from ``mlops_serve_batch_rows``."""
    text = call(f"{url}/metrics")[1]
    one = re.search(rf'mlops_serve_batch_rows_bucket{{le="1.0",model="{name}"}} (\S+)', text)
    total = re.search(rf'mlops_serve_batch_rows_count{{model="{name}"}} (\S+)', text)
    assert one and total, "no mlops_serve_batch_rows histogram in /metrics"
    return float(one.group(1)), float(total.group(1))


def test_concurrent_requests_each_get_the_answer_for_their_own_row(served):
    process, name, version, model = served
    singles_before, batches_before = batch_counts(process.url, name)
    bodies = [[{"dataframe_records": [RECORDS[t * PER_THREAD + i]]} for i in range(PER_THREAD)] for t in range(THREADS)]
    results = burst(process.url, bodies)

    want = score_frame(model, pd.DataFrame(RECORDS))
    answers = {}
    for thread, answered in enumerate(results):
        assert len(answered) == PER_THREAD
        for i, (status, answer) in enumerate(answered):
            assert status == 200, answer
            answers[RECORDS[thread * PER_THREAD + i][CHURN_ID]] = answer
    for position, record in enumerate(RECORDS):
        answer = answers[record[CHURN_ID]]
        assert answer["model_version"] == version and answer["alias"] == "champion"
        assert answer["predictions"] == [want["prediction"].iloc[position]]
        assert answer["probabilities"]["1"] == pytest.approx([want["probability_1"].iloc[position]], rel=1e-9)
    # Distinct rows have distinct answers, so a mix-up between batched requests could not pass the checks above.
    assert want["probability_1"].nunique() > 0.9 * len(RECORDS)

    singles, batches = batch_counts(process.url, name)
    assert batches - batches_before < len(RECORDS), "every request was scored alone: no batching"
    assert (batches - batches_before) - (singles - singles_before) > 0, "no batch held more than one row"

    # One journal append per batch still logs one row per request, with its own answer.
    rows = logged(process, name, {record[CHURN_ID] for record in RECORDS})
    assert len(rows) == len(RECORDS) and set(rows[CHURN_ID]) == set(answers)
    for customer, prediction in zip(rows[CHURN_ID], rows["prediction"], strict=True):
        assert answers[customer]["predictions"] == [prediction]


def test_a_bad_request_in_a_concurrent_burst_gets_its_own_400(served):
    process, name, version, model = served
    singles_before, batches_before = batch_counts(process.url, name)
    good, bad = [], set()
    bodies: list[list[dict]] = []
    for t in range(THREADS):
        mine = []
        for i in range(PER_THREAD // 2):
            record = {**RECORDS[t * PER_THREAD + i], CHURN_ID: 60_000 + t * PER_THREAD + i}
            if i % 5 == t % 5:  # every fifth request of each thread, at staggered positions
                # text for a number (its frame's dtypes differ, so it is scored alone), or an infinite number (same
                # dtypes as the good rows: it shares their batch, whose call fails, and is found by the fallback)
                record["monthly_charges"] = "lots" if t % 2 else float("inf")
                bad.add(record[CHURN_ID])
            else:
                good.append(record)
            mine.append({"dataframe_records": [record]})
        bodies.append(mine)
    results = burst(process.url, bodies)

    want = score_frame(model, pd.DataFrame(good)).assign(**{CHURN_ID: [r[CHURN_ID] for r in good]})
    want = want.set_index(CHURN_ID)
    for thread, answered in enumerate(results):
        for body, (status, answer) in zip(bodies[thread], answered, strict=True):
            customer = body["dataframe_records"][0][CHURN_ID]
            if customer in bad:
                assert status == 400, answer
                assert f"{name} version {version} could not score the rows" in answer["detail"], answer
                if thread % 2:
                    assert "'monthly_charges'" in answer["detail"], answer
            else:
                assert status == 200, answer
                assert answer["predictions"] == [want.loc[customer, "prediction"]]
                assert answer["probabilities"]["1"] == pytest.approx([want.loc[customer, "probability_1"]], rel=1e-9)
    singles, batches = batch_counts(process.url, name)
    assert (batches - batches_before) - (singles - singles_before) > 0, "no batch held more than one row"
    rows = logged(process, name, set(want.index))
    assert set(rows[CHURN_ID]) == set(want.index)  # every good one, none of the bad ones


# -- the batcher in-process (no server): one call and one journal append per batch, answers split back ------------


class RecordingJournal:
    def __init__(self, futures: list, *, fail: bool = False) -> None:
        self.futures = futures
        self.fail = fail
        self.appends: list[tuple[bytes, int, list[bool]]] = []

    def append(self, data: bytes, rows: int) -> None:
        self.appends.append((data, rows, [f.done() for f in self.futures]))
        if self.fail:
            raise OSError("disk full")


def _pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from sample_data import churn_frame
    from support.serving import CHURN_FEATURES

    frame = churn_frame(800, seed=5)
    numeric, categorical = CHURN_FEATURES[:3], CHURN_FEATURES[3:]
    preprocess = ColumnTransformer(
        [
            ("numeric", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    model = Pipeline([("preprocess", preprocess), ("model", LogisticRegression(max_iter=300))])
    return model.fit(frame[CHURN_FEATURES], frame["churned"])


def _run_batch(bodies: list[dict], *, fail: bool = False):
    import asyncio
    import json
    from datetime import UTC, datetime

    from mlops_provider.serving.batching import Batcher
    from mlops_provider.serving.fastpath import fast_path
    from mlops_provider.serving.metrics import ServingMetrics
    from mlops_provider.serving.payload import parse_request
    from mlops_provider.serving.routing import LoadedModel
    from support.serving import CHURN_FEATURES

    pipeline = _pipeline()
    model = LoadedModel("7", pipeline, tuple(CHURN_FEATURES), datetime.now(UTC), fast=fast_path(pipeline))
    metrics = ServingMetrics()
    futures: list = []
    journal = RecordingJournal(futures, fail=fail)
    shadowed: list = []
    batcher = Batcher("m", journal=journal, shadow_submit=lambda *a: shadowed.append(a), metrics=metrics)  # type: ignore[arg-type]

    async def main():
        for body in bodies:  # all pending before the batcher thread starts: one batch
            parsed = parse_request(json.dumps(body).encode(), id_columns=(CHURN_ID,), require_ids=True, header_key=None)
            futures.append(batcher.submit(model, "champion", parsed, model))
        batcher.start()
        return await asyncio.gather(*futures)

    try:
        outcomes = asyncio.run(main())
    finally:
        batcher.stop()
    return pipeline, outcomes, journal, shadowed, metrics


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_the_batcher_scores_in_one_batch_and_journals_it_once_before_any_answer():
    from mlops_provider.serving.batching import Refused, Scored

    records = churn_records(40, seed=8, first_id=7_000)
    bodies = [{"dataframe_records": [r]} for r in records]
    bodies[3]["dataframe_records"][0]["monthly_charges"] = float("inf")  # same dtypes: fails the batched call
    bodies[9]["dataframe_records"][0]["tenure_months"] = "many"  # other dtypes: scored on its own
    pipeline, outcomes, journal, shadowed, metrics = _run_batch(bodies)

    assert [type(o) for o in outcomes] == [Refused if i in (3, 9) else Scored for i in range(40)]
    assert outcomes[3].status == 400 and "could not score" in outcomes[3].detail
    assert outcomes[9].status == 400 and "'tenure_months'" in outcomes[9].detail
    for i, (record, outcome) in enumerate(zip(records, outcomes, strict=True)):
        if i in (3, 9):
            continue
        want = score_frame(pipeline, pd.DataFrame([record]))  # each row alone, as unbatched
        assert outcome.predictions == want["prediction"].tolist()
        assert outcome.probabilities["1"] == pytest.approx(want["probability_1"].tolist(), rel=1e-12)
    # One append for the batch, before any answer; one line per answered request, with its own id.
    ((data, rows, done),) = journal.appends
    assert rows == 38 and not any(done)
    import json

    lines = [json.loads(line) for line in data.decode().splitlines()]
    assert [line["ids"][CHURN_ID][0] for line in lines] == [
        r[CHURN_ID] for i, r in enumerate(records) if i not in (3, 9)
    ]
    assert len(shadowed) == 38
    assert metrics.batch_rows.labels("m")._sum.get() == 40


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_the_batcher_answers_503_for_the_whole_batch_when_the_journal_fails():
    from mlops_provider.serving.batching import Refused

    bodies = [{"dataframe_records": [r]} for r in churn_records(5, seed=9)]
    _, outcomes, journal, shadowed, _ = _run_batch(bodies, fail=True)
    assert all(isinstance(o, Refused) and o.status == 503 for o in outcomes) and not shadowed
    assert len(journal.appends) == 1
