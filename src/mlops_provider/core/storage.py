"""Whole-object reads and writes at a local path, ``file://`` or ``s3://`` URI.

The one place that knows how bytes reach a URI: datasets and reports both go through it. Local writes are
atomic (a temporary file renamed into place), so a reader never sees half a file.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from mlops_provider.core.errors import DatasetError, DatasetNotFoundError


def put_bytes(location: Any, key_or_path: str, payload: bytes, s3_client: Any = None) -> None:
    """Write ``payload`` at ``key_or_path`` of ``location`` (a ``DatasetLocation``), replacing what is there."""
    if location.scheme == "s3":
        from botocore.exceptions import ClientError

        try:
            s3_client.put_object(Bucket=location.bucket, Key=key_or_path, Body=payload)
        except ClientError as error:
            raise _s3_write_error(location, error) from error
        return
    path = Path(key_or_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        temporary.write_bytes(payload)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def get_bytes(location: Any, key_or_path: str, s3_client: Any = None) -> bytes:
    if location.scheme == "s3":
        from botocore.exceptions import ClientError

        try:
            return s3_client.get_object(Bucket=location.bucket, Key=key_or_path)["Body"].read()
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NoSuchBucket"):
                raise DatasetNotFoundError(
                    f"Nothing at s3://{location.bucket}/{key_or_path} ({code}); check the URI."
                ) from error
            raise
    try:
        return Path(key_or_path).read_bytes()
    except FileNotFoundError as error:
        raise DatasetNotFoundError(f"Nothing at {key_or_path!r}: the file does not exist.") from error


def _s3_write_error(location: Any, error: Any) -> DatasetError:
    code = error.response.get("Error", {}).get("Code", "")
    hint = (
        f"the bucket {location.bucket!r} does not exist; create it first"
        if code == "NoSuchBucket"
        else "check the aws connection's credentials and its write access to the bucket"
    )
    return DatasetError(f"Could not write {location.uri!r} to S3 ({code or error}): {hint}.")
