"""OpenLineage for the provider's operators: dataset names, and a plain description turned into facets.

Airflow's ``openlineage`` provider calls ``get_openlineage_facets_on_complete`` on every operator of this
provider (see ``operators.mixins.ResultOperator``). Each operator describes what it read and wrote as a
``Lineage`` of plain values (``operators.lineage`` holds one description per operator); ``to_operator_lineage``
turns it into the provider's ``OperatorLineage`` with OpenLineage client facets. The OpenLineage client is
imported only there, at task time, and only where the ``openlineage`` extra is installed.

Dataset names follow the OpenLineage naming conventions, so the same thing has the same name in every task:

* a local file or folder: namespace ``file``, name its absolute path (no trailing slash);
* ``s3://bucket/key``: namespace ``s3://bucket``, name ``key``;
* a comma-separated list of partitions: one dataset per partition;
* a Feast feature view: namespace ``feast://<project>``, name ``<view>``; its online store table:
  namespace ``feast://<project>/online``, name ``<view>``;
* an MLflow registered model version: namespace ``mlflow://<host[:port][/path]>`` of the registry (a
  database-backed registry: ``mlflow+<scheme>://<location>``, e.g. the embedded store's SQLite file), name
  ``models/<model>/<version>``; an alias: name ``models/<model>@<alias>``.

The model version is an output of training and an input of the gate, promotion and batch prediction; the alias
an output of promotion and rollback and an input of batch prediction: that is what connects the graph.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mlops_provider import __version__
from mlops_provider.core.datasets import parse_uri, split_uris

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

log = logging.getLogger(__name__)

PRODUCER = f"https://pypi.org/project/airflow-provider-mlops/{__version__}/"
FACET_SCHEMA_URL = f"https://pypi.org/project/airflow-provider-mlops/{__version__}/#/$defs/"
# A custom facet's key in the event: the OpenLineage convention is a prefix naming its producer.
FACET_PREFIX = "mlops_"

FacetFields = Mapping[str, Any]


@dataclass(frozen=True)
class LineageDataset:
    """One dataset a task read or wrote, and what the task knows about it.

    :param columns: ``(name, type)`` pairs: the schema facet.
    :param assertions: ``{"assertion", "success", "column"?}`` dicts: the data quality assertions facet (inputs).
    :param rows: rows read (an input's data quality metrics) or written (an output's statistics).
    :param facets: custom dataset facets, by name without the ``mlops_`` prefix: lasting properties of the
        dataset (a model version's metrics and data fingerprint).
    :param run_facets: custom input or output facets: what this run found about the dataset (a drift verdict).
    """

    namespace: str
    name: str
    columns: Sequence[tuple[str, str]] = ()
    assertions: Sequence[Mapping[str, Any]] = ()
    rows: int | None = None
    facets: Mapping[str, FacetFields] = field(default_factory=dict)
    run_facets: Mapping[str, FacetFields] = field(default_factory=dict)

    def with_details(self, **changes: Any) -> LineageDataset:
        from dataclasses import replace

        return replace(self, **changes)


@dataclass
class Lineage:
    """What one task read and wrote, and custom run facets (by name without the ``mlops_`` prefix)."""

    inputs: list[LineageDataset] = field(default_factory=list)
    outputs: list[LineageDataset] = field(default_factory=list)
    run_facets: dict[str, FacetFields] = field(default_factory=dict)


# -- names ------------------------------------------------------------------------------------------------------


def uri_datasets(uri: str) -> list[LineageDataset]:
    """The datasets behind a dataset URI of this provider: a path, ``file://``, ``s3://``, or a comma-separated
    list of those (one dataset per entry)."""
    return [_one_uri_dataset(part) for part in split_uris(uri)]


def _one_uri_dataset(uri: str) -> LineageDataset:
    location = parse_uri(uri)
    if location.scheme == "s3":
        return LineageDataset(namespace=f"s3://{location.bucket}", name=location.path.rstrip("/") or "/")
    path = os.path.normpath(os.path.abspath(location.path))
    return LineageDataset(namespace="file", name=path)


def feast_view(project: str, view: str) -> LineageDataset:
    """A Feast feature view, as its offline source is known to Feast."""
    return LineageDataset(namespace=f"feast://{_required(project, 'Feast project')}", name=_required(view, "view"))


def feast_online_view(project: str, view: str) -> LineageDataset:
    """The online store table of a Feast feature view."""
    return LineageDataset(
        namespace=f"feast://{_required(project, 'Feast project')}/online", name=_required(view, "view")
    )


def mlflow_namespace(registry_uri: str) -> str:
    """The namespace of an MLflow model registry, the same for every task that uses it; never holds credentials.

    ``http(s)://user:pw@host:5000/mlflow`` -> ``mlflow://host:5000/mlflow``; ``sqlite:////data/mlflow.db`` ->
    ``mlflow+sqlite:///data/mlflow.db``; ``databricks`` -> ``mlflow+databricks://``.
    """
    text = _required(registry_uri, "MLflow registry URI")
    parts = urlsplit(text)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    path = parts.path.rstrip("/")
    if parts.scheme in ("http", "https"):
        return f"mlflow://{netloc}{path}"
    if not parts.scheme:
        return f"mlflow+{text}://"
    if parts.scheme == "sqlite":  # sqlite:///relative.db, sqlite:////absolute.db: the file's absolute path
        return f"mlflow+sqlite://{os.path.abspath(parts.path[1:])}"
    if not netloc:
        return f"mlflow+{parts.scheme}://{path}"
    return f"mlflow+{parts.scheme}://{netloc}{path}"


def model_version(namespace: str, model_name: str, version: str | int) -> LineageDataset:
    return LineageDataset(namespace=namespace, name=f"models/{_required(model_name, 'model name')}/{version}")


def model_alias(namespace: str, model_name: str, alias: str) -> LineageDataset:
    return LineageDataset(namespace=namespace, name=f"models/{_required(model_name, 'model name')}@{alias}")


def _required(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"The {what} of a lineage dataset is {value!r}; it needs a non-empty name.")
    return value.strip()


def schema_of(frame: Any) -> list[tuple[str, str]]:
    """``(column, dtype)`` pairs of a pandas DataFrame, for the schema facet."""
    return [(str(name), str(dtype)) for name, dtype in frame.dtypes.items()]


# -- conversion ---------------------------------------------------------------------------------------------------


def to_operator_lineage(lineage: Lineage | None) -> OperatorLineage:
    """The description as the ``OperatorLineage`` Airflow's OpenLineage provider emits."""
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import InputDataset, OutputDataset

    if lineage is None:
        return OperatorLineage()
    inputs = [
        InputDataset(
            namespace=d.namespace,
            name=d.name,
            facets=_dataset_facets(d),
            inputFacets=_input_facets(d),
        )
        for d in _unique(lineage.inputs)
    ]
    outputs = [
        OutputDataset(
            namespace=d.namespace,
            name=d.name,
            facets=_dataset_facets(d),
            outputFacets=_output_facets(d),
        )
        for d in _unique(lineage.outputs)
    ]
    run_facets = {
        f"{FACET_PREFIX}{name}": _custom_facet("run", name, fields) for name, fields in lineage.run_facets.items()
    }
    return OperatorLineage(inputs=inputs, outputs=outputs, run_facets=run_facets)


def safe_operator_lineage(describe: Callable[[], Lineage | None], task: str) -> OperatorLineage:
    """``to_operator_lineage(describe())``, or an empty lineage and a warning: lineage never fails a task."""
    try:
        return to_operator_lineage(describe())
    except Exception as error:
        log.warning("OpenLineage: no lineage for task %s (%s: %s); the task itself is unaffected.",
                    task, type(error).__name__, error, exc_info=log.isEnabledFor(logging.DEBUG))  # fmt: skip
        from airflow.providers.openlineage.extractors import OperatorLineage

        return OperatorLineage()


def _unique(datasets: Sequence[LineageDataset]) -> list[LineageDataset]:
    """One entry per dataset identity; the first description wins (a task may name a dataset twice)."""
    seen: dict[tuple[str, str], LineageDataset] = {}
    for dataset in datasets:
        seen.setdefault((dataset.namespace, dataset.name), dataset)
    return list(seen.values())


def _dataset_facets(dataset: LineageDataset) -> dict[str, Any]:
    from openlineage.client.facet_v2 import schema_dataset

    facets: dict[str, Any] = {}
    if dataset.columns:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(name=name, type=kind or None) for name, kind in dataset.columns
            ]
        )
    for name, fields in dataset.facets.items():
        facets[f"{FACET_PREFIX}{name}"] = _custom_facet("dataset", name, fields)
    return facets


