"""Read and write tabular datasets (parquet, CSV) at a URI.

A URI is a local path, a ``file://`` URI or an ``s3://bucket/key`` URI, and names either one file or a
folder (prefix) of part files. S3 access takes a boto3 S3 client made by the caller (the Airflow layer
builds it from an ``aws`` connection), so this module never looks for credentials itself.

Folders: every data file below the folder is read in name order; names starting with ``_`` or ``.``
(``_SUCCESS``, ``.crc``) and empty marker files are ignored; ``key=value`` folder names (Hive-style
partitions) become string columns unless the files already hold that column, also when the URI itself ends in
such folders (``.../dt=2026-01-05`` reads with ``dt``, as reading its parent would give it).

Several datasets read as one: a comma-separated list of URIs (``s3://b/churn/dt=2026-01-05,s3://b/churn/dt=2026-01-06``)
reads each and stacks the rows, so a task can take a window of partitions; writing takes a single URI.
"""

from __future__ import annotations

import io
import os
from collections.abc import Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from mlops_provider.core.errors import (
    DatasetError,
    DatasetNotFoundError,
    EmptyDatasetError,
    ServiceUnreachableError,
    UnsupportedFormatError,
)
from mlops_provider.core.storage import is_unreachable, put_bytes

if TYPE_CHECKING:
    import pandas as pd

FORMATS_BY_SUFFIX = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".parq": "parquet",
    ".csv": "csv",
    ".csv.gz": "csv",
}
SUPPORTED_FORMATS = ("parquet", "csv")
PART_FILE_STEM = "part-00000"
_S3_DOWNLOAD_THREADS = 8


@dataclass(frozen=True)
class DatasetLocation:
    """Where a dataset URI points: ``scheme`` is ``file`` or ``s3``; ``path`` is a local path or an S3 key."""

    uri: str
    scheme: str
    path: str
    bucket: str = ""

    @property
    def suffix_format(self) -> str | None:
        return format_from_name(self.path)


@dataclass(frozen=True)
class DatasetInfo:
    """What was read or written: small enough for XCom."""

    uri: str
    format: str
    rows: int
    columns: list[str] = field(default_factory=list)
    files: int = 1
    bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def format_from_name(name: str) -> str | None:
    lowered = name.lower()
    for suffix in sorted(FORMATS_BY_SUFFIX, key=len, reverse=True):
        if lowered.endswith(suffix):
            return FORMATS_BY_SUFFIX[suffix]
    return None


def parse_uri(uri: str) -> DatasetLocation:
    """Split a dataset URI into scheme, bucket and path, rejecting schemes this provider cannot read."""
    if not isinstance(uri, str) or not uri.strip():
        raise DatasetError(f"Dataset URI {uri!r} is empty; give a local path, a file:// URI or an s3://bucket/key URI.")
    uri = uri.strip()
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):
        path = unquote(parsed.path) if scheme == "file" else uri
        if scheme == "file" and parsed.netloc not in ("", "localhost"):
            # file://relative/path: the "host" is the first path segment.
            path = parsed.netloc + path
        return DatasetLocation(uri=uri, scheme="file", path=os.path.expanduser(path))
    if scheme in ("s3", "s3a", "s3n"):
        if not parsed.netloc:
            raise DatasetError(f"Dataset URI {uri!r} names no bucket; write it as s3://bucket/key.")
        return DatasetLocation(uri=uri, scheme="s3", bucket=parsed.netloc, path=parsed.path.lstrip("/"))
    raise UnsupportedFormatError(
        f"Dataset URI {uri!r} uses the scheme {scheme!r}, which is not supported; use a local path, file:// or s3://."
    )


def _require_s3_client(location: DatasetLocation, s3_client: Any) -> Any:
    if s3_client is None:
        raise DatasetError(
            f"Dataset URI {location.uri!r} is on S3 but no S3 client was given; "
            "set aws_conn_id on the task to an Airflow 'aws' connection."
        )
    return s3_client


