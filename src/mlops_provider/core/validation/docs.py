"""GX Data Docs for a finished validation, stored at a fixed report location (local or ``s3://``)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_provider.core.datasets import parse_uri
from mlops_provider.core.reports import write_report

if TYPE_CHECKING:
    from mlops_provider.core.validation.run import ValidationRun

_DOCS_SITE_NAME = "mlops_report"
DOCS_INDEX = "index.html"


def publish_data_docs(run: ValidationRun, docs_uri: str, *, s3_client: Any = None) -> str:
    """Render the run's Data Docs and store them under ``docs_uri`` (a folder URI); return the page's URI.

    GX builds the site in a temporary folder (removed afterwards), which is then copied file by file to
    ``docs_uri``, replacing what an earlier try left there. The returned URI is the validation result page;
    ``<docs_uri>/index.html`` lists it.
    """
    root = docs_uri.rstrip("/")
    with tempfile.TemporaryDirectory(prefix="mlops-gx-docs-") as folder:
        site = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": folder},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
        sites = run.context.list_data_docs_sites()
        if _DOCS_SITE_NAME in sites:
            run.context.update_data_docs_site(_DOCS_SITE_NAME, site)
        else:
            run.context.add_data_docs_site(_DOCS_SITE_NAME, site)
        try:
            run.context.build_data_docs(site_names=[_DOCS_SITE_NAME])
        finally:
            run.context.delete_data_docs_site(_DOCS_SITE_NAME)
        files = sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob("*") if p.is_file())
        pages = [name for name in files if name.startswith("validations/") and name.endswith(".html")]
        if DOCS_INDEX not in files or len(pages) != 1:
            raise RuntimeError(f"Great Expectations built an unexpected Data Docs site: {files[:20]}")
        for name in files:
            write_report(f"{root}/{name}", (Path(folder) / name).read_bytes(), s3_client=s3_client)
    _remove_stale_files(root, set(files), s3_client)
    return f"{root}/{pages[0]}"


def _remove_stale_files(root: str, keep: set[str], s3_client: Any) -> None:
    """Delete files an earlier try left under ``root`` that this try did not write."""
    location = parse_uri(root)
    if location.scheme == "s3":
        prefix = location.path.rstrip("/") + "/"
        stale: list[dict[str, str]] = []
        for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=prefix):
            stale.extend(
                {"Key": item["Key"]} for item in page.get("Contents", []) if item["Key"][len(prefix) :] not in keep
            )
        for start in range(0, len(stale), 1000):
            s3_client.delete_objects(Bucket=location.bucket, Delete={"Objects": stale[start : start + 1000]})
        return
    base = Path(location.path)
    for path in sorted(base.rglob("*"), reverse=True):  # children before their folders
        relative = path.relative_to(base).as_posix()
        if path.is_file() and relative not in keep:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
