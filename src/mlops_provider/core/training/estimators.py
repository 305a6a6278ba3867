"""The estimator: import path, instantiation, seeding, parameter checks, automatic preprocessing, code versions."""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import inspect
from typing import Any

from mlops_provider.core.errors import EstimatorSpecError
from mlops_provider.core.training.config import EstimatorSpec, _listing


def resolve_import_path(path: str) -> Any:
    """The object at ``package.module.Name`` (or ``package.module:name``)."""
    if not isinstance(path, str) or not path.strip():
        raise EstimatorSpecError("estimator is empty; give an import path such as 'sklearn.linear_model.Ridge'.")
    path = path.strip()
    module_name, _, attribute = path.partition(":") if ":" in path else path.rpartition(".")
    if not module_name or not attribute:
        raise EstimatorSpecError(
            f"estimator={path!r} is not an import path; use 'package.module.ClassName', e.g. "
            "'sklearn.ensemble.HistGradientBoostingClassifier'."
        )
    try:
        target = importlib.import_module(module_name)
    except ImportError as error:
        raise EstimatorSpecError(
            f"estimator={path!r}: the module {module_name!r} cannot be imported ({error}). Check the spelling "
            "and that its package is installed where the task runs."
        ) from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise EstimatorSpecError(
                f"estimator={path!r}: {module_name!r} has no attribute {attribute!r}. Check the class name "
                "(it is case-sensitive)."
            ) from None
    return target


def build_estimator(path: str, params: dict[str, Any]) -> tuple[Any, EstimatorSpec]:
    """Instantiate the estimator class, or call the pipeline factory, with ``params``."""
    target = resolve_import_path(path)
    params = dict(params or {})
    if inspect.isclass(target):
        if not (hasattr(target, "fit") and hasattr(target, "get_params")):
            raise EstimatorSpecError(
                f"estimator={path!r} is a class but not a scikit-learn estimator (it has no fit/get_params)."
            )
        accepted = _accepted_keywords(target)  # None: the signature is unknown or takes **kwargs
        if accepted is not None:
            unknown = sorted(set(params) - accepted)
            if unknown:
                raise EstimatorSpecError(
                    f"estimator_params {_listing(unknown)} are not parameters of {path}; it accepts "
                    f"{_listing(sorted(accepted))}."
                )
        try:
            estimator = target(**params)
        except Exception as error:
            raise EstimatorSpecError(f"{path} rejected estimator_params {params}: {error}") from None
        return estimator, EstimatorSpec(path, params, "estimator")
    if not callable(target):
        raise EstimatorSpecError(
            f"estimator={path!r} is neither an estimator class nor a function returning a pipeline."
        )
    try:
        estimator = target(**params)
    except TypeError as error:
        raise EstimatorSpecError(
            f"The pipeline factory {path} rejected estimator_params {params}: {error}. estimator_params are "
            "passed to it as keyword arguments."
        ) from None
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict") and hasattr(estimator, "get_params")):
        raise EstimatorSpecError(
            f"The pipeline factory {path} returned {type(estimator).__name__}, not a scikit-learn estimator or "
            "Pipeline (fit, predict, get_params)."
        )
    return estimator, EstimatorSpec(path, params, "pipeline_factory")


def _accepted_keywords(cls: type) -> set[str] | None:
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _nested_estimators(estimator: Any) -> list[Any]:
    found = [estimator]
    for value in estimator.get_params(deep=True).values():
        if hasattr(value, "get_params") and hasattr(value, "fit") and not inspect.isclass(value):
            found.append(value)
    return found


def seed_estimator(estimator: Any, seed: int) -> list[str]:
    """Give every ``random_state`` the estimator leaves unset the training seed; returns the names set."""
    params = estimator.get_params(deep=True)
    unset = {
        name: seed
        for name, value in params.items()
        if (name == "random_state" or name.endswith("__random_state")) and value is None
    }
    if unset:
        estimator.set_params(**unset)
    return sorted(unset)


def validate_estimator_params(estimator: Any, spec: EstimatorSpec) -> None:
    """Check parameter values now (scikit-learn otherwise checks them only inside ``fit``)."""
    for part in _nested_estimators(estimator):
        validate = getattr(part, "_validate_params", None)
        if validate is None:
            continue
        try:
            validate()
        except Exception as error:  # sklearn's InvalidParameterError is a ValueError and a TypeError
            raise EstimatorSpecError(f"{spec.import_path} rejected estimator_params {spec.params}: {error}") from None


def _auto_pipeline(estimator: Any, numeric: list[str], categorical: list[str]) -> Any:
    """Impute + scale numerics, impute + one-hot categoricals (unknown categories ignored), then the model."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.utils import get_tags

    accepts_sparse = bool(getattr(get_tags(estimator).input_tags, "sparse", False))
    transformers = []
    if numeric:
        transformers.append(
            (
                "numeric",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                numeric,
            )
        )
    if categorical:
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("one_hot", OneHotEncoder(handle_unknown="ignore", sparse_output=accepts_sparse)),
                    ]
                ),
                categorical,
            )
        )
    preprocess = ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.3 if accepts_sparse else 0)
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def _code_versions(spec: EstimatorSpec) -> dict[str, str]:
    """Library versions that shape the model, and for a pipeline factory a hash of its module's source."""
    versions = {"scikit-learn": _distribution_version("scikit-learn")}
    root = spec.import_path.replace(":", ".").split(".")[0]
    if root not in ("sklearn",):
        try:
            versions[root] = _distribution_version(root)
        except importlib.metadata.PackageNotFoundError:
            pass
    if spec.kind == "pipeline_factory":
        module = inspect.getmodule(resolve_import_path(spec.import_path))
        source = None
        if module is not None:  # None: defined outside any module (e.g. built at run time)
            try:
                source = inspect.getsource(module)
            except (OSError, TypeError):
                pass
        versions["factory_source_sha256"] = (
            hashlib.sha256(source.encode()).hexdigest() if source is not None else "unavailable"
        )
    return versions


@functools.lru_cache(maxsize=64)
def _distribution_version(name: str) -> str:
    """An installed distribution's version, looked up once per process (the lookup scans site-packages)."""
    return importlib.metadata.version(name)