def _input_facets(dataset: LineageDataset) -> dict[str, Any]:
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dqa
    from openlineage.client.facet_v2 import data_quality_metrics_input_dataset as dqm

    facets: dict[str, Any] = {}
    if dataset.assertions:
        facets["dataQualityAssertions"] = dqa.DataQualityAssertionsDatasetFacet(
            assertions=[
                dqa.Assertion(
                    assertion=str(a["assertion"]),
                    success=bool(a["success"]),
                    column=str(a["column"]) if a.get("column") is not None else None,
                )
                for a in dataset.assertions
            ]
        )
    if dataset.rows is not None:
        facets["dataQualityMetrics"] = dqm.DataQualityMetricsInputDatasetFacet(
            columnMetrics={}, rowCount=int(dataset.rows)
        )
    for name, fields in dataset.run_facets.items():
        facets[f"{FACET_PREFIX}{name}"] = _custom_facet("input", name, fields)
    return facets


def _output_facets(dataset: LineageDataset) -> dict[str, Any]:
    from openlineage.client.facet_v2 import output_statistics_output_dataset as stats

    facets: dict[str, Any] = {}
    if dataset.rows is not None:
        facets["outputStatistics"] = stats.OutputStatisticsOutputDatasetFacet(rowCount=int(dataset.rows))
    for name, fields in dataset.run_facets.items():
        facets[f"{FACET_PREFIX}{name}"] = _custom_facet("output", name, fields)
    return facets


def _custom_facet(kind: str, name: str, fields: FacetFields) -> Any:
    """A facet of this provider: its fields as given, with our ``_producer`` and a ``_schemaURL`` naming it."""
    from openlineage.client import facet_v2

    base = {
        "run": facet_v2.RunFacet,
        "dataset": facet_v2.DatasetFacet,
        "input": facet_v2.InputDatasetFacet,
        "output": facet_v2.OutputDatasetFacet,
    }[kind]
    reserved = {"_producer", "_schemaURL", "_deleted"} & set(fields)
    if reserved:
        raise ValueError(f"The facet {name!r} uses the reserved field(s) {sorted(reserved)}.")
    facet = base(producer=PRODUCER).with_additional_properties(**_json_ready(dict(fields)))
    facet._schemaURL = f"{FACET_SCHEMA_URL}{_facet_class_name(name)}"
    return facet


def _facet_class_name(name: str) -> str:
    return "Mlops" + "".join(part.capitalize() for part in name.split("_")) + "Facet"


def _json_ready(value: Any) -> Any:
    """Plain JSON values: facets are serialised with ``json``; numpy scalars and dates are not JSON."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_ready(v) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return str(value)