def _is_ignored(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.startswith(("_", "."))


def _partition_values(relative_dir: str) -> dict[str, str]:
    values = {}
    for segment in relative_dir.split("/"):
        if "=" in segment:
            key, _, value = segment.partition("=")
            if key:
                values[key] = unquote(value)
    return values


def _own_partition_values(location: DatasetLocation) -> dict[str, str]:
    """``key=value`` folders the URI itself ends in: ``.../dt=2026-01-02`` reads with ``dt`` as its parent would."""
    segments = location.path.rstrip("/").split("/")
    if segments and format_from_name(segments[-1]):
        segments = segments[:-1]  # a single file: its folders count
    trailing = []
    for segment in reversed(segments):
        if "=" not in segment or not segment.partition("=")[0]:
            break
        trailing.append(segment)
    return _partition_values("/".join(reversed(trailing)))


@dataclass(frozen=True)
class _DataFile:
    name: str  # local path or S3 key
    relative_dir: str
    size: int


def _check_format(location: DatasetLocation, files: list[_DataFile], fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in SUPPORTED_FORMATS:
            raise UnsupportedFormatError(
                f"Format {fmt!r} asked for {location.uri!r} is not supported; use one of {SUPPORTED_FORMATS}."
            )
        return fmt
    found: dict[str, str] = {}
    for data_file in files:
        file_format = format_from_name(data_file.name)
        if file_format is None:
            raise UnsupportedFormatError(
                f"Cannot tell the format of {data_file.name!r} in dataset {location.uri!r}: expected a file "
                f"ending in one of {sorted(FORMATS_BY_SUFFIX)}; rename it or pass format='parquet' or 'csv'."
            )
        found.setdefault(file_format, data_file.name)
    if len(found) > 1:
        raise UnsupportedFormatError(
            f"Dataset {location.uri!r} mixes formats ({', '.join(sorted(found))}); keep one format per dataset folder."
        )
    return next(iter(found))


def _list_local(location: DatasetLocation) -> list[_DataFile]:
    root = Path(location.path)
    if root.is_file():
        return [_DataFile(str(root), "", root.stat().st_size)]
    if not root.exists():
        raise DatasetNotFoundError(
            f"No dataset at {location.uri!r}: the path does not exist. Check the URI (templated values such "
            "as {{ ds }} included) or write the dataset first."
        )
    files = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_dir() or any(_is_ignored(part) for part in relative.split("/")):
            continue
        size = path.stat().st_size
        if size == 0:
            continue
        files.append(_DataFile(str(path), relative.rpartition("/")[0], size))
    return files


@contextmanager
def _s3_errors(location: DatasetLocation) -> Iterator[None]:
    """botocore's errors as the provider's: named URI, what is wrong, what to do."""
    from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

    try:
        yield
    except (NoCredentialsError, PartialCredentialsError) as error:
        raise DatasetError(
            f"No AWS credentials to read {location.uri!r} ({error}); set the task's aws_conn_id to an 'aws' "
            "connection with a key (or a role the worker can assume)."
        ) from error
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            raise DatasetNotFoundError(
                f"No dataset at {location.uri!r}: the bucket {location.bucket!r} does not exist "
                "(or the aws connection points at another endpoint)."
            ) from error
        raise DatasetError(
            f"Could not list {location.uri!r} on S3 ({code or error}); check the aws connection's "
            "credentials and its access to the bucket."
        ) from error
    except Exception as error:
        if not is_unreachable(error):
            raise
        raise ServiceUnreachableError(
            f"S3 did not answer for {location.uri!r} ({error}); check the aws connection's endpoint_url and the "
            "network. The task's retries will try again."
        ) from error


def _list_s3(location: DatasetLocation, s3_client: Any) -> list[_DataFile]:
    from botocore.exceptions import ClientError

    key = location.path
    with _s3_errors(location):
        if key and not key.endswith("/"):
            try:
                head = s3_client.head_object(Bucket=location.bucket, Key=key)
                return [_DataFile(key, "", int(head["ContentLength"]))]
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                    raise
            prefix = key + "/"
        else:
            prefix = key
        files = []
        paginator = s3_client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=location.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix) :]
                if not relative or relative.endswith("/"):
                    continue
                if any(_is_ignored(part) for part in relative.split("/")) or item["Size"] == 0:
                    continue
                files.append(_DataFile(item["Key"], relative.rpartition("/")[0], int(item["Size"])))
    if not files and not _s3_prefix_exists(s3_client, location.bucket, prefix):
        raise DatasetNotFoundError(
            f"No dataset at {location.uri!r}: no object or folder with that key exists in bucket "
            f"{location.bucket!r}. Check the URI (templated values such as {{{{ ds }}}} included)."
        )
    return sorted(files, key=lambda data_file: data_file.name)


