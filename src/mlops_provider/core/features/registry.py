"""The Feast registry: apply a repository's definitions, and record materialisation intervals safely.

Parallel tasks on one machine may share a local file registry; ``registry_lock`` serialises their updates
and replaces the file atomically.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.features import compat
from mlops_provider.core.storage import exclusive_file_lock
from mlops_provider.core.windows import MaterializationWindow, to_utc

if TYPE_CHECKING:
    from feast import FeatureStore


# -- the registry lock and its atomic writer ------------------------------------------------------------


def _registry_file(store: FeatureStore) -> Path | None:
    """The local file behind a file registry (None for SQL, remote and object-store registries)."""
    registry = store.config.registry
    if getattr(registry, "registry_type", "file") != "file":
        return None
    location = str(registry.path)
    if "://" in location and not location.startswith("file://"):
        return None
    path = Path(location.removeprefix("file://"))
    return path if path.is_absolute() else Path(store.repo_path) / path


@contextlib.contextmanager
def registry_lock(store: FeatureStore) -> Iterator[None]:
    """Make registry updates safe for parallel tasks on one machine sharing a local file registry.

    Feast rewrites the whole registry file on every change, in place. Two slices recording their intervals
    at the same time would lose one of them, and a task reading while another writes could read a torn
    file. Inside this block updates take an exclusive file lock (one read-modify-write at a time) and the
    file is replaced atomically (written beside it, then renamed), so readers see the old or the new file.
    SQL and remote registries are left to their own transactions.
    """
    path = _registry_file(store)
    if path is None or not path.parent.is_dir():
        yield
        return
    with compat.registry_file_writer(store, _atomic_registry_writer(path)):
        with exclusive_file_lock(path.with_name(path.name + ".lock")):
            yield


def _atomic_registry_writer(path: Path) -> Any:
    def write(registry_proto: Any) -> None:
        import threading

        content = compat.registry_proto_bytes(registry_proto)
        staging = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(staging, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, path)

    return write


# -- materialisation intervals --------------------------------------------------------------------------


def _registered_view(store: FeatureStore, name: str) -> Any:
    from feast.errors import FeatureViewNotFoundException

    try:
        return store.registry.get_feature_view(name, store.project, allow_cache=True)
    except FeatureViewNotFoundException:
        return store.registry.get_stream_feature_view(name, store.project, allow_cache=True)


def _same_instant(a: datetime, b: datetime) -> bool:
    return to_utc(a, name="interval") == to_utc(b, name="interval")


def materialized_intervals(store: FeatureStore, view_name: str) -> set[tuple[datetime, datetime]]:
    """The view's recorded materialisation intervals as aware UTC ``(start, end)`` pairs, read afresh."""
    store.registry.refresh(store.project)
    view = _registered_view(store, view_name)
    return {(to_utc(a, name="interval"), to_utc(b, name="interval")) for a, b in view.materialization_intervals}


def record_materialization(store: FeatureStore, view_name: str, window: MaterializationWindow) -> bool:
    """Add ``window`` to the view's materialisation intervals in the registry, once (False: already there)."""
    with registry_lock(store):
        store.registry.refresh(store.project)
        view = _registered_view(store, view_name)
        for start, end in view.materialization_intervals:
            if _same_instant(start, window.start) and _same_instant(end, window.end):
                return False
        store.registry.apply_materialization(view, store.project, window.start, window.end)
        return True


# -- apply ----------------------------------------------------------------------------------------------


@dataclass
class ApplyResult:
    project: str
    created: list[str]
    updated: list[str]
    deleted: list[str]
    unchanged: int
    infra_changes: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted or self.infra_changes)

    def summary(self) -> str:
        if not self.changed:
            return (
                f"Feast project {self.project!r} is up to date: {self.unchanged} object(s) unchanged, nothing applied."
            )
        parts = [f"Applied Feast project {self.project!r}:"]
        for label, names in (("created", self.created), ("updated", self.updated), ("deleted", self.deleted)):
            if names:
                parts.append(f"  {label}: {', '.join(names)}")
        if self.infra_changes:
            parts.append(f"  online store: {', '.join(self.infra_changes)}")
        parts.append(f"  unchanged: {self.unchanged}")
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "changed": self.changed}


