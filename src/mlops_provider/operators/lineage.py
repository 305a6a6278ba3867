"""What each operator of the provider tells OpenLineage: the datasets it read and wrote, and its verdicts.

``describe_task(operator, result)`` is called by ``ResultOperator.get_openlineage_facets_on_complete`` once the
task ended (success, skip or failure), with the dict the task returned (None when it stopped before returning)
and the operator's rendered arguments. One description per operator class, found along the class's MRO, so a
subclass of a provider operator is described like its parent. Names and facets: ``mlops_provider.lineage``.

Kept out of the operator modules on purpose: the descriptions only read what a task already left behind (its
result, its rendered arguments, the schemas its ``DatasetHook`` saw), and they never call a service except the
MLflow hook's already-resolved settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlops_provider import arguments
from mlops_provider.lineage import (
    Lineage,
    LineageDataset,
    feast_online_view,
    feast_view,
    mlflow_namespace,
    model_alias,
    model_version,
    uri_datasets,
)

Result = dict[str, Any] | None
Describer = Callable[[Any, Result], "Lineage | None"]


def describe_task(operator: Any, result: Result) -> Lineage | None:
    """The lineage of ``operator``'s finished task; None for an operator that reads and writes no dataset."""
    for cls in type(operator).__mro__:
        describer = DESCRIBERS.get(cls.__name__)
        if describer is not None and cls.__module__.startswith("mlops_provider."):
            return describer(operator, result)
    return None


# -- shared pieces --------------------------------------------------------------------------------------------


def data(operator: Any, uri: Any, *, rows: int | None = None, **details: Any) -> list[LineageDataset]:
    """The datasets at ``uri`` (one per entry of a comma-separated list), with the schema the task's
    ``DatasetHook`` saw there; ``rows`` only when ``uri`` is one dataset (a list's rows are a total)."""
    text = arguments.optional_text(uri, "dataset URI")
    if text is None:
        return []
    hook = operator.__dict__.get("dataset_hook")  # only a hook this task used knows schemas
    columns = tuple((hook.schemas if hook is not None else {}).get(text, ()))
    found = uri_datasets(text)
    single_rows = rows if len(found) == 1 else None
    return [d.with_details(columns=columns, rows=single_rows, **details) for d in found]


def registry(operator: Any) -> str:
    settings = operator.mlflow_hook.settings
    return mlflow_namespace(settings.registry_uri or settings.tracking_uri)


def alias_move(model_name: str, alias: str, entry: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "model_name": model_name,
        "alias": alias,
        "from_version": entry.get("from_version"),
        "to_version": entry.get("to_version"),
        "action": entry.get("action"),
        "history_seq": entry.get("history_seq"),
        **extra,
    }


# -- one description per operator -------------------------------------------------------------------------------


def describe_validation(op: Any, result: Result) -> Lineage:
    uri = (result or {}).get("dataset_uri") or op.dataset_uri
    assertions = tuple(getattr(op, "validation_assertions", None) or ())
    inputs = data(op, uri, rows=(result or {}).get("rows"), assertions=assertions)
    if arguments.has_value(op.infer_from):
        inputs += data(op, op.infer_from)
    lineage = Lineage(inputs=inputs)
    if result:
        lineage.run_facets["validation"] = {
            "success": result["success"],
            "evaluated": result["evaluated"],
            "successful": result["successful"],
            "failed": [{"expectation": f.get("expectation"), "column": f.get("column")} for f in result["failed"]],
            "suite_name": result["suite_name"],
            "suite_source": result["suite_source"],
            "suite_uri": result.get("suite_uri"),
            "report_uri": result.get("report_uri"),
        }
    return lineage


def describe_training_set(op: Any, result: Result) -> Lineage:
    result = result or {}
    inputs = data(op, result.get("entity_uri") or op.entity_uri)
    if not result.get("features"):  # passed through (or stopped): nothing was joined or written
        return Lineage(inputs=inputs)
    project = result["project"]
    views: dict[str, list[str]] = {}
    for reference in result["features"]:
        view, _, feature = str(reference).partition(":")
        views.setdefault(view, []).append(feature)
    inputs += [feast_view(project, view).with_details(columns=tuple((f, "") for f in fs)) for view, fs in views.items()]
    outputs = data(op, result["output_uri"], rows=result.get("rows"))
    facet = {"features": result["features"], "feature_service": result.get("feature_service"), "project": project}
    return Lineage(inputs=inputs, outputs=outputs, run_facets={"training_set": facet})


