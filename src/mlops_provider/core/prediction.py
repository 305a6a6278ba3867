"""Batch scoring of a DataFrame with a fitted scikit-learn model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_provider.core.errors import ConfigurationError, DatasetError

if TYPE_CHECKING:
    import pandas as pd

PREDICTION_COLUMN = "prediction"
PROBABILITY_PREFIX = "probability_"


def model_features(model: Any) -> list[str]:
    features = getattr(model, "feature_names_in_", None)
    if features is None:
        raise ConfigurationError(
            "The model does not record its input columns (feature_names_in_); train it on a DataFrame, as "
            "the provider's training step does."
        )
    return [str(f) for f in features]


def input_columns(model: Any, frame: pd.DataFrame, source: str = "the input") -> list[str]:
    """The model's input columns; a ConfigurationError naming the missing ones when ``frame`` lacks any."""
    features = model_features(model)
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise ConfigurationError(
            f"{source} lacks the model's input columns {missing}; it has {list(frame.columns)[:20]}."
        )
    return features


def predict_frame(
    model: Any,
    frame: pd.DataFrame,
    *,
    prediction_column: str = "prediction",
    keep_columns: list[str] | None = None,
    include_probabilities: bool = True,
    source: str = "the input",
    scores: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The kept input columns plus predictions (and class probabilities for classifiers).

    ``scores``: the model's answers for ``frame`` from ``score_frame``, when the caller has them already (a task
    that also logs them scores once); without it the model scores ``frame`` here.
    """
    input_columns(model, frame, source)
    keep = list(frame.columns) if keep_columns is None else list(keep_columns)
    unknown = [c for c in keep if c not in frame.columns]
    if unknown:
        raise ConfigurationError(
            f"keep_columns names {unknown}, which {source} does not have; use columns it has: "
            f"{list(frame.columns)[:20]}."
        )
    if scores is None:
        scores = score_frame(model, frame, include_probabilities=include_probabilities, source=source)
    output = frame[keep].reset_index(drop=True)
    output[prediction_column] = scores[PREDICTION_COLUMN]
    if include_probabilities:
        for column in scores.columns:
            if column.startswith(PROBABILITY_PREFIX):
                output[column] = scores[column]
    return output


def score_frame(
    model: Any, frame: pd.DataFrame, *, include_probabilities: bool = True, source: str = "the input"
) -> pd.DataFrame:
    """The model's answers for every row of ``frame``, in its row order (index reset): ``prediction`` and, for
    classifiers (with ``include_probabilities``), one ``probability_<class>`` column per class."""
    import pandas as pd

    features = input_columns(model, frame, source)
    inputs = _numeric_inputs_as_numbers(model, frame[features], source)
    scores = pd.DataFrame({PREDICTION_COLUMN: pd.Series(model.predict(inputs)).reset_index(drop=True)})
    if include_probabilities and hasattr(model, "predict_proba"):
        probabilities = model.predict_proba(inputs)
        for index, label in enumerate(model.classes_):
            scores[f"{PROBABILITY_PREFIX}{label}"] = probabilities[:, index]
    return scores


def _numeric_inputs_as_numbers(model: Any, inputs: pd.DataFrame, source: str) -> pd.DataFrame:
    """The inputs with every column the model reads as a number holding numbers; text there is an error that
    names the column and the file (scikit-learn would only say "Cannot use median strategy")."""
    import pandas as pd

    preprocess = getattr(model, "named_steps", {}).get("preprocess")
    numeric = [c for name, _, columns in getattr(preprocess, "transformers_", []) if name == "numeric" for c in columns]
    fixed = {}
    for column in numeric:
        values = inputs[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            continue
        parsed = pd.to_numeric(values, errors="coerce")
        stray = values[parsed.isna() & values.notna()]
        if len(stray):
            raise DatasetError(
                f"{source}: column {column!r} was numeric when the model was trained but holds text such as "
                f"{sorted({str(v) for v in stray.iloc[:1000]})[:3]} ({len(stray)} rows); fix or null those values."
            )
        fixed[column] = parsed
    return inputs.assign(**fixed) if fixed else inputs
