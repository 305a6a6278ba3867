"""Reading the model catalogue: the YAML loader, ``parse_catalogue`` and ``load_catalogue`` (where the file is).

The catalogue is one YAML file listing every model a platform runs, checked entry by entry:

```yaml
models:
  churn_gbm:                                  # the registered model, and the DAG id mlops_fleet_churn_gbm
    dataset_uri: ${MLOPS_HOME}/data/churn     # ${VAR}: the environment; {{ ... }}: an Airflow template per run
    target_column: churned
    id_columns: [customer_id, dt]
    primary_metric: roc_auc
    schedule: "@weekly"
    triggers:
      drift: {share: 0.25}
    owners: [team-retention]
```

Where the file is: the ``path`` given to ``load_catalogue``, else the environment variable ``MLOPS_MODEL_CATALOG``,
else the Airflow Variable ``mlops_model_catalog`` (read only when the environment variable is unset; when it
cannot be read, e.g. with no Airflow database, it counts as unset and the reason is logged). With none of them
the catalogue is empty and no fleet DAG is generated.

A file that is missing, not YAML or without a top-level ``models:`` mapping is one error for the whole
catalogue, naming the file and the fix; the entries are checked by ``mlops_provider.fleet.schema`` and become the
dataclasses of ``mlops_provider.fleet.entries``.

Plain Python: no Airflow import at module level (the Airflow Variable is imported only when it is read).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from mlops_provider.fleet.entries import ENV_VAR, SAMPLE, VARIABLE, Catalogue, CatalogueEntryError, ModelEntry
from mlops_provider.fleet.schema import _check_entry, _describe, _did_you_mean

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------- YAML


class _Mapping(dict):
    """A YAML mapping that remembers the line of each key and the keys given twice (PyYAML keeps the last)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[Any, int] = {}
        self.duplicates: list[tuple[Any, int, int]] = []


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Mapping:
    loader.flatten_mapping(node)
    mapping = _Mapping()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        value = loader.construct_object(value_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            if key in mapping:
                mapping.duplicates.append((key, mapping.lines[key], line))
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"a key must be text, not a {type(key).__name__}", key_node.start_mark
            ) from None
        mapping[key] = value
        mapping.lines[key] = line
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# ---------------------------------------------------------------------------------------------------- the catalogue


def parse_catalogue(document: Any, *, path: str | None = None, source: str = "argument") -> Catalogue:
    """Check a parsed YAML document (what ``yaml.safe_load`` returns for the catalogue file)."""
    where = f"The model catalogue {path} (from {source})" if path else "The model catalogue"

    def fatal(message: str) -> Catalogue:
        return Catalogue(path=path, source=source, errors=[CatalogueEntryError(f"{where} {message}")])

    models_example = (
        "write models: with one entry per model under it, e.g. "
        "models: {churn: {dataset_uri: ..., target_column: churned}}"
    )
    if document is None:
        return fatal(f"is empty; {models_example} (see {SAMPLE})")
    if not isinstance(document, Mapping):
        return fatal(f"must be a mapping with a top-level models: key, got {_describe(document)}; {models_example}")
    if "models" not in document:
        hint = next((h for key in document if (h := _did_you_mean(str(key), ["models"]))), "")
        return fatal(f"has no top-level models: mapping; {hint}{models_example}")
    models = document["models"]
    if models is None:
        models = _Mapping()
    if not isinstance(models, Mapping):
        return fatal(
            f"has models: as {_describe(models)}, not a mapping from model name to settings; write the model's "
            "name as the key: models: {churn: {dataset_uri: ..., target_column: churned}}"
        )

    errors: list[CatalogueEntryError] = []
    for key in document:
        if key != "models":
            errors.append(
                CatalogueEntryError(
                    f"{where} has the unknown top-level key {key!r}; the catalogue holds only models: (indent a "
                    "model's entry under it)",
                    field=str(key),
                )
            )
    twice = {key: (first, second) for key, first, second in getattr(models, "duplicates", ())}
    entries: dict[str, ModelEntry] = {}
    taken: dict[str, tuple[str, str]] = {}  # DAG id -> (model, kind)
    for key, raw in models.items():
        if not isinstance(key, str):
            errors.append(
                CatalogueEntryError(
                    f"model {key!r}: the model name must be text, got {_describe(key)}; quote it: '{key}':",
                    model=str(key),
                    field="name",
                )
            )
            continue
        if key in twice:
            first, second = twice[key]
            errors.append(
                CatalogueEntryError(
                    f"model {key!r}: the model is defined twice (lines {first} and {second}); keep one entry",
                    model=key,
                    field="name",
                )
            )
            continue
        entry, problems = _check_entry(key, raw)
        if entry is not None:
            clash = next(((dag_id, taken[dag_id]) for dag_id in entry.dag_ids.values() if dag_id in taken), None)
            if clash:
                dag_id, (other, kind) = clash
                problems = [
                    CatalogueEntryError(
                        f"model {key!r}: its DAG id {dag_id} is already the {kind.replace('_', ' ')} DAG of model "
                        f"{other!r}; rename one of the two models",
                        model=key,
                        field="name",
                    )
                ]
            else:
                entries[key] = entry
                taken.update({dag_id: (key, kind) for kind, dag_id in entry.dag_ids.items()})
        errors.extend(problems)
    return Catalogue(path=path, source=source, models=entries, errors=errors)


