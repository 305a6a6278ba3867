"""Registered model names: one rule, checked before anything is written.

A model name travels into MLflow, Asset URIs (``mlops://drift/<model>``), lock names and report paths. MLflow
itself refuses only ``/`` and ``:``, and only when the version is registered, after the run and its artifacts
were logged. The provider takes the names the reference DAGs' trigger form takes: letters, digits, ``_``,
``.`` and ``-``, starting with a letter or digit.
"""

from __future__ import annotations

import re

from mlops_provider.core.errors import ConfigurationError

MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")


def check_model_name(name: str) -> str:
    """``name`` if it is a valid registered model name; else a ConfigurationError that says what is allowed."""
    if not MODEL_NAME_PATTERN.fullmatch(name):
        raise ConfigurationError(
            f"model_name={name!r} is not a valid registered model name: use letters, digits, '_', '.' and '-' "
            "(starting with a letter or digit, at most 200 characters), e.g. 'churn_model-v1'."
        )
    return name