def describe_materialization(op: Any, result: Result) -> Lineage | None:
    if not result:
        return None
    project = result["project"]
    window = {"window_start": result["window_start"], "window_end": result["window_end"]}
    inputs, outputs = [], []
    for view in result["feature_views"]:
        inputs.append(feast_view(project, view["name"]))
        written = {
            **window,
            "online_store": result["online_store"],
            "guard": result["guard"],
            "values_written": view["values_written"],
            "values_kept_out": view["values_kept_out"],
        }
        outputs.append(
            feast_online_view(project, view["name"]).with_details(
                rows=view["rows"], run_facets={"materialization": written}
            )
        )
    return Lineage(inputs=inputs, outputs=outputs)


def describe_feast_apply(op: Any, result: Result) -> Lineage | None:
    if not result:
        return None
    outputs = []
    for label in [*result["created"], *result["updated"]]:
        kind, _, name = str(label).partition(":")
        if "feature_view" in kind or "featureview" in kind:
            outputs.append(feast_view(result["project"], name))
    return Lineage(
        outputs=outputs,
        run_facets={"feast_apply": {k: result[k] for k in ("project", "created", "updated", "deleted")}},
    )


def describe_training(op: Any, result: Result) -> Lineage:
    inputs = data(op, op.dataset_uri)
    if not result or not result.get("version"):
        return Lineage(inputs=inputs)
    facts = {
        "model_name": result["model_name"],
        "version": str(result["version"]),
        "run_id": result.get("run_id"),
        "model_uri": result.get("model_uri"),
        "experiment_id": result.get("experiment_id"),
        "metrics": result.get("metrics") or {},
        "data_fingerprint": result.get("data_fingerprint"),
    }
    version = model_version(registry(op), result["model_name"], result["version"]).with_details(
        facets={"model_version": facts}
    )
    run_facet = {"outcome": result.get("outcome"), "reason": result.get("reason")}
    if result.get("outcome") == "skipped":  # nothing new: the task read the champion it matched
        return Lineage(inputs=[*inputs, version], run_facets={"training": run_facet})
    return Lineage(inputs=inputs, outputs=[version], run_facets={"training": run_facet})


def describe_gate(op: Any, result: Result) -> Lineage:
    model_name = (result or {}).get("model_name") or op.model_name
    challenger = (result or {}).get("version") or arguments.optional_text(op.version, "version")
    namespace = registry(op)
    inputs = data(op, op.evaluation_dataset_uri)
    if challenger:
        inputs.append(model_version(namespace, model_name, challenger))
    if not result:
        return Lineage(inputs=inputs)
    if result.get("champion_version"):
        inputs.append(model_version(namespace, model_name, result["champion_version"]))
    decision = "waiting" if result.get("waiting") else "passed" if result.get("gate_passed") else "rejected"
    gate = {
        "decision": decision,
        "gate_passed": result.get("gate_passed"),
        "promoted": result.get("promoted"),
        "alias": result.get("alias"),
        "reasons": result.get("reasons") or [],
        "challenger_version": str(challenger),
        "challenger_metrics": result.get("challenger_metrics") or {},
        "champion_version": result.get("champion_version"),
        "champion_metrics": result.get("champion_metrics") or {},
    }
    lineage = Lineage(inputs=inputs, run_facets={"gate": gate})
    if result.get("promoted"):
        entry = {"from_version": result.get("champion_version"), "to_version": str(result["version"]),
                 "action": "promote", "history_seq": result.get("history_seq")}  # fmt: skip
        moved = alias_move(model_name, result["alias"], entry, approved_by=op.approver())
        lineage.outputs.append(
            model_alias(namespace, model_name, result["alias"]).with_details(
                facets={"model_alias": {"version": str(result["version"])}}, run_facets={"alias_move": moved}
            )
        )
    return lineage


def describe_rollback(op: Any, result: Result) -> Lineage | None:
    if not result:
        return None
    namespace = registry(op)
    entry = {**result, "action": "rollback"}
    moved = alias_move(result["model_name"], result["alias"], entry, reason=str(op.reason))
    alias = model_alias(namespace, result["model_name"], result["alias"]).with_details(
        facets={"model_alias": {"version": str(result["to_version"])}}, run_facets={"alias_move": moved}
    )
    return Lineage(inputs=[model_version(namespace, result["model_name"], result["to_version"])], outputs=[alias])