# ---------------------------------------------------------------------------------------------------- loading


def _variable() -> str | None:
    """The Airflow Variable ``mlops_model_catalog``; None when unset or unreadable (the reason is logged)."""
    try:
        from airflow.sdk import Variable

        value = Variable.get(VARIABLE, default=None)
    except Exception as error:  # no Airflow, no database, no API server: the Variable cannot be known
        log.warning(
            "The Airflow Variable %s could not be read (%s: %s), so it counts as unset; set the environment "
            "variable %s to name the model catalogue without the Airflow database.",
            VARIABLE,
            type(error).__name__,
            error,
            ENV_VAR,
        )
        return None
    return value.strip() if isinstance(value, str) and value.strip() else None


def catalogue_location(path: str | os.PathLike[str] | None = None) -> tuple[str | None, str]:
    """Where the catalogue is, and where that was said: the argument, ``MLOPS_MODEL_CATALOG`` or the Variable."""
    if path is not None and str(path).strip():
        return str(path), "the argument"
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return env, f"the environment variable {ENV_VAR}"
    variable = _variable()
    if variable:
        return variable, f"the Airflow Variable {VARIABLE}"
    return None, "nowhere"


def load_catalogue(path: str | os.PathLike[str] | None = None) -> Catalogue:
    """Read and check the model catalogue (see the module's docstring for where its path comes from)."""
    location, source = catalogue_location(path)
    if location is None:
        log.info(
            "No model catalogue: neither %s nor the Airflow Variable %s is set, so the fleet has no models.",
            ENV_VAR,
            VARIABLE,
        )
        return Catalogue(path=None, source=source)
    file = Path(location).expanduser()
    where = f"The model catalogue {file} (from {source})"
    fix = f"point {source} at the catalogue file (a sample: {SAMPLE})"
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Catalogue(str(file), source, errors=[CatalogueEntryError(f"{where} does not exist; {fix}")])
    except (OSError, UnicodeDecodeError) as error:
        message = f"{where} cannot be read ({type(error).__name__}: {error}); {fix}"
        return Catalogue(str(file), source, errors=[CatalogueEntryError(message)])
    try:
        document = yaml.load(text, Loader=_Loader)  # a SafeLoader that also records duplicate keys
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        message = f"{where} is not valid YAML: {problem}{at}; fix the syntax there (a sample: {SAMPLE})"
        return Catalogue(str(file), source, errors=[CatalogueEntryError(message)])
    return parse_catalogue(document, path=str(file), source=source)