def list_partitions(uri: str, *, s3_client: Any = None) -> list[str]:
    """URIs of the immediate children (partition folders or files) of a folder URI, in name order.

    Hidden and marker names (``_SUCCESS``, ``.tmp``) are left out; an empty list means nothing landed yet.
    """
    location = parse_uri(uri)
    base = location.uri.rstrip("/")
    if location.scheme == "s3":
        client = _require_s3_client(location, s3_client)
        prefix = location.path.rstrip("/") + "/" if location.path else ""
        names: set[str] = set()
        with _s3_errors(location):
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=location.bucket, Prefix=prefix, Delimiter="/"
            )
            for page in pages:
                names.update(item["Prefix"][len(prefix) :].rstrip("/") for item in page.get("CommonPrefixes", []))
                names.update(item["Key"][len(prefix) :] for item in page.get("Contents", []) if item["Size"] > 0)
    else:
        root = Path(location.path)
        if not root.is_dir():
            return []
        names = {child.name for child in root.iterdir()}
    return [f"{base}/{name}" for name in sorted(names) if name and not _is_ignored(name)]


def _s3_prefix_exists(s3_client: Any, bucket: str, prefix: str) -> bool:
    page = s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    return bool(page.get("KeyCount", 0))


def _read_bytes_frame(data: bytes | str, name: str, fmt: str, columns: Collection[str] | None) -> pd.DataFrame:
    """One file as a frame; with ``columns``, only those of them the file holds, and every column the file holds
    named in ``attrs[FILE_COLUMNS_ATTR]``."""
    import pandas as pd

    source = io.BytesIO(data) if isinstance(data, bytes) else data
    if fmt == "parquet":
        import pyarrow.parquet as pq

        if columns is None:
            return pq.read_table(source, columns=None).to_pandas()
        held = [c for c in pq.read_schema(source).names if not c.startswith("__index_level_")]
        if isinstance(source, io.BytesIO):
            source.seek(0)
        frame = pq.read_table(source, columns=[c for c in held if c in columns]).to_pandas()
        frame.attrs[FILE_COLUMNS_ATTR] = held
        return frame
    compression = "gzip" if name.lower().endswith(".gz") else None
    held = []

    def wanted(column: str) -> bool:  # pandas asks once per column of the header: they are all seen here
        held.append(column)
        return columns is None or column in columns

    frame = pd.read_csv(source, usecols=wanted, compression=compression)
    if columns is not None:
        frame.attrs[FILE_COLUMNS_ATTR] = held
    if len(frame.columns) == 1:
        header = str(frame.columns[0])
        other = next((sep for sep in (";", "\t", "|") if sep in header), None)
        if other:
            raise UnsupportedFormatError(
                f"{name!r} reads as one column named {header[:80]!r}: its fields are separated by {other!r}, not "
                "commas. Write the file comma-separated (or as parquet)."
            )
    return frame


def _read_one(location: DatasetLocation, data_file: _DataFile, fmt: str, columns, s3_client) -> pd.DataFrame:
    partition_values = _partition_values(data_file.relative_dir)
    if columns is not None:  # the partition columns always: row counts are judged per partition
        columns = {*columns, *partition_values}
    try:
        if location.scheme == "s3":
            body = s3_client.get_object(Bucket=location.bucket, Key=data_file.name)["Body"].read()
            frame = _read_bytes_frame(body, data_file.name, fmt, columns)
        else:
            frame = _read_bytes_frame(data_file.name, data_file.name, fmt, columns)
    except (DatasetError, MemoryError):
        raise
    except Exception as error:  # pyarrow, pandas and botocore each raise their own types
        shown = f"s3://{location.bucket}/{data_file.name}" if location.scheme == "s3" else data_file.name
        if location.scheme == "s3" and is_unreachable(error):
            raise ServiceUnreachableError(
                f"S3 did not answer while reading {shown!r} ({error}); the task's retries will try again."
            ) from error
        raise DatasetError(
            f"Could not read {shown!r} (part of dataset {location.uri!r}) as {fmt}: "
            f"{type(error).__name__}: {error}. Check that the file is a complete {fmt} file, "
            "or pass the right format."
        ) from error
    added = []
    for key, value in partition_values.items():
        if key not in frame.columns:
            frame[key] = value
            added.append(key)
    frame.attrs[PATH_ONLY_COLUMNS_ATTR] = added
    if FILE_COLUMNS_ATTR in frame.attrs:
        frame.attrs[FILE_COLUMNS_ATTR] = _union([frame.attrs[FILE_COLUMNS_ATTR], added])
    return frame


