"""Dataset IO for tasks: core's reader and writer with S3 access through the amazon provider.

``s3://`` URIs use the ``aws`` connection ``aws_conn_id`` (credentials, region and ``endpoint_url`` from the
connection); local paths need no connection. The S3 client is only made when an S3 URI is used.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from mlops_provider.core import datasets

if TYPE_CHECKING:
    import pandas as pd


class DatasetHook:
    """Read and write datasets at URIs for one task.

    :param aws_conn_id: the Airflow ``aws`` connection used for ``s3://`` URIs.
    """

    def __init__(self, aws_conn_id: str | None = "aws_default") -> None:
        self.aws_conn_id = aws_conn_id
        # The columns of every URI read or written by this task, as (name, dtype): the schema OpenLineage reports.
        self.schemas: dict[str, list[tuple[str, str]]] = {}

    @cached_property
    def s3_client(self) -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id).get_conn()

    def _client_for(self, uri: str) -> Any:
        on_s3 = any(datasets.parse_uri(part).scheme == "s3" for part in datasets.split_uris(uri))
        return self.s3_client if on_s3 else None

    def list_partitions(self, uri: str) -> list[str]:
        return datasets.list_partitions(uri, s3_client=self._client_for(uri))

    def read(self, uri: str, **kwargs: Any) -> pd.DataFrame:
        frame = datasets.read_dataset(uri, s3_client=self._client_for(uri), **kwargs)
        self._remember_schema(uri, frame)
        return frame

    def write(self, frame: pd.DataFrame, uri: str, **kwargs: Any) -> datasets.DatasetInfo:
        info = datasets.write_dataset(frame, uri, s3_client=self._client_for(uri), **kwargs)
        self._remember_schema(uri, frame)
        return info

    def _remember_schema(self, uri: str, frame: Any) -> None:
        self.schemas[str(uri)] = [(str(name), str(dtype)) for name, dtype in frame.dtypes.items()]
