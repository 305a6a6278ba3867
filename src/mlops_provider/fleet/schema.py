"""The catalogue's schema: the value checks, the trigger checks and the field table that checks an entry.

The schema is data: ``FIELDS`` (the settings of an entry, named as the ``mlops_lifecycle`` params are) and
``TRIGGERS`` (what retrains a model besides its schedule), each with its check and an example that the error
messages quote. A bad entry becomes a ``CatalogueEntryError`` naming the model, the field and the fix, e.g.
``model 'churn': estimator_params must be a mapping of keyword arguments, got a list; write estimator_params:
{max_iter: 200}``, and only that model is left out.

Plain Python: no Airflow import.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlops_provider.core.alerts import ALERT_KINDS
from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.registry.gate import SCORED_METRICS, check_scored_metrics, validate_thresholds
from mlops_provider.core.registry.names import check_model_name
from mlops_provider.fleet.entries import (
    _ALIASES,
    _ENV_REFERENCE,
    _IDENTIFIER,
    _MISSING,
    DEFAULT_DRIFT_SHARE,
    DEFAULT_LABEL_DELAY_DAYS,
    DEFAULT_MIN_ROWS,
    GATE_METRICS,
    RESERVED_NAMES,
    SCHEDULE_PRESETS,
    TAG_MAX_LENGTH,
    AlertSettings,
    CatalogueEntryError,
    DataArrivalTrigger,
    DriftTrigger,
    ModelEntry,
    PerformanceTrigger,
    Triggers,
    _Bad,
)

# ---------------------------------------------------------------------------------------------------- values


def _describe(value: Any) -> str:
    """What a YAML value is, in words: 'a list', 'text 'abc'', 'the number 3', 'true/false', 'nothing (null)'."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"text {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def _plain(value: Any) -> Any:
    """The value with YAML's mappings as plain dicts (and lists as lists), to hand to operators."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _did_you_mean(word: str, choices: Any) -> str:
    choices = list(choices)
    guess = _ALIASES.get(word) if word in _ALIASES and _ALIASES[word] in choices else None
    if guess is None:
        close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
        guess = close[0] if close else None
    return f"did you mean {guess!r}? " if guess else ""


def _text(example: str) -> Callable[[str, Any], str | None]:
    def check(name: str, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            hint = (
                " (quote it: YAML reads yes/no/on/off and numbers as other types)"
                if isinstance(value, (bool, int, float))
                else ""
            )
            raise _Bad(f"{name} must be text, got {_describe(value)}{hint}; write {example}")
        if not value.strip():
            raise _Bad(f"{name} is empty; write {example}, or leave {name} out")
        return value.strip()

    return check


def _expand(name: str, text: str) -> str:
    """``${VAR}`` from the environment where the DAGs are parsed (``${MLOPS_HOME}`` defaults as the provider's)."""

    def value(match: re.Match[str]) -> str:
        variable = match.group(1)
        if variable in os.environ:
            return os.environ[variable]
        if variable == "MLOPS_HOME":
            from mlops_provider.core.tracking import mlops_home

            return str(mlops_home())
        raise _Bad(
            f"{name} uses ${{{variable}}}, which is not set in the environment where the DAGs are parsed; set "
            f"{variable} there or write the value out"
        )

    return _ENV_REFERENCE.sub(value, text)


def _uri(example: str) -> Callable[[str, Any], str | None]:
    as_text = _text(example)

    def check(name: str, value: Any) -> str | None:
        text = as_text(name, value)
        return None if text is None else _expand(name, text)

    return check


def _names(noun: str, example: str, *, allow_empty: bool = True) -> Callable[[str, Any], tuple[str, ...] | None]:
    def check(name: str, value: Any) -> tuple[str, ...] | None:
        if value is None:
            return None
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()] or ["..."]
            raise _Bad(f"{name} must be a list of {noun}, got text {value!r}; write {name}: [{', '.join(parts)}]")
        if not isinstance(value, (list, tuple)):
            raise _Bad(f"{name} must be a list of {noun}, got {_describe(value)}; write {example}")
        bad = [item for item in value if not isinstance(item, str) or not item.strip()]
        if bad:
            quoted = ", ".join(f"'{item}'" for item in bad[:3])
            raise _Bad(
                f"{name} holds {', '.join(repr(item) for item in bad[:3])}, which {'is' if len(bad) == 1 else 'are'} "
                f"not text; quote names that YAML reads as numbers, booleans or null: {name}: [{quoted}]"
            )
        names = tuple(item.strip() for item in value)
        twice = sorted({item for item in names if names.count(item) > 1})
        if twice:
            raise _Bad(f"{name} names {', '.join(repr(item) for item in twice)} more than once; list each once")
        if not names and not allow_empty:
            raise _Bad(f"{name} is an empty list; list the {noun}, or leave {name} out")
        return names

    return check


def _approvers(name: str, value: Any) -> tuple[str, ...] | str:
    """Airflow user ids, or ``owners``: the entry's owners are the approvers."""
    if value == "owners":
        return "owners"
    return _names("Airflow user ids", "approvers: [alice, bob] (or approvers: owners)")(name, value) or ()


def _feature_refs(name: str, value: Any) -> tuple[str, ...] | str | None:
    example = "feature_refs: [customer_profile:monthly_charges]"
    if isinstance(value, str):  # a Feast feature service
        return _text(example)(name, value)
    refs = _names("Feast feature references (view:feature)", example)(name, value)
    plain = [ref for ref in refs or () if ":" not in ref]
    if plain:
        raise _Bad(
            f"{name} holds {plain[0]!r}, which is not a 'view:feature' reference; write {name}: "
            f"[<feature view>:{plain[0]}] (or give a feature service's name as text)"
        )
    return refs


def _estimator(name: str, value: Any) -> str | None:
    example = "estimator: sklearn.ensemble.RandomForestClassifier"
    text = _text(example)(name, value)
    if text is None:
        return None
    module, _, attribute = text.partition(":") if ":" in text else text.rpartition(".")
    parts = [*module.split("."), *attribute.split(".")]
    if not module or not attribute or not all(_IDENTIFIER.match(part) for part in parts):
        guess = f"estimator: sklearn.ensemble.{text}" if _IDENTIFIER.match(text) else example
        raise _Bad(
            f"estimator {text!r} is not an import path (package.module.Class, or package.module:function returning "
            f"a pipeline); write {guess}, or leave estimator out for HistGradientBoosting"
        )
    return text


def _estimator_params(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _Bad(
            f"{name} must be a mapping of keyword arguments, got {_describe(value)}; write {name}: {{max_iter: 200}}"
        )
    bad = [key for key in value if not isinstance(key, str) or not _IDENTIFIER.match(key)]
    if bad:
        raise _Bad(
            f"{name} has the key {bad[0]!r}, which is not a keyword argument name; use the estimator's parameter "
            f"names, e.g. {name}: {{max_iter: 200}}"
        )
    return _plain(value)


def _primary_metric(name: str, value: Any) -> str | None:
    text = _text("primary_metric: roc_auc")(name, value)
    if text is None or text in GATE_METRICS:
        return text
    kinds = "; ".join(f"{', '.join(metrics)} ({kind})" for kind, metrics in SCORED_METRICS.items())
    hint = _did_you_mean(text, GATE_METRICS)
    raise _Bad(f"primary_metric {text!r} is not a metric the gate scores; {hint}use one of {kinds}")


def _number(example: str) -> Callable[[str, Any], float]:
    def check(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or math.isinf(value):
            raise _Bad(f"{name} must be a number, got {_describe(value)}; write {example}")
        return float(value)

    return check


def _whole(example: str, minimum: int) -> Callable[[str, Any], int]:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _Bad(f"{name} must be a whole number of at least {minimum}, got {_describe(value)}; write {example}")
        return value

    return check


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"{name} must be true or false, got {_describe(value)}; write {name}: true")
    return value


def _thresholds(name: str, value: Any) -> dict[str, dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _Bad(
            f"{name} must be a mapping of metric -> bounds, got {_describe(value)}; write "
            f"{name}: {{roc_auc: {{min: 0.7, min_absolute_change: 0.0}}}}"
        )
    thresholds = _plain(value)
    try:
        validate_thresholds(thresholds)
        check_scored_metrics(thresholds)
    except ConfigurationError as error:
        text = str(error)
        raise _Bad(text if text.startswith(name) else f"{name}: {text}") from None
    return thresholds


def _schedule(name: str, value: Any) -> str | None:
    example = f"{name}: '@daily' or {name}: '0 3 * * *'"
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"{name} must be a cron preset or a cron expression (text), got {_describe(value)}; write {example}")
    text = " ".join(value.split())
    if text in SCHEDULE_PRESETS:
        return text
    if not text.startswith("@") and _valid_cron(text):
        return text
    hint = _did_you_mean(text, SCHEDULE_PRESETS) if text.startswith("@") else ""
    raise _Bad(
        f"{name} {text!r} is neither an Airflow preset ({', '.join(SCHEDULE_PRESETS)}) nor a valid cron expression; "
        f"{hint}write {example}, or null to trigger the DAG only by hand or through the API"
    )


def _valid_cron(text: str) -> bool:
    try:
        from croniter import croniter
    except ImportError:  # without croniter only the shape is checked; Airflow checks the rest when it parses
        return len(text.split()) in (5, 6)
    return bool(croniter.is_valid(text))


# ---------------------------------------------------------------------------------------------------- triggers


def _trigger_fields(
    name: str, value: Any, spec: dict[str, tuple[Callable[[str, Any], Any], Any]], example: str
) -> dict[str, Any]:
    """Check a trigger's mapping against ``spec`` (key -> (check, default); default _MISSING: required)."""
    if value is True:
        value = {}
    if not isinstance(value, Mapping):
        raise _Bad(f"{name} must be a mapping of its settings, got {_describe(value)}; write {example}")
    unknown = [key for key in value if key not in spec]
    if unknown:
        key = str(unknown[0])
        raise _Bad(f"{name} has no setting {key!r}; {_did_you_mean(key, spec)}its settings are {', '.join(spec)}")
    checked = {}
    for key, (check, default) in spec.items():
        if key not in value or value[key] is None:
            if default is _MISSING:
                raise _Bad(f"{name}.{key} is missing; write {example}")
            checked[key] = default
        else:
            checked[key] = check(f"{name}.{key}", value[key])
    return checked


def _share(name: str, value: Any) -> float:
    share = _number(f"{name.rsplit('.', 1)[-1]}: 0.25")(name, value)
    if not 0 < share <= 1:
        raise _Bad(f"{name} must be a share of the feature columns in (0, 1], got {share:g}; write share: 0.25")
    return share


def _no_template(check: Callable[[str, Any], str | None], what: str) -> Callable[[str, Any], str | None]:
    def checked(name: str, value: Any) -> str | None:
        text = check(name, value)
        if text is not None and "{{" in text:
            raise _Bad(f"{name} is {what}, so it cannot be a template ({text!r}); write the folder itself")
        return text

    return checked


def _triggers(name: str, value: Any) -> tuple[Triggers, Any]:
    """The triggers, and ``triggers.schedule`` (``_MISSING`` when not given)."""
    if value is None:
        return Triggers(), _MISSING
    if not isinstance(value, Mapping):
        raise _Bad(
            f"{name} must be a mapping of trigger -> settings, got {_describe(value)}; write "
            f"{name}: {{drift: {{share: 0.25}}}} (triggers: {', '.join(TRIGGERS)})"
        )
    unknown = [key for key in value if key not in TRIGGERS]
    if unknown:
        key = str(unknown[0])
        raise _Bad(f"{name} has an unknown trigger {key!r}; {_did_you_mean(key, TRIGGERS)}use {', '.join(TRIGGERS)}")
    schedule = _schedule(f"{name}.schedule", value["schedule"]) if "schedule" in value else _MISSING
    found: dict[str, Any] = {}
    for kind in ("data_arrival", "drift", "performance"):
        if value.get(kind) in (None, False):
            continue
        check, example = TRIGGERS[kind]
        found[kind] = check(f"{name}.{kind}", value[kind], example)
    return Triggers(**found), schedule


def _data_arrival(name: str, value: Any, example: str) -> DataArrivalTrigger:
    prefix = _no_template(_uri(example), "the folder that receives dt=YYYY-MM-DD partitions")
    settings = _trigger_fields(name, value, {"prefix": (prefix, _MISSING)}, example)
    return DataArrivalTrigger(**settings)


def _drift(name: str, value: Any, example: str) -> DriftTrigger:
    return DriftTrigger(**_trigger_fields(name, value, {"share": (_share, DEFAULT_DRIFT_SHARE)}, example))


def _performance(name: str, value: Any, example: str) -> PerformanceTrigger:
    spec = {
        "labels_uri": (_uri("labels_uri: s3://lake/labels/churn"), _MISSING),
        "label_delay_days": (_whole("label_delay_days: 3", 0), DEFAULT_LABEL_DELAY_DAYS),
        "min_rows": (_whole("min_rows: 200", 1), DEFAULT_MIN_ROWS),
    }
    return PerformanceTrigger(**_trigger_fields(name, value, spec, example))


# What retrains a model besides its schedule: trigger -> (check, example).
TRIGGERS: dict[str, Any] = {
    "schedule": (_schedule, "schedule: '@weekly'"),
    "data_arrival": (_data_arrival, "data_arrival: {prefix: s3://landing/churn}"),
    "drift": (_drift, "drift: {share: 0.25}"),
    "performance": (_performance, "performance: {labels_uri: s3://lake/labels/churn, label_delay_days: 3}"),
}


# ---------------------------------------------------------------------------------------------------- alerts

_ALERTS_EXAMPLE = "alerts: {email: [ml-team@example.com], webhook_conn_id: slack_alerts, on: [drift_detected]}"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def _alert_kinds(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise _Bad(f"{name} must be a list of alert kinds, got {_describe(value)}; write on: [drift_detected, "
                   f"gate_rejected] (kinds: {', '.join(ALERT_KINDS)})")  # fmt: skip
    unknown = [kind for kind in value if kind not in ALERT_KINDS]
    if unknown:
        kind = str(unknown[0])
        prefixed = [known for known in ALERT_KINDS if kind and known.startswith(kind)]
        hint = f"did you mean {prefixed[0]!r}? " if len(prefixed) == 1 else _did_you_mean(kind, ALERT_KINDS)
        raise _Bad(f"{name} names {kind!r}, which is no alert kind; {hint}the kinds are {', '.join(ALERT_KINDS)}")
    return tuple(dict.fromkeys(value))


def _emails(name: str, value: Any) -> tuple[str, ...]:
    addresses = _names("email addresses", "email: [ml-team@example.com]")(name, value) or ()
    bad = [address for address in addresses if not _EMAIL.match(address)]
    if bad:
        raise _Bad(f"{name} holds {bad[0]!r}, which is not an email address; write email: [ml-team@example.com]")
    return addresses


def _alerts(name: str, value: Any) -> AlertSettings | None:
    if value is None:
        return None
    spec: dict[str, tuple[Callable[[str, Any], Any], Any]] = {
        "email": (_emails, ()),
        "smtp_conn_id": (_text("smtp_conn_id: smtp_default"), None),
        "from_email": (_text("from_email: airflow@example.com"), None),
        "webhook_conn_id": (_text("webhook_conn_id: slack_alerts"), None),
        "on": (_alert_kinds, ALERT_KINDS),
    }
    settings = _trigger_fields(name, value, spec, _ALERTS_EXAMPLE)
    if not settings["email"] and not settings["webhook_conn_id"]:
        raise _Bad(f"{name} says where to send nothing; give email, webhook_conn_id or both: write {_ALERTS_EXAMPLE}")
    if settings["smtp_conn_id"] and not settings["email"]:
        raise _Bad(f"{name}.smtp_conn_id is set but email is empty; write email: [ml-team@example.com]")
    return AlertSettings(**settings)


# ---------------------------------------------------------------------------------------------------- the schema


@dataclass(frozen=True)
class FieldSpec:
    """One setting of an entry: its check (value -> checked value, or ``_Bad``), default, and whether required."""

    check: Callable[[str, Any], Any]
    default: Any = None
    required: bool = False
    example: str = ""


FIELDS: dict[str, FieldSpec] = {
    "dataset_uri": FieldSpec(
        _uri("dataset_uri: s3://lake/churn"), required=True, example="dataset_uri: s3://lake/churn"
    ),
    "target_column": FieldSpec(_text("target_column: churned"), required=True, example="target_column: churned"),
    "feature_columns": FieldSpec(
        _names("column names", "feature_columns: [tenure_months, plan]", allow_empty=False),
        example="feature_columns: [tenure_months, plan]",
    ),
    "id_columns": FieldSpec(_names("column names", "id_columns: [customer_id, dt]"), default=()),
    "timestamp_column": FieldSpec(_text("timestamp_column: event_timestamp")),
    "feature_refs": FieldSpec(_feature_refs, default=()),
    "expectation_suite": FieldSpec(_uri("expectation_suite: include/expectations/customer_churn.json")),
    "estimator": FieldSpec(_estimator),
    "estimator_params": FieldSpec(_estimator_params, default={}),
    "slice_columns": FieldSpec(_names("column names", "slice_columns: [contract, plan]"), default=()),
    "sensitive_columns": FieldSpec(_names("column names", "sensitive_columns: [plan]"), default=()),
    "primary_metric": FieldSpec(_primary_metric),
    "min_improvement": FieldSpec(_number("min_improvement: 0.01"), default=0.0),
    "thresholds": FieldSpec(_thresholds),
    "require_approval": FieldSpec(_bool, default=False),
    "approvers": FieldSpec(_approvers, default=()),
    "experiment_name": FieldSpec(_text("experiment_name: churn")),
    "schedule": FieldSpec(_schedule),
    "triggers": FieldSpec(_triggers, default=(Triggers(), _MISSING)),
    "owners": FieldSpec(_names("owner names", "owners: [team-retention]"), default=()),
    "tags": FieldSpec(_names("tags", "tags: [churn, tier-1]"), default=()),
    "description": FieldSpec(_text("description: the retention team's weekly churn model")),
    "alerts": FieldSpec(_alerts, example=_ALERTS_EXAMPLE),
}
# Settings of the mlops_lifecycle DAG that an entry gives another way.
_NOT_FIELDS = {
    "model_name": "the model's name is the entry's key; remove model_name, or rename the entry",
}


def _check_entry(name: str, raw: Any) -> tuple[ModelEntry | None, list[CatalogueEntryError]]:
    """The entry ``name: raw`` checked field by field: the entry, or every problem found in it."""
    errors: list[CatalogueEntryError] = []

    def bad(field_name: str | None, message: str) -> None:
        errors.append(CatalogueEntryError(f"model {name!r}: {message}", model=name, field=field_name))

    try:
        check_model_name(name)
    except ConfigurationError as error:
        bad("name", str(error).replace(f"model_name={name!r} is", "the name is", 1) + " Rename the entry.")
    if name in RESERVED_NAMES:
        bad("name", f"the name {name!r} is reserved for the fleet's own DAG ids; rename the entry")
    if not isinstance(raw, Mapping):
        bad(
            None,
            f"the entry must be a mapping of settings, got {_describe(raw)}; write {name}: "
            "{dataset_uri: ..., target_column: ...} (indented under models:)",
        )
        return None, errors
    for key, first, second in getattr(raw, "duplicates", ()):
        bad(str(key), f"{key} is given twice (lines {first} and {second}); keep one")
    for key in raw:
        if key in _NOT_FIELDS:
            bad(str(key), _NOT_FIELDS[key])
        elif key not in FIELDS:
            hint = _did_you_mean(str(key), FIELDS)
            fields = "(every field: docs/fleet.md)" if hint else f"the fields are {', '.join(FIELDS)}"
            bad(str(key), f"unknown field {key!r}; {hint}{fields}")
    values: dict[str, Any] = {}
    for key, spec in FIELDS.items():
        value = raw.get(key)
        if value is None:
            if spec.required:
                bad(key, f"{key} is missing; write {spec.example}")
            values[key] = spec.default
            continue
        try:
            values[key] = spec.check(key, value)
        except _Bad as problem:
            bad(key, str(problem))
    if errors:
        return None, errors

    triggers, trigger_schedule = values.pop("triggers")
    if trigger_schedule is not _MISSING:
        if "schedule" in raw and raw["schedule"] is not None and values["schedule"] != trigger_schedule:
            bad(
                "triggers.schedule",
                f"the schedule is given twice, {values['schedule']!r} at the top and {trigger_schedule!r} under "
                "triggers; keep one",
            )
        values["schedule"] = trigger_schedule
    if values["thresholds"] is not None and ("primary_metric" in raw or "min_improvement" in raw):
        bad(
            "thresholds",
            "thresholds and primary_metric/min_improvement both set the gate; keep thresholds (every metric and "
            "bound), or primary_metric with min_improvement",
        )
    if values["approvers"] == "owners":
        values["approvers"] = values["owners"]
        if not values["owners"]:
            bad("approvers", "approvers: owners, but the entry has no owners; list them (owners: [alice, bob])")
    if values["approvers"] and not values["require_approval"]:
        bad(
            "approvers",
            "approvers name who may answer the approval, but require_approval is false, so nobody is asked; write "
            "require_approval: true, or remove approvers",
        )
    if values["feature_columns"] and values["target_column"] in values["feature_columns"]:
        bad("feature_columns", f"feature_columns holds the target {values['target_column']!r}; remove it")
    for group_field in ("slice_columns", "sensitive_columns"):
        if values["target_column"] in values[group_field]:
            bad(group_field, f"{group_field} holds the target {values['target_column']!r}; name other columns")
    for kind in ("drift", "performance"):
        if getattr(triggers, kind) and "{{" in values["dataset_uri"]:
            bad(
                f"triggers.{kind}",
                f"triggers.{kind} reads dataset_uri as the folder of dt=YYYY-MM-DD partitions, but it is a "
                f"template ({values['dataset_uri']!r}); write the folder itself as dataset_uri",
            )
    if triggers.performance and not values["id_columns"]:
        bad(
            "triggers.performance",
            "triggers.performance joins late labels to logged predictions on id_columns, which is empty; write "
            "id_columns: [customer_id, dt]",
        )
    if any(len(tag) > TAG_MAX_LENGTH for tag in values["tags"]):
        bad("tags", f"tags holds a tag longer than Airflow's {TAG_MAX_LENGTH} characters; shorten it")
    if errors:
        return None, errors
    return ModelEntry(name=name, triggers=triggers, **values), []
