"""OpenLineage from the provider's operators, through Airflow's ``openlineage`` provider.

The names and the conversion to facets are tested in-process. The lifecycle is run by ``airflow dags test`` in
a subprocess configured with a file transport, the way a deployment turns OpenLineage on: the provider's plugin
decides once per process whether its listener is registered, and the pytest process (with no transport) has
long decided "off". The events in the file must form one connected graph: the raw partitions -> validate and
train -> the model version -> promote -> the alias -> score -> the predictions.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict, deque
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import run_cli
from mlops_provider import lineage
from sample_data import write_partitions

# -- names ------------------------------------------------------------------------------------------------------


def test_local_paths_are_the_file_namespace_with_absolute_normalised_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = {(d.namespace, d.name) for d in lineage.uri_datasets("data/dt=2026-01-01/")}
    assert names == {("file", str(tmp_path / "data" / "dt=2026-01-01"))}
    same = lineage.uri_datasets(f"file://{tmp_path}/data/./dt=2026-01-01")
    assert [(d.namespace, d.name) for d in same] == [("file", str(tmp_path / "data" / "dt=2026-01-01"))]


def test_s3_uris_name_the_bucket_as_namespace_and_the_key_as_name():
    listed = lineage.uri_datasets("s3://lake/events/dt=2026-01-01/, s3://lake/events/dt=2026-01-02/part.parquet")
    assert [(d.namespace, d.name) for d in listed] == [
        ("s3://lake", "events/dt=2026-01-01"),
        ("s3://lake", "events/dt=2026-01-02/part.parquet"),
    ]


def test_feast_views_online_tables_and_registry_names():
    assert (
        lineage.feast_view("churn", "customer_profile").namespace,
        lineage.feast_view("churn", "customer_profile").name,
    ) == (
        "feast://churn",
        "customer_profile",
    )
    online = lineage.feast_online_view("churn", "customer_profile")
    assert (online.namespace, online.name) == ("feast://churn/online", "customer_profile")
    assert (
        lineage.mlflow_namespace("https://bot:s3cret@mlflow.example.com:5000/mlflow/")
        == "mlflow://mlflow.example.com:5000/mlflow"
    )
    assert (
        lineage.mlflow_namespace("sqlite:////var/mlops/mlflow/mlflow.db")
        == "mlflow+sqlite:///var/mlops/mlflow/mlflow.db"
    )
    assert lineage.mlflow_namespace("postgresql://user:pw@db:5432/mlflow") == "mlflow+postgresql://db:5432/mlflow"
    assert lineage.model_version("mlflow://m:5000", "churn", 3).name == "models/churn/3"
    assert lineage.model_alias("mlflow://m:5000", "churn", "champion").name == "models/churn@champion"
    with pytest.raises(ValueError, match="Feast project"):
        lineage.feast_view("", "customer_profile")
    with pytest.raises(ValueError, match="MLflow registry URI"):
        lineage.mlflow_namespace(" ")


# -- conversion -------------------------------------------------------------------------------------------------


def test_a_description_becomes_openlineage_datasets_with_standard_and_custom_facets():
    from openlineage.client.serde import Serde

    raw = lineage.uri_datasets("s3://lake/events/dt=2026-01-01")[0].with_details(
        columns=(("customer_id", "int64"), ("plan", "object")),
        rows=800,
        assertions=({"assertion": "expect_column_values_to_not_be_null", "column": "customer_id", "success": True},),
    )
    version = lineage.model_version("mlflow://m:5000", "churn", "1").with_details(
        facets={"model_version": {"metrics": {"roc_auc": 0.91}, "data_fingerprint": "sha256:abc"}}
    )
    converted = lineage.to_operator_lineage(
        lineage.Lineage(inputs=[raw, raw], outputs=[version], run_facets={"gate": {"decision": "passed"}})
    )
    assert len(converted.inputs) == 1  # the same dataset named twice is one input
    event_input = json.loads(Serde.to_json(converted.inputs[0]))
    assert event_input["namespace"] == "s3://lake" and event_input["name"] == "events/dt=2026-01-01"
    fields = event_input["facets"]["schema"]["fields"]
    assert [(f["name"], f["type"]) for f in fields] == [("customer_id", "int64"), ("plan", "object")]
    assert event_input["inputFacets"]["dataQualityMetrics"]["rowCount"] == 800
    assert event_input["inputFacets"]["dataQualityAssertions"]["assertions"][0]["column"] == "customer_id"
    output = json.loads(Serde.to_json(converted.outputs[0]))
    facet = output["facets"]["mlops_model_version"]
    assert facet["metrics"] == {"roc_auc": 0.91} and facet["data_fingerprint"] == "sha256:abc"
    assert facet["_producer"] == lineage.PRODUCER
    assert facet["_schemaURL"].endswith("#/$defs/MlopsModelVersionFacet")
    run_facet = json.loads(Serde.to_json(converted.run_facets["mlops_gate"]))
    assert run_facet["decision"] == "passed" and run_facet["_producer"] == lineage.PRODUCER


def test_a_lineage_failure_never_fails_the_task_and_an_unknown_operator_describes_nothing(caplog):
    from mlops_provider.operators.lineage import describe_task

    def broken():
        raise KeyError("version")

    empty = lineage.safe_operator_lineage(broken, "lifecycle.train")
    assert empty.inputs == [] and empty.outputs == [] and empty.run_facets == {}
    assert "no lineage for task lifecycle.train" in caplog.text
    assert describe_task(SimpleNamespace(), {"anything": 1}) is None


# -- a lifecycle run, with the provider's listener and a file transport ------------------------------------------


def complete_events(path: Path) -> list[dict]:
    """The task-level COMPLETE events of the file, one JSON document a line."""
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in events if e["eventType"] == "COMPLETE" and "." in e["job"]["name"]]


def lineage_graph(events: list[dict]) -> dict[str, set[str]]:
    """Edges dataset -> job -> dataset; a dataset node is ``namespace|name``, a job node ``job:<name>``."""
    edges: dict[str, set[str]] = defaultdict(set)
    for event in events:
        job = f"job:{event['job']['name']}"
        for dataset in event.get("inputs") or []:
            edges[f"{dataset['namespace']}|{dataset['name']}"].add(job)
        for dataset in event.get("outputs") or []:
            edges[job].add(f"{dataset['namespace']}|{dataset['name']}")
    return edges


def path_between(edges: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    previous: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            path = []
            step: str | None = node
            while step is not None:
                path.append(step)
                step = previous[step]
            return path[::-1]
        for following in edges.get(node, ()):
            if following not in previous:
                previous[following] = node
                queue.append(following)
    return None


def by_task(events: list[dict], task_id: str) -> dict:
    found = [e for e in events if e["job"]["name"] == f"mlops_lifecycle.{task_id}"]
    assert len(found) == 1, [e["job"]["name"] for e in events]
    return found[0]


def dataset(datasets: list[dict], name_part: str) -> dict:
    found = [d for d in datasets if name_part in d["name"]]
    assert len(found) == 1, [d["name"] for d in datasets]
    return found[0]


@pytest.mark.airflow_db
def test_a_lifecycle_run_yields_a_connected_lineage_graph_from_raw_partitions_to_predictions(airflow_db, tmp_path):
    partitions = write_partitions(tmp_path / "raw", start="2026-01-01", days=2, rows_per_day=300)
    dataset_uri = ",".join(str(p.parent) for p in partitions)  # two raw partitions read as one dataset
    model = f"churn-lineage-{uuid.uuid4().hex[:6]}"
    events_file = tmp_path / "openlineage.jsonl"
    env = {
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "mlops-tests",
        # In the task's own process, bounded: forking a process that holds MLflow's and GX's threads is needless.
        "AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD": "True",
        "MLOPS_HOME": str(tmp_path / "mlops_home"),  # a fresh embedded MLflow store: the model starts cold
        "MLOPS_WORK_URI": str(tmp_path / "work"),
    }
    conf = {"dataset_uri": dataset_uri, "model_name": model, "estimator_params": {"max_iter": 30}}
    result = run_cli("airflow", "dags", "test", "mlops_lifecycle", "-c", json.dumps(conf), env=env, timeout=240)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    events = complete_events(events_file)

    validate = by_task(events, "lifecycle.validate")
    raw = [d for d in validate["inputs"] if "dt=2026-01-0" in d["name"]]
    assert sorted(d["name"] for d in raw) == sorted(str(p.parent) for p in partitions)
    assert {d["namespace"] for d in raw} == {"file"}
    first = raw[0]
    assert {"customer_id", "churned"} <= {f["name"] for f in first["facets"]["schema"]["fields"]}
    assertions = first["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert assertions and all(a["success"] for a in assertions)
    assert {"assertion": "expect_column_values_to_not_be_null", "column": "customer_id", "success": True} in [
        {k: a.get(k) for k in ("assertion", "column", "success")} for a in assertions
    ]
    assert validate["run"]["facets"]["mlops_validation"]["success"] is True

    train = by_task(events, "lifecycle.train")
    version = dataset(train["outputs"], f"models/{model}/")
    assert version["name"] == f"models/{model}/1" and version["namespace"].startswith("mlflow+sqlite://")
    facts = version["facets"]["mlops_model_version"]
    assert facts["data_fingerprint"] and "roc_auc" in facts["metrics"]
    assert facts["_schemaURL"].endswith("MlopsModelVersionFacet")

    gate = by_task(events, "lifecycle.gate")
    assert gate["run"]["facets"]["mlops_gate"]["decision"] == "passed"
    promote = by_task(events, "lifecycle.promote")
    alias = dataset(promote["outputs"], "@champion")
    move = alias["outputFacets"]["mlops_alias_move"]
    # OpenLineage leaves out null fields: a cold start moves the alias from nothing.
    assert (move["action"], move.get("from_version"), move["to_version"]) == ("promote", None, "1")

    score = by_task(events, "lifecycle.score")
    predictions = dataset(score["outputs"], "predictions")
    assert {"prediction", "model_version"} <= {f["name"] for f in predictions["facets"]["schema"]["fields"]}
    assert predictions["outputFacets"]["outputStatistics"]["rowCount"] == 600

    # One graph: each raw partition reaches the predictions through training, the version, promotion and the alias.
    edges = lineage_graph(events)
    version_node = f"{version['namespace']}|{version['name']}"
    alias_node = f"{alias['namespace']}|{alias['name']}"
    predictions_node = f"{predictions['namespace']}|{predictions['name']}"
    for partition in raw:
        path = path_between(edges, f"file|{partition['name']}", version_node)
        assert path and "job:mlops_lifecycle.lifecycle.train" in path, path
    through_promotion = path_between(edges, version_node, alias_node)
    assert through_promotion == [version_node, "job:mlops_lifecycle.lifecycle.promote", alias_node]
    assert path_between(edges, alias_node, predictions_node) == [
        alias_node,
        "job:mlops_lifecycle.lifecycle.score",
        predictions_node,
    ]
    # The same version identity is what the gate judged and what scored.
    assert version_node in {f"{d['namespace']}|{d['name']}" for d in gate["inputs"]}
    assert version_node in {f"{d['namespace']}|{d['name']}" for d in score["inputs"]}