def describe_prediction(op: Any, result: Result) -> Lineage:
    inputs = data(op, op.dataset_uri)
    if not result:
        return Lineage(inputs=inputs)
    namespace, model_name = registry(op), result["model_name"]
    inputs.append(model_version(namespace, model_name, result["model_version"]))
    if arguments.optional_text(op.version, "version") is None:  # resolved from the alias at the start
        inputs.append(model_alias(namespace, model_name, str(result["alias"])))
    inputs += [model_version(namespace, model_name, v) for v in result.get("shadow_versions") or []]
    served = {"model_name": model_name, "model_version": str(result["model_version"]), "alias": result["alias"]}
    outputs = data(op, result["output_uri"], rows=result.get("rows"), run_facets={"predictions": served})
    if result.get("prediction_log_uri"):
        shadows = {**served, "shadow_versions": result.get("shadow_versions") or []}
        outputs += [
            d.with_details(run_facets={"predictions": shadows}) for d in uri_datasets(result["prediction_log_uri"])
        ]
    return Lineage(inputs=inputs, outputs=outputs)


def describe_drift(op: Any, result: Result) -> Lineage:
    if not result:
        return Lineage(inputs=data(op, op.current_uri))
    prediction_drift = result.get("prediction_drift")
    verdict = {
        "drift_detected": result["drift_detected"],
        "drift_share": result["drift_share"],
        "threshold_share": op.drift_share,
        "drifted_columns": result["drifted_columns"],
        "tested_rows": result.get("tested_rows"),
        "columns": result.get("columns"),
        "prediction_drift": (
            {k: v for k, v in prediction_drift.items() if k != "columns"}
            if isinstance(prediction_drift, dict)
            else None
        ),
        "report_uri": result.get("report_uri"),
    }
    current = result["current"]
    inputs = data(op, current["uri"], rows=current.get("rows"), run_facets={"drift": verdict})
    reference = result.get("reference") or {}
    if reference.get("version") and reference.get("model_name"):  # the champion's training sample
        inputs.append(model_version(registry(op), reference["model_name"], reference["version"]))
    elif reference.get("uri"):
        inputs += data(op, reference["uri"], rows=reference.get("rows"))
    return Lineage(inputs=inputs)


def describe_live_performance(op: Any, result: Result) -> Lineage:
    from mlops_provider.core.performance.log import log_root

    model_name = (result or {}).get("model_name") or op.model_name
    log = f"{log_root(arguments.optional_text(op.prediction_log_uri, 'prediction_log_uri'))}/{model_name}"
    inputs = [*data(op, op.labels_uri), *uri_datasets(log)]
    if not result:
        return Lineage(inputs=inputs)
    window = {"window_start": result["window_start"], "window_end": result["window_end"]}
    namespace = registry(op)
    for version, performance in (result.get("versions") or {}).items():
        live = {**window, "role": performance.get("role"), "rows": performance.get("rows"),
                "metrics": performance.get("metrics") or {}, "baseline": performance.get("baseline") or {}}  # fmt: skip
        inputs.append(model_version(namespace, model_name, version).with_details(run_facets={"live_performance": live}))
    verdict = {
        **window,
        "outcome": result.get("outcome"),
        "degraded": result.get("degraded"),
        "kind": result.get("kind"),
        "primary_metric": result.get("primary_metric"),
        "champion_version": result.get("champion_version"),
        "labelled_rows": result.get("labelled_rows"),
        "statement": result.get("statement"),
        "report_uri": result.get("report_uri"),
    }
    return Lineage(inputs=inputs, run_facets={"live_performance": verdict})


def describe_partitions(op: Any, result: Result) -> Lineage | None:
    if not result:
        return None
    facet = {"partitions": result["partitions"], "count": result["count"], "root": op.dataset_uri}
    return Lineage(inputs=uri_datasets(result["dataset_uri"]), run_facets={"partitions": facet})


def describe_drift_event(op: Any, result: Result) -> Lineage | None:
    if not result or not result.get("current_uri"):
        return None  # Airflow then reports the task's inlet: the drift Asset
    event = {k: result.get(k) for k in ("model_name", "event_id", "drifted_columns", "drift_share", "day", "until")}
    return Lineage(inputs=uri_datasets(result["current_uri"]), run_facets={"drift_event": event})


DESCRIBERS: dict[str, Describer] = {
    "ValidateDataOperator": describe_validation,
    "GetHistoricalFeaturesOperator": describe_training_set,
    "MaterializeFeaturesOperator": describe_materialization,
    "FeastApplyOperator": describe_feast_apply,
    "TrainModelOperator": describe_training,
    "ChallengerGateBase": describe_gate,  # EvaluateChallengerOperator and PromoteModelOperator
    "RollbackModelOperator": describe_rollback,
    "BatchPredictOperator": describe_prediction,
    "DriftCheck": describe_drift,  # DetectDriftOperator and DriftSensor
    "LiveWindow": describe_live_performance,  # EvaluateLivePerformanceOperator and PerformanceSensor
    "SelectPartitionsOperator": describe_partitions,
    "DriftEventOperator": describe_drift_event,
}
