"""One mixin per external system: it declares the connection arguments and builds the task's one hook.

In the manner of the amazon provider's ``AwsBaseHookMixin``: an operator that talks to MLflow inherits
``MlflowHookMixin`` and reads ``self.mlflow_hook``; it never builds a hook inline. The hook is made on first
use while the task runs (after templating, so a templated connection id is the rendered one) and cached for
the rest of the task: one connection lookup and one client per task. Connection arguments are template
fields: list ``*MLFLOW_FIELDS`` (etc.) in the operator's ``template_fields``.

The mixins are ``BaseOperator`` subclasses so that ``default_args`` and ``.partial()`` see their arguments.
Every operator of the provider returns a small dict and also pushes each of its keys as its own XCom
(``multiple_outputs``), so a downstream task takes a value with ``train.output["version"]``, and fails at
once, without spending retries, on an error that a retry cannot fix (see ``core.errors``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.configuration import conf
from airflow.sdk import BaseOperator

from mlops_provider import arguments
from mlops_provider.core.errors import MlopsError
from mlops_provider.hooks.datasets import DatasetHook
from mlops_provider.hooks.feast import FeastHook
from mlops_provider.hooks.mlflow import MlflowHook
from mlops_provider.links.base import PersistedUrlLink

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

MLFLOW_FIELDS: tuple[str, ...] = ("mlflow_conn_id",)
DATASET_FIELDS: tuple[str, ...] = ("aws_conn_id",)
FEAST_FIELDS: tuple[str, ...] = ("feast_conn_id", "repo_path")


def default_deferrable() -> bool:
    """What the platform decided: ``[operators] default_deferrable`` (False unless configured)."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


TASK_METHODS = ("execute", "poke", "execute_complete")


_FAIL_FAST_CLASSES: dict[type, type[Exception]] = {}


def _fail_fast_class(error_class: type[MlopsError]) -> type[Exception]:
    """``error_class`` that is also Airflow's ``AirflowFailException``: the task fails without a retry, and
    ``except ConfigurationError`` still catches it."""
    from airflow.sdk.exceptions import AirflowFailException

    if error_class not in _FAIL_FAST_CLASSES:
        namespace = {"__module__": error_class.__module__, "__doc__": error_class.__doc__}
        _FAIL_FAST_CLASSES[error_class] = type(error_class.__name__, (error_class, AirflowFailException), namespace)
    return _FAIL_FAST_CLASSES[error_class]


def fail_fast_on_permanent_errors(method: Callable[..., Any]) -> Callable[..., Any]:
    """Re-raise a provider error that no retry can fix (``retryable`` False) as one that skips the retries."""

    @functools.wraps(method)
    def run(self: BaseOperator, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except MlopsError as error:
            from airflow.sdk.exceptions import AirflowFailException

            if error.retryable or isinstance(error, AirflowFailException):
                raise
            raise _fail_fast_class(type(error))(*error.args).with_traceback(error.__traceback__) from None

    run.fails_fast = True  # type: ignore[attr-defined]
    return run


def remember_result(method: Callable[..., Any]) -> Callable[..., Any]:
    """Keep the dict a task method returns on the operator: OpenLineage describes the task from it afterwards
    (in the same process, once the task ended), without reading XCom back."""

    @functools.wraps(method)
    def run(self: BaseOperator, *args: Any, **kwargs: Any) -> Any:
        result = method(self, *args, **kwargs)
        if isinstance(result, dict):
            self.lineage_result = result
        return result

    return run


class ResultOperator(BaseOperator):
    """Base of the provider's operators: the returned dict's keys are XComs too (``op.output["key"]``), and
    an error no retry can fix fails the task at once."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in TASK_METHODS:
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "fails_fast", False):
                setattr(cls, name, fail_fast_on_permanent_errors(remember_result(method)))

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)

    # What the task returned (or, for a task that stopped on a verdict, the verdict): set while the task runs.
    lineage_result: dict[str, Any] | None = None

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """The datasets the task read and wrote, with their facets, for Airflow's OpenLineage provider (called
        after success, skip and failure alike; see ``mlops_provider.lineage``). Never raises."""
        from mlops_provider.lineage import safe_operator_lineage
        from mlops_provider.operators.lineage import describe_task

        return safe_operator_lineage(lambda: describe_task(self, self.lineage_result), self.task_id)

    def pre_execute(self, context: Context) -> None:
        # Every link's URL exists from the start (empty until the task stores it): Airflow reads each link
        # when the task ends, and a failed task's missing link would log an error of its own.
        for link in self.operator_extra_links:
            if isinstance(link, PersistedUrlLink):
                link.persist(context, None)
        super().pre_execute(context)


class MlflowHookMixin(ResultOperator):
    """MLflow tracking and registry through the ``mlflow`` connection ``mlflow_conn_id``.

    :param mlflow_conn_id: the ``mlflow`` connection (default ``mlflow_default``; without it, the embedded
        store under ``$MLOPS_HOME``).
    """

    def __init__(self, *, mlflow_conn_id: str = MlflowHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mlflow_conn_id = mlflow_conn_id

    @cached_property
    def mlflow_hook(self) -> MlflowHook:
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)


class DatasetHookMixin(ResultOperator):
    """Datasets at local paths or ``s3://`` URIs; S3 through the amazon provider's ``aws`` connection.

    :param aws_conn_id: the ``aws`` connection used for ``s3://`` URIs (none is looked up for local paths).
    """

    def __init__(self, *, aws_conn_id: str | None = "aws_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id

    @cached_property
    def dataset_hook(self) -> DatasetHook:
        return DatasetHook(aws_conn_id=self.aws_conn_id)


class FeastHookMixin(ResultOperator):
    """A Feast feature repository named by the ``feast`` connection ``feast_conn_id`` or by ``repo_path``.

    :param feast_conn_id: a ``feast`` connection whose ``extra.repo_path`` names the repository.
    :param repo_path: the repository folder (holding ``feature_store.yaml``); overrides the connection.
    """

    def __init__(
        self, *, feast_conn_id: str = FeastHook.default_conn_name, repo_path: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.feast_conn_id = feast_conn_id
        self.repo_path = repo_path

    @cached_property
    def feast_hook(self) -> FeastHook:
        return FeastHook(
            feast_conn_id=self.feast_conn_id, repo_path=arguments.optional_text(self.repo_path, "repo_path")
        )
