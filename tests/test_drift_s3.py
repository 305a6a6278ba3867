"""Wide drift on S3: a partitioned parquet prefix on a real (moto) S3 server gives the same verdicts as the same
rows read locally, columns are read a block at a time from the downloaded parts, and nothing downloaded is left
behind once the check is done."""

from __future__ import annotations

import glob
import tempfile
from contextlib import ExitStack

import boto3
import pandas as pd
import pyarrow.parquet as pq
from tests.conftest import MOTO_KEY
from tests.test_drift_wide import assert_same, wide_frame

from mlops_provider.core import drift_wide
from mlops_provider.core.drift import DriftSettings, detect_drift
from mlops_provider.core.drift_wide import detect_drift_wide, open_source

COLUMNS = 40


def put_parts(client, bucket: str, prefix: str, frame: pd.DataFrame, parts: int) -> str:
    """``frame`` split into ``parts`` parquet files under ``s3://bucket/prefix``."""
    rows = len(frame) // parts
    for index in range(parts):
        part = frame.iloc[index * rows : (index + 1) * rows if index < parts - 1 else len(frame)]
        client.put_object(Bucket=bucket, Key=f"{prefix}/part-{index}.parquet", Body=part.to_parquet(index=False))
    return f"s3://{bucket}/{prefix}"


def test_s3_prefix_gives_the_local_verdicts_a_block_at_a_time(moto_server, s3_bucket, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # this test's downloads only
    client = boto3.client(
        "s3",
        endpoint_url=moto_server.url,
        aws_access_key_id=MOTO_KEY["login"],
        aws_secret_access_key=MOTO_KEY["password"],
        region_name="us-east-1",
    )
    reference, current = wide_frame(1500, 11, False, COLUMNS), wide_frame(1800, 12, True, COLUMNS)
    reference_uri = put_parts(client, s3_bucket, "reference", reference, 2)
    current_uri = put_parts(client, s3_bucket, "current", current, 3)

    reads: list[int] = []  # the number of columns of each parquet read, whichever pyarrow call makes it
    original_read_table, original_file_read = pq.read_table, pq.ParquetFile.read

    def counting_read_table(source, *args, columns=None, **kwargs):
        reads.append(len(columns) if columns is not None else -1)
        return original_read_table(source, *args, columns=columns, **kwargs)

    def counting_file_read(self, columns=None, *args, **kwargs):
        reads.append(len(columns) if columns is not None else -1)
        return original_file_read(self, columns, *args, **kwargs)

    monkeypatch.setattr(pq, "read_table", counting_read_table)
    monkeypatch.setattr(pq.ParquetFile, "read", counting_file_read)
    monkeypatch.setattr(drift_wide, "BLOCK_CELLS", 1800 * 7)  # several blocks of columns
    settings = DriftSettings()
    with ExitStack() as stack:
        wide = detect_drift_wide(
            open_source(reference_uri, s3_client=client, stack=stack),
            open_source(current_uri, s3_client=client, stack=stack),
            settings,
        )
        downloaded = glob.glob(f"{tmp_path}/mlops-drift-*/*.parquet")
        assert len(downloaded) == 5  # one folder per part, each object fetched once
    assert not glob.glob(f"{tmp_path}/mlops-drift-*")

    # The verdicts match the in-memory check of the same rows.
    assert_same(detect_drift(reference, current, settings), wide.result)
    assert wide.result.drifted_columns, "the drifted side moved every seventh column"
    assert reads and all(0 < width < COLUMNS for width in reads), f"whole-table reads: {reads}"
