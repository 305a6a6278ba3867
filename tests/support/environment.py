"""Environment variables set for a block (a module-scoped fixture, where ``monkeypatch`` cannot reach)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set (or, with None, remove) the variables for the block; their earlier values come back after it."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def mlflow_connection(url: str) -> str:
    """``AIRFLOW_CONN_MLFLOW_DEFAULT`` for an MLflow server at ``url`` (no login)."""
    import json
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return json.dumps({"conn_type": "mlflow", "host": parts.hostname, "port": parts.port, "schema": parts.scheme})
