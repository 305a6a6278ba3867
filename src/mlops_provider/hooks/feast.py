"""Feast hook: an Airflow ``feast`` connection -> a ``FeatureStore`` on a feature repository.

Connection fields: ``extra.repo_path``, the folder holding ``feature_store.yaml`` (local to the worker).
Operators may pass ``repo_path`` directly instead of a connection.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from mlops_provider.core.errors import ConfigurationError

if TYPE_CHECKING:
    from feast import FeatureStore

FEATURE_STORE_YAML = "feature_store.yaml"


class FeastHook(BaseHook):
    """Opens a Feast feature repository named by a connection (or by ``repo_path``).

    :param feast_conn_id: the ``feast`` connection whose ``extra.repo_path`` names the repository.
    :param repo_path: the repository folder; when given, no connection is looked up.
    """

    conn_name_attr = "feast_conn_id"
    default_conn_name = "feast_default"
    conn_type = "feast"
    hook_name = "Feast"

    def __init__(self, feast_conn_id: str = default_conn_name, repo_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.feast_conn_id = feast_conn_id
        self._repo_path = repo_path

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["host", "schema", "port", "login", "password"],
            "relabeling": {},
            "placeholders": {"extra": json.dumps({"repo_path": "/opt/airflow/include/feature_repo"}, indent=2)},
        }

    @cached_property
    def repo_path(self) -> Path:
        """The feature repository folder, checked to hold a ``feature_store.yaml``."""
        raw: str | None
        if self._repo_path:
            source = "repo_path"
            raw = self._repo_path
        else:
            try:
                conn = self.get_connection(self.feast_conn_id)
            except AirflowNotFoundException:
                raise ConfigurationError(
                    f"The Airflow connection {self.feast_conn_id!r} is not defined; create a 'feast' "
                    'connection with extra {"repo_path": "/path/to/feature_repo"}, or pass repo_path.'
                ) from None
            raw = (conn.extra_dejson or {}).get("repo_path")
            source = f"connection {self.feast_conn_id!r} (extra.repo_path)"
            if not raw:
                raise ConfigurationError(
                    f"The Feast connection {self.feast_conn_id!r} has no extra.repo_path; set it to the folder "
                    f"that holds {FEATURE_STORE_YAML}."
                )
        path = Path(raw).expanduser().resolve()
        if not (path / FEATURE_STORE_YAML).is_file():
            raise ConfigurationError(
                f"The Feast repository {str(path)!r} from {source} has no {FEATURE_STORE_YAML}; point it at "
                "a feature repository folder (created with `feast init`)."
            )
        return path

    def get_conn(self) -> FeatureStore:
        from feast import FeatureStore

        return FeatureStore(repo_path=str(self.repo_path))

    def test_connection(self) -> tuple[bool, str]:
        try:
            store = self.get_conn()
            names = sorted(view.name for view in store.list_feature_views())
        except Exception as error:
            return False, f"Feast repository did not open: {type(error).__name__}: {error}"
        listed = ", ".join(names) if names else "none registered yet (run FeastApplyOperator)"
        return True, f"Feast repository {self.repo_path} is readable; feature views: {listed}."
