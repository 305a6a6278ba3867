"""Dataset IO: round trips on local and S3 URIs, folders of part files, and every error case."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from mlops_provider.core.datasets import parse_uri, read_dataset, write_dataset
from mlops_provider.core.errors import (
    DatasetError,
    DatasetNotFoundError,
    EmptyDatasetError,
    UnsupportedFormatError,
)
from mlops_provider.hooks.datasets import DatasetHook


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "customer_id": np.arange(500),
            "tenure_months": rng.integers(0, 72, 500),
            "monthly_charges": rng.normal(70, 20, 500).round(2),
            "plan": rng.choice(["basic", "plus", "pro"], 500),
            "event_timestamp": pd.date_range("2026-01-01", periods=500, freq="h"),
            "churned": rng.integers(0, 2, 500),
        }
    )


def assert_same(left: pd.DataFrame, right: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        left.reset_index(drop=True), right.reset_index(drop=True), check_dtype=False, check_datetimelike_compat=True
    )


@pytest.mark.parametrize("name", ["data.parquet", "data.csv", "data.csv.gz", "folder", "folder/"])
def test_local_round_trip(tmp_path, frame, name):
    uri = str(tmp_path / name) + ("/" if name.endswith("/") else "")
    info = write_dataset(frame, uri)
    assert info.rows == 500 and info.columns == list(frame.columns)
    back = read_dataset(uri)
    if info.format == "csv":
        back["event_timestamp"] = pd.to_datetime(back["event_timestamp"])
    assert_same(back, frame)


def test_file_uri_and_column_subset(tmp_path, frame):
    write_dataset(frame, str(tmp_path / "d.parquet"))
    back = read_dataset((tmp_path / "d.parquet").as_uri(), columns=["plan", "churned"])
    assert list(back.columns) == ["plan", "churned"]
    assert len(back) == 500


def test_folder_of_part_files_with_partitions_and_markers(tmp_path, frame):
    root = tmp_path / "events"
    for day, part in zip(["2026-01-01", "2026-01-02"], np.array_split(frame, 2), strict=False):
        (root / f"dt={day}").mkdir(parents=True)
        part.to_parquet(root / f"dt={day}" / "part-0.parquet", index=False)
    (root / "_SUCCESS").touch()
    (root / "dt=2026-01-01" / ".part-0.parquet.crc").write_bytes(b"\x00crc")
    back = read_dataset(str(root))
    assert len(back) == 500
    assert back["dt"].value_counts().to_dict() == {"2026-01-01": 250, "2026-01-02": 250}
    assert_same(back.drop(columns="dt"), frame)


def test_rewriting_a_folder_leaves_one_copy(tmp_path, frame):
    uri = str(tmp_path / "out")
    (tmp_path / "out").mkdir()
    frame.to_parquet(tmp_path / "out" / "part-00007.parquet", index=False)  # left by an older attempt
    write_dataset(frame, uri)
    write_dataset(frame, uri)
    assert len(read_dataset(uri)) == 500
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["part-00000.parquet"]


def test_s3_round_trip_through_aws_connection(s3_bucket, frame):
    hook = DatasetHook(aws_conn_id="aws_default")
    for uri in (
        f"s3://{s3_bucket}/single/data.parquet",
        f"s3://{s3_bucket}/daily/dt=2026-01-01/",
        f"s3://{s3_bucket}/c.csv",
    ):
        info = hook.write(frame, uri)
        assert info.rows == 500
        back = hook.read(uri)
        if info.format == "csv":
            back["event_timestamp"] = pd.to_datetime(back["event_timestamp"])
        if "dt=" in uri:  # a partition folder reads with its key, as reading its parent would give it
            assert set(back.pop("dt")) == {"2026-01-01"}
        assert_same(back, frame)


def test_a_list_of_partitions_reads_as_one_dataset_with_their_keys(tmp_path, frame):
    hook = DatasetHook(aws_conn_id=None)
    days = ["2026-01-01", "2026-01-02", "2026-01-03"]
    for day, part in zip(days, np.array_split(frame, 3), strict=False):
        hook.write(part, str(tmp_path / f"dt={day}"))
    listed = ",".join(str(tmp_path / f"dt={day}") for day in days[1:])
    back = hook.read(listed)
    assert len(back) == len(frame) - len(np.array_split(frame, 3)[0])
    assert sorted(set(back["dt"])) == days[1:]
    assert len(hook.read(str(tmp_path))) == len(frame)  # the parent folder gives the same dt column
    with pytest.raises(DatasetError, match="it is a list of URIs; give one file or folder URI"):
        hook.write(frame, listed)
    with pytest.raises(DatasetNotFoundError):
        hook.read(listed + "," + str(tmp_path / "dt=2026-02-30"))


def test_s3_folder_of_many_parts(s3_bucket, frame):
    hook = DatasetHook(aws_conn_id="aws_default")
    for index, part in enumerate(np.array_split(frame, 5)):
        hook.write(part, f"s3://{s3_bucket}/parts/part-{index:05d}.parquet")
    hook.s3_client.put_object(Bucket=s3_bucket, Key="parts/_SUCCESS", Body=b"")
    back = hook.read(f"s3://{s3_bucket}/parts")
    assert_same(back, frame)


# -- errors: each names the URI and what was expected --------------------------------------------


def test_missing_local_path(tmp_path):
    uri = str(tmp_path / "nope" / "2026-01-01")
    with pytest.raises(DatasetNotFoundError, match="does not exist") as error:
        read_dataset(uri)
    assert uri in str(error.value)


def test_missing_s3_object(s3_bucket):
    uri = f"s3://{s3_bucket}/events/2026-01-01/"
    with pytest.raises(DatasetNotFoundError) as error:
        DatasetHook().read(uri)
    assert uri in str(error.value) and s3_bucket in str(error.value)


def test_missing_s3_bucket(moto_server):
    with pytest.raises(DatasetNotFoundError, match="bucket 'no-such-bucket-xyz' does not exist"):
        DatasetHook().read("s3://no-such-bucket-xyz/data.parquet")


def test_writing_to_missing_bucket_says_create_it(moto_server, frame):
    with pytest.raises(DatasetError, match="does not exist; create it first"):
        DatasetHook().write(frame, "s3://no-such-bucket-xyz/out.parquet")


def test_empty_parquet_file(tmp_path, frame):
    path = tmp_path / "empty.parquet"
    frame.head(0).to_parquet(path, index=False)
    with pytest.raises(EmptyDatasetError, match="has no rows") as error:
        read_dataset(str(path))
    assert str(path) in str(error.value)
    assert read_dataset(str(path), allow_empty=True).empty


def test_empty_csv_with_header_only(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("a,b\n")
    with pytest.raises(EmptyDatasetError, match="has no rows"):
        read_dataset(str(path))


def test_empty_folder(tmp_path):
    (tmp_path / "partition").mkdir()
    (tmp_path / "partition" / "_SUCCESS").touch()
    with pytest.raises(EmptyDatasetError, match="contains no data files"):
        read_dataset(str(tmp_path / "partition"))


def test_empty_s3_prefix(s3_bucket):
    DatasetHook().s3_client.put_object(Bucket=s3_bucket, Key="p/_SUCCESS", Body=b"")
    with pytest.raises(EmptyDatasetError, match="contains no data files"):
        DatasetHook().read(f"s3://{s3_bucket}/p/")


def test_unknown_format(tmp_path):
    path = tmp_path / "data.json"
    path.write_text('{"a": 1}')
    with pytest.raises(UnsupportedFormatError, match="Cannot tell the format") as error:
        read_dataset(str(path))
    assert "data.json" in str(error.value) and "format='parquet'" in str(error.value)


def test_unknown_format_requested(tmp_path, frame):
    with pytest.raises(UnsupportedFormatError, match="'orc'"):
        write_dataset(frame, str(tmp_path / "x"), format="orc")


def test_mixed_formats_in_folder(tmp_path, frame):
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    frame.to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(UnsupportedFormatError, match="mixes formats"):
        read_dataset(str(tmp_path))


def test_unsupported_scheme():
    with pytest.raises(UnsupportedFormatError, match="scheme 'gs'"):
        read_dataset("gs://bucket/data.parquet")


def test_truncated_parquet_is_named(tmp_path, frame):
    good = tmp_path / "good.parquet"
    frame.to_parquet(good, index=False)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(good.read_bytes()[:200])
    with pytest.raises(DatasetError, match="complete parquet file") as error:
        read_dataset(str(broken))
    assert str(broken) in str(error.value)


def test_s3_uri_without_client_names_the_fix():
    with pytest.raises(DatasetError, match="aws_conn_id"):
        read_dataset("s3://bucket/key.parquet")


def test_failed_write_leaves_nothing(tmp_path):
    class Unwritable(pd.DataFrame):
        def to_parquet(self, *args, **kwargs):
            raise OSError("disk full")

    with pytest.raises(OSError):
        write_dataset(Unwritable({"a": [1]}), str(tmp_path / "out.parquet"))
    assert list(tmp_path.iterdir()) == []


def test_gzip_csv_is_really_compressed(tmp_path, frame):
    write_dataset(frame, str(tmp_path / "d.csv.gz"))
    assert gzip.decompress((tmp_path / "d.csv.gz").read_bytes()).startswith(b"customer_id,")


def test_parse_uri_forms(tmp_path):
    assert parse_uri("s3://b/k/x.parquet").bucket == "b"
    assert parse_uri("file:///tmp/x.csv").path == "/tmp/x.csv"
    assert parse_uri("relative/x.csv").path == "relative/x.csv"
    with pytest.raises(DatasetError, match="names no bucket"):
        parse_uri("s3:///key")
    with pytest.raises(DatasetError, match="empty"):
        parse_uri("  ")