def _union(lists: Iterable[Iterable[str]]) -> list[str]:
    """The names in any of ``lists``, each once, in the order first seen."""
    return list(dict.fromkeys(name for names in lists for name in names))


def _file_columns(frames: Iterable[pd.DataFrame]) -> list[str]:
    """Every column the files behind ``frames`` have, each once (the projected reads list theirs in attrs)."""
    return _union(part.attrs.get(FILE_COLUMNS_ATTR, part.columns) for part in frames)


URI_LIST_SEPARATOR = ","
# ``DataFrame.attrs`` key: the columns that came from ``key=value`` folder names, not from the files. They
# describe where rows are stored, so training does not take them as features by default.
PARTITION_COLUMNS_ATTR = "mlops_partition_columns"
# The partition columns that exist only in the folder names (the files do not hold them).
PATH_ONLY_COLUMNS_ATTR = "mlops_path_only_columns"
# Every column of the dataset (files and partition folders), when ``read_dataset`` was asked for some of them.
FILE_COLUMNS_ATTR = "mlops_file_columns"


def partition_columns(frame: pd.DataFrame) -> list[str]:
    """The columns ``read_dataset`` took from partition folder names (``dt`` of ``.../dt=2026-01-05/``)."""
    return list(frame.attrs.get(PARTITION_COLUMNS_ATTR, ()))


def split_uris(uri: str) -> list[str]:
    """The URIs of a comma-separated list (one URI gives a list of one)."""
    return [part.strip() for part in str(uri).split(URI_LIST_SEPARATOR) if part.strip()]


def read_dataset(
    uri: str,
    *,
    s3_client: Any = None,
    format: str | None = None,  # noqa: A002 - the natural name for callers
    columns: Collection[str] | None = None,
    allow_empty: bool = False,
) -> pd.DataFrame:
    """Read the dataset at ``uri`` into one DataFrame.

    ``columns``: read only these (and the partition columns); those the dataset lacks are left out, for the
    caller to report, and every column it has is listed in ``attrs[FILE_COLUMNS_ATTR]``. Raises
    DatasetNotFoundError when nothing is there, EmptyDatasetError when it holds no rows (unless
    ``allow_empty``), UnsupportedFormatError for files that are not parquet or CSV.
    """
    import pandas as pd

    parts = split_uris(uri)
    if len(parts) > 1:
        frames = [
            read_dataset(part, s3_client=s3_client, format=format, columns=columns, allow_empty=True) for part in parts
        ]
        frame = pd.concat(frames, ignore_index=True)
        frame.attrs[PARTITION_COLUMNS_ATTR] = sorted({c for part in frames for c in partition_columns(part)})
        if columns is not None:
            frame.attrs[FILE_COLUMNS_ATTR] = _file_columns(frames)
        if frame.empty and not allow_empty:
            raise EmptyDatasetError(
                f"None of the {len(parts)} datasets {parts[:5]}{'...' if len(parts) > 5 else ''} has rows; "
                "expected at least one row. Check that the upstream jobs wrote these partitions."
            )
        return frame
    location = parse_uri(uri)
    if location.scheme == "s3":
        files = _list_s3(location, _require_s3_client(location, s3_client))
    else:
        files = _list_local(location)
    if not files:
        if allow_empty:
            return pd.DataFrame()
        raise EmptyDatasetError(
            f"Dataset {uri!r} contains no data files (only empty or hidden files); expected parquet or "
            "CSV part files. Check that the upstream job wrote this partition."
        )
    fmt = _check_format(location, files, format)
    if location.scheme == "s3" and len(files) > 1:
        with ThreadPoolExecutor(max_workers=min(_S3_DOWNLOAD_THREADS, len(files))) as pool:
            frames = list(pool.map(lambda f: _read_one(location, f, fmt, columns, s3_client), files))
    else:
        frames = [_read_one(location, data_file, fmt, columns, s3_client) for data_file in files]
    path_only = {key for part in frames for key in part.attrs.get(PATH_ONLY_COLUMNS_ATTR, [])}
    held = _file_columns(frames) if columns is not None else []
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    own = _own_partition_values(location)
    for key, value in own.items():
        if key not in frame.columns:
            frame[key] = value
            path_only.add(key)
    if columns is not None:
        frame.attrs[FILE_COLUMNS_ATTR] = _union([held, own])
    keys = set(own) | {key for data_file in files for key in _partition_values(data_file.relative_dir)}
    frame.attrs[PARTITION_COLUMNS_ATTR] = sorted(key for key in keys if key in frame.columns)
    frame.attrs[PATH_ONLY_COLUMNS_ATTR] = sorted(path_only)
    if frame.empty and not allow_empty:
        raise EmptyDatasetError(
            f"Dataset {uri!r} has no rows ({len(files)} file(s), columns {list(frame.columns)}); "
            "expected at least one row. Check that the upstream job wrote data for this partition."
        )
    return frame


