"""Where decision reports (validation Data Docs, drift HTML, gate summaries) are stored.

Reports live at a fixed place per DAG run and task, so a retry or a cleared task overwrites its own report
instead of scattering copies:

    <reports root>/<kind>/<dag_id>/<run_id>/<task_id>/<file name>

The root is ``$MLOPS_REPORTS_URI`` when set (a local folder or ``s3://bucket/prefix``), else
``$MLOPS_HOME/reports``; operators may pass their own ``reports_uri``.
"""

from __future__ import annotations

import os
import re
from typing import Any

from mlops_provider.core.datasets import parse_uri
from mlops_provider.core.storage import put_bytes
from mlops_provider.core.tracking import mlops_home

REPORTS_URI_ENV = "MLOPS_REPORTS_URI"
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def reports_root(override: str | None = None) -> str:
    root = override or os.environ.get(REPORTS_URI_ENV) or str(mlops_home() / "reports")
    return root.rstrip("/")


def path_segment(value: str) -> str:
    """A run id such as ``manual__2026-01-01T00:00:00+00:00`` as one safe path segment."""
    return _UNSAFE.sub("_", str(value)).strip("_") or "_"


def report_uri(kind: str, file_name: str, *, dag_id: str, run_id: str, task_id: str, root: str | None = None) -> str:
    segments = [kind, dag_id, run_id, task_id]
    return "/".join([reports_root(root), *(path_segment(s) for s in segments), file_name])


def write_report(uri: str, content: bytes | str, *, s3_client: Any = None) -> str:
    """Store ``content`` at ``uri`` (replacing an older copy) and return the URI."""
    payload = content.encode("utf-8") if isinstance(content, str) else content
    location = parse_uri(uri)
    put_bytes(location, location.path, payload, s3_client)
    return uri


def browser_url(uri: str) -> str:
    """What a person can open: a ``file://`` URL for local reports, the S3 console page for ``s3://``."""
    location = parse_uri(uri)
    if location.scheme == "s3":
        return f"https://s3.console.aws.amazon.com/s3/object/{location.bucket}?prefix={location.path}"
    return "file://" + os.path.abspath(location.path)
