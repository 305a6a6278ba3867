"""How the model will be stored: skops or cloudpickle, its pip requirements, the input example and signature."""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from typing import Any

import pandas as pd

from mlops_provider.core.training.config import PreparedTraining
from mlops_provider.core.training.estimators import _distribution_version

log = logging.getLogger(__name__)

SIGNATURE_SAMPLE_ROWS = 200
INPUT_EXAMPLE_ROWS = 5
# Modules whose classes a model may hold for its requirements to be known without MLflow's inference,
# which loads the model in a subprocess and lists every package that happens to be imported.
_KNOWN_MODEL_MODULES = {"sklearn", "numpy", "scipy", "builtins", "collections", "functools", "operator"}
_PINNED_DISTRIBUTIONS = ("numpy", "pandas", "scikit-learn", "scipy")


def _serialization_plan(
    model: Any, pip_requirements: list[str] | None
) -> tuple[str, list[str] | None, list[str] | None]:
    """skops (MLflow's safe default) with the model's own types trusted, and the pip requirements when the
    model holds only scikit-learn/numpy/scipy objects (else MLflow infers them). A model skops cannot store
    (custom functions, lambdas) is stored with cloudpickle."""
    try:
        with _quiet_skops():
            import skops.io  # its import probes every loaded module too

            trusted = sorted(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    except Exception as error:
        log.warning("skops cannot serialise this model (%s); storing it with cloudpickle.", error)
        return "cloudpickle", None, pip_requirements
    if pip_requirements is not None:
        return "skops", trusted, list(pip_requirements)
    modules = {name.split(".")[0] for name in trusted}
    if modules <= _KNOWN_MODEL_MODULES:
        pinned = [f"{name}=={_distribution_version(name)}" for name in (*_PINNED_DISTRIBUTIONS, "skops")]
        return "skops", trusted, pinned
    return "skops", trusted, None


@contextmanager
def _quiet_skops():
    """skops looks up objects without ``__module__`` (scipy ufuncs, at import and when saving) by probing every
    loaded module, which makes modules with deprecated attributes (Airflow has many) emit hundreds of
    deprecation warnings into the task log."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"skops\.io\._utils")
        yield


def _example_and_signature(model: Any, prepared: PreparedTraining) -> tuple[pd.DataFrame, Any]:
    """An input example (training rows without missing values where possible) and the signature inferred
    from it (column types as in the training data). With the automatic preprocessing every input may be
    missing (it is imputed), so no input column is marked required."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import ColSpec, Schema

    sample = prepared.x_train.head(SIGNATURE_SAMPLE_ROWS)
    complete = sample.dropna()
    example = (complete if len(complete) >= INPUT_EXAMPLE_ROWS else sample).head(INPUT_EXAMPLE_ROWS)
    with warnings.catch_warnings():  # MLflow's hint about integer columns; the choice is documented
        warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column")
        signature = infer_signature(example, model.predict(example))
    if prepared.estimator.kind == "estimator" and signature.inputs is not None:
        inputs = Schema([ColSpec(spec.type, spec.name, required=False) for spec in signature.inputs.inputs])
        signature = ModelSignature(inputs=inputs, outputs=signature.outputs, params=signature.params)
    return example.reset_index(drop=True), signature
