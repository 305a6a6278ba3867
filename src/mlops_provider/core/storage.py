"""Whole-object reads and writes at a local path, ``file://`` or ``s3://`` URI.

The one place that knows how bytes reach a URI: datasets and reports both go through it. Local writes are
atomic (a temporary file renamed into place), so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops_provider.core.errors import DatasetError, DatasetNotFoundError, ServiceUnreachableError


def put_bytes(location: Any, key_or_path: str, payload: bytes, s3_client: Any = None) -> None:
    """Write ``payload`` at ``key_or_path`` of ``location`` (a ``DatasetLocation``), replacing what is there."""
    if location.scheme == "s3":
        from botocore.exceptions import ClientError

        try:
            s3_client.put_object(Bucket=location.bucket, Key=key_or_path, Body=payload)
        except ClientError as error:
            raise _s3_write_error(location, error) from error
        except Exception as error:
            if not is_unreachable(error):
                raise
            # A PUT is atomic per object: nothing, or the old object, stays at the key; never part of this one.
            raise ServiceUnreachableError(
                f"S3 did not answer while writing s3://{location.bucket}/{key_or_path} ({error}); nothing was "
                "written there. Check the aws connection's endpoint_url and the network; the task's retries will "
                "try again."
            ) from error
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
        except Exception as error:
            if not is_unreachable(error):
                raise
            raise ServiceUnreachableError(
                f"S3 did not answer while reading s3://{location.bucket}/{key_or_path} ({error}); check the aws "
                "connection's endpoint_url and the network. The task's retries will try again."
            ) from error
    try:
        return Path(key_or_path).read_bytes()
    except FileNotFoundError as error:
        raise DatasetNotFoundError(f"Nothing at {key_or_path!r}: the file does not exist.") from error


@contextlib.contextmanager
def exclusive_file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block: one holder at a time among
    processes on this machine, and a waiter wakes the moment the holder lets go (no polling)."""
    import fcntl

    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_unreachable(error: Exception) -> bool:
    """botocore gave up reaching the endpoint (refused, dropped or timed-out connection, after its own
    retries); a TLS error is a configuration problem, not an outage."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError, SSLError

    return isinstance(error, (BotoConnectionError, HTTPClientError)) and not isinstance(error, SSLError)


def _s3_write_error(location: Any, error: Any) -> DatasetError:
    code = error.response.get("Error", {}).get("Code", "")
    hint = (
        f"the bucket {location.bucket!r} does not exist; create it first"
        if code == "NoSuchBucket"
        else "check the aws connection's credentials and its write access to the bucket"
    )
    return DatasetError(f"Could not write {location.uri!r} to S3 ({code or error}): {hint}.")