def _repo_module_names(repo_path: Path) -> list[str]:
    return [".".join(path.relative_to(repo_path).with_suffix("").parts) for path in compat.repo_files(repo_path)]


@contextlib.contextmanager
def _importable_repo(repo_path: Path) -> Iterator[None]:
    """Let Feast import the repository's definition files by module name, and leave no trace afterwards.

    Feast names each file's module relative to the working directory and imports it with ``importlib``, so
    the repository must be the working directory and on ``sys.path``. Modules already loaded under the same
    names (an earlier repository's files, or unrelated modules) step aside, so this repository's files are
    the ones read; working directory, ``sys.path`` and ``sys.modules`` are restored afterwards.
    """
    names = _repo_module_names(repo_path)
    previous_cwd = os.getcwd()
    previous_bytecode = sys.dont_write_bytecode
    # Modules already loaded under these names (an earlier repository, or an unrelated module) step aside
    # while Feast imports this repository's files, and come back afterwards.
    set_aside = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    sys.path.insert(0, str(repo_path))
    sys.dont_write_bytecode = True  # no __pycache__ inside the repository
    os.chdir(repo_path)
    try:
        yield
    finally:
        os.chdir(previous_cwd)
        sys.dont_write_bytecode = previous_bytecode
        with contextlib.suppress(ValueError):
            sys.path.remove(str(repo_path))
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(set_aside)


def apply_repository(store: FeatureStore, repo_path: str | Path) -> ApplyResult:
    """Register the repository's definitions, like ``feast apply``, and say what changed.

    Nothing is written when the registry already matches the definitions, so applying twice changes nothing.
    """
    from feast import Project
    from feast.diff.property_diff import TransitionType

    repo_path = Path(repo_path).resolve()
    with _importable_repo(repo_path):
        try:
            repo = compat.parse_repo(repo_path)
        except Exception as error:
            import traceback

            inside = [f for f in traceback.extract_tb(error.__traceback__) if str(repo_path) in f.filename]
            where = f" at {inside[-1].filename}:{inside[-1].lineno}" if inside else ""
            raise ConfigurationError(
                f"The feature definitions in {repo_path} did not import{where}: {type(error).__name__}: {error}. "
                "Fix that file (feast apply must be able to import every definition) and run the task again."
            ) from error
    if not repo.projects:
        description = getattr(store.config, "project_description", None) or ""
        repo.projects.append(Project(name=store.project, description=description))
    elif [project.name for project in repo.projects] != [store.project]:
        raise ConfigurationError(
            f"The definitions in {repo_path} declare project(s) {[p.name for p in repo.projects]} but "
            f"feature_store.yaml names {store.project!r}; make them match."
        )
    registry_diff, infra_diff, new_infra = store.plan(repo)
    by_transition: dict[Any, list[str]] = {}
    for diff in registry_diff.feast_object_diffs:
        label = f"{diff.feast_object_type.name.lower()}:{diff.name}"
        by_transition.setdefault(diff.transition_type, []).append(label)
    infra_changes = [
        f"{diff.transition_type.name.lower()} {diff.name}"
        for diff in infra_diff.infra_object_diffs
        if diff.transition_type != TransitionType.UNCHANGED
    ]
    result = ApplyResult(
        project=store.project,
        created=sorted(by_transition.get(TransitionType.CREATE, [])),
        updated=sorted(by_transition.get(TransitionType.UPDATE, [])),
        deleted=sorted(by_transition.get(TransitionType.DELETE, [])),
        unchanged=len(by_transition.get(TransitionType.UNCHANGED, [])),
        infra_changes=infra_changes,
    )
    if not result.changed:
        return result
    with registry_lock(store):
        compat.apply_plan(store, repo, registry_diff, infra_diff, new_infra)
    return result