def _encode(frame: pd.DataFrame, fmt: str, name: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "parquet":
        frame.to_parquet(buffer, index=False)
    else:
        compression = "gzip" if name.lower().endswith(".gz") else None
        frame.to_csv(buffer, index=False, compression=compression)
    return buffer.getvalue()


def write_dataset(
    frame: pd.DataFrame,
    uri: str,
    *,
    s3_client: Any = None,
    format: str | None = None,  # noqa: A002
) -> DatasetInfo:
    """Write ``frame`` to ``uri``, replacing what was there.

    A URI ending in a known suffix (``.parquet``, ``.csv``, ...) is written as that one file; any other URI
    is a folder that receives a single ``part-00000.<ext>`` file, and older ``part-*`` files there are
    removed so that a rerun leaves exactly one copy of the data. The file appears whole or not at all.
    """
    if len(split_uris(uri)) > 1:
        raise DatasetError(f"Cannot write to {uri!r}: it is a list of URIs; give one file or folder URI to write to.")
    location = parse_uri(uri)
    fmt = format or location.suffix_format or "parquet"
    if fmt not in SUPPORTED_FORMATS:
        raise UnsupportedFormatError(f"Cannot write {uri!r} as {fmt!r}; use one of {SUPPORTED_FORMATS}.")
    single_file = location.suffix_format is not None
    extension = "parquet" if fmt == "parquet" else "csv"
    target = location.path if single_file else _join(location.path, f"{PART_FILE_STEM}.{extension}")
    payload = _encode(frame, fmt, target)
    if location.scheme == "s3":
        _write_s3(location, target, payload, single_file, _require_s3_client(location, s3_client))
    else:
        _write_local(location, target, payload, single_file)
    return DatasetInfo(
        uri=uri, format=fmt, rows=len(frame), columns=[str(c) for c in frame.columns], files=1, bytes=len(payload)
    )


def _join(base: str, name: str) -> str:
    if not base:
        return name
    return base.rstrip("/") + "/" + name


def _write_local(location: DatasetLocation, target: str, payload: bytes, single_file: bool) -> None:
    path = Path(target)
    if single_file and Path(location.path).is_dir():
        raise DatasetError(f"Cannot write file {location.uri!r}: a folder already exists at that path.")
    if not single_file and Path(location.path).is_file():
        raise DatasetError(
            f"Cannot write folder dataset {location.uri!r}: a file already exists at that path; "
            "give the file name with its suffix (.parquet/.csv) or another folder."
        )
    put_bytes(location, target, payload)
    if not single_file:
        for stale in path.parent.glob("part-*"):
            if stale != path and stale.is_file():
                stale.unlink()


def _write_s3(location: DatasetLocation, key: str, payload: bytes, single_file: bool, s3_client: Any) -> None:
    from botocore.exceptions import ClientError

    put_bytes(location, key, payload, s3_client)
    if single_file:
        return
    prefix = _join(location.path, "part-")
    try:
        paginator = s3_client.get_paginator("list_objects_v2")
        stale = [
            {"Key": item["Key"]}
            for page in paginator.paginate(Bucket=location.bucket, Prefix=prefix)
            for item in page.get("Contents", [])
            if item["Key"] != key and "/" not in item["Key"][len(prefix) :]
        ]
        for start in range(0, len(stale), 1000):
            s3_client.delete_objects(Bucket=location.bucket, Delete={"Objects": stale[start : start + 1000]})
    except ClientError as error:
        raise DatasetError(
            f"Wrote {location.uri!r} but could not remove older part files ({error}); "
            "check the aws connection's delete permission on the bucket."
        ) from error
