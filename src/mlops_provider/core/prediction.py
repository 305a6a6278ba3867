"""Batch scoring of a DataFrame with a fitted scikit-learn model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_provider.core.errors import ConfigurationError

if TYPE_CHECKING:
    import pandas as pd


def model_features(model: Any) -> list[str]:
    features = getattr(model, "feature_names_in_", None)
    if features is None:
        raise ConfigurationError(
            "The model does not record its input columns (feature_names_in_); train it on a DataFrame, as "
            "the provider's training step does."
        )
    return [str(f) for f in features]


def predict_frame(
    model: Any,
    frame: pd.DataFrame,
    *,
    prediction_column: str = "prediction",
    keep_columns: list[str] | None = None,
    include_probabilities: bool = True,
    source: str = "the input",
) -> pd.DataFrame:
    """The kept input columns plus predictions (and class probabilities for classifiers)."""
    import pandas as pd

    features = model_features(model)
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise ConfigurationError(
            f"{source} lacks the model's input columns {missing}; it has {list(frame.columns)[:20]}."
        )
    keep = list(frame.columns) if keep_columns is None else list(keep_columns)
    unknown = [c for c in keep if c not in frame.columns]
    if unknown:
        raise ConfigurationError(f"keep_columns names {unknown}, which {source} does not have.")
    inputs = frame[features]
    output = frame[keep].reset_index(drop=True)
    output[prediction_column] = pd.Series(model.predict(inputs)).reset_index(drop=True)
    if include_probabilities and hasattr(model, "predict_proba"):
        probabilities = model.predict_proba(inputs)
        for index, label in enumerate(model.classes_):
            output[f"probability_{label}"] = probabilities[:, index]
    return output
