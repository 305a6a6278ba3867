"""A small client for Airflow 3's REST API (``/api/v2``), as a user or a CI job drives it.

Authentication is the simple auth manager's ``POST /auth/token``; every helper raises with a readable
message. When a run does not reach the state a test waits for, :class:`RunDidNotFinish` carries a report
with each unfinished or failed task instance and its log fetched from the API, so a failing system test
shows why the task failed, not only that a timeout expired.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

FINISHED = {"success", "failed"}
TI_PROBLEM_STATES = {"failed", "upstream_failed", "up_for_retry", "up_for_reschedule", "removed"}
TI_ACTIVE_STATES = {"queued", "scheduled", "running", "deferred", "restarting", None}


class ApiError(AssertionError):
    """The API answered with an error status."""


class RunDidNotFinish(AssertionError):
    """A DAG run did not reach the expected state; the message holds task states and logs."""


def _iso(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


class AirflowApi:
    """The public REST API of one api-server, authenticated as one simple-auth-manager user."""

    def __init__(self, base_url: str, username: str, password: str, *, diagnostics: Callable[[], str] | None = None):
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        # Extra context for failure reports (process liveness and log tails of the Airflow components).
        self.diagnostics = diagnostics
        self._client = httpx.Client(base_url=self.base_url, timeout=30)
        self._token: str | None = None

    def close(self) -> None:
        self._client.close()

    # -- transport --------------------------------------------------------------------------------------
    def token(self, *, refresh: bool = False) -> str:
        if self._token is None or refresh:
            response = self._client.post("/auth/token", json={"username": self.username, "password": self.password})
            if response.status_code >= 400:
                raise ApiError(
                    f"POST /auth/token as {self.username!r} answered {response.status_code}: {response.text[:500]}"
                )
            self._token = response.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, *, expected: Iterable[int] = (200, 201), **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        response = self._client.request(method, path, headers=headers, **kwargs)
        if response.status_code == 401:  # token expired: log in again once
            headers["Authorization"] = f"Bearer {self.token(refresh=True)}"
            response = self._client.request(method, path, headers=headers, **kwargs)
        if response.status_code not in expected:
            raise ApiError(f"{method} {path} answered {response.status_code}: {response.text[:2000]}")
        if not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def get_all(self, path: str, key: str, *, page_size: int = 100, **params: Any) -> list[dict]:
        """Every item of a paginated collection (``limit``/``offset``), e.g. ``get_all("/api/v2/dags", "dags")``."""
        items: list[dict] = []
        while True:
            page = self.get(path, params={**params, "limit": page_size, "offset": len(items)})
            items.extend(page[key])
            total = page.get("total_entries")
            if len(page[key]) < page_size or (total is not None and len(items) >= total):
                return items

    # -- health and DAGs ---------------------------------------------------------------------------------
    def health(self) -> dict:
        """``/api/v2/monitor/health`` (needs no login)."""
        response = self._client.get("/api/v2/monitor/health")
        response.raise_for_status()
        return response.json()

    def import_errors(self) -> list[dict]:
        return self.get("/api/v2/importErrors", params={"limit": 100})["import_errors"]

    def wait_for_dag(self, dag_id: str, *, timeout: float = 120) -> dict:
        """The DAG as soon as the dag-processor has serialised it; a parse error of its file fails at once."""
        deadline = time.monotonic() + timeout
        while True:
            response = self._client.get(f"/api/v2/dags/{dag_id}", headers={"Authorization": f"Bearer {self.token()}"})
            if response.status_code == 200:
                details = self._client.get(
                    f"/api/v2/dags/{dag_id}/details", headers={"Authorization": f"Bearer {self.token()}"}
                )
                if details.status_code == 200:
                    return details.json()
            errors = [e for e in self.import_errors() if dag_id in json.dumps(e) or "mlops" in e.get("filename", "")]
            if errors:
                listing = "\n\n".join(f"{e['filename']}:\n{e['stack_trace']}" for e in errors)
                raise ApiError(f"DAG {dag_id!r} is not loaded; the dag-processor reports import errors:\n{listing}")
            if time.monotonic() > deadline:
                loaded = [d["dag_id"] for d in self.get("/api/v2/dags", params={"limit": 100})["dags"]]
                raise ApiError(
                    f"DAG {dag_id!r} was not parsed within {timeout:.0f}s; loaded DAGs: {loaded}" + self._diagnostics()
                )
            time.sleep(1)

    def set_paused(self, dag_id: str, paused: bool) -> dict:
        return self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": paused})

    def dag(self, dag_id: str) -> dict | None:
        """``GET /api/v2/dags/{dag_id}`` (``is_stale``, ``is_paused``, ``last_parsed_time`` ...); None when unknown."""
        response = self.request("GET", f"/api/v2/dags/{dag_id}", expected=(200, 404))
        return response if isinstance(response, dict) and "dag_id" in response else None  # 404: {"detail": ...}

    def dag_details(self, dag_id: str) -> dict:
        """``GET /api/v2/dags/{dag_id}/details``: also ``doc_md``, ``params`` and the ``file_token`` of its file."""
        return self.get(f"/api/v2/dags/{dag_id}/details")

    def dag_versions(self, dag_id: str) -> list[dict]:
        """The DAG's versions (a new one each time its parsed structure changes after it ran), oldest first."""
        return self.get_all(f"/api/v2/dags/{dag_id}/dagVersions", "dag_versions", order_by="version_number")

    def reparse(self, dag_id: str) -> None:
        """``PUT /api/v2/parseDagFile/{file_token}``: the UI's "Reparse Dag" for the file that defines ``dag_id``
        (the dag-processor parses it next, ahead of its ``min_file_process_interval``)."""
        token = self.dag_details(dag_id)["file_token"]
        self.request("PUT", f"/api/v2/parseDagFile/{token}", expected=(201,))

    def set_pool(self, name: str, slots: int, description: str = "") -> dict:
        """Create the pool, or set its slots when it exists (``airflow pools set``)."""
        body = {"name": name, "slots": slots, "description": description, "include_deferred": False}
        created = self.request("POST", "/api/v2/pools", json=body, expected=(201, 409))
        if isinstance(created, dict) and created.get("name") == name:
            return created
        return self.request("PATCH", f"/api/v2/pools/{name}", json=body)  # the body names the pool too

    # -- runs -----------------------------------------------------------------------------------------
    def trigger(
        self,
        dag_id: str,
        *,
        conf: dict | None = None,
        logical_date: datetime | str | None = None,
        data_interval: tuple[datetime | str, datetime | str] | None = None,
        run_id: str | None = None,
        note: str | None = None,
    ) -> dict:
        """``POST /api/v2/dags/{dag_id}/dagRuns``; returns the created run."""
        body: dict[str, Any] = {"logical_date": _iso(logical_date), "conf": conf or {}}
        if data_interval:
            body["data_interval_start"], body["data_interval_end"] = (_iso(v) for v in data_interval)
        if run_id:
            body["dag_run_id"] = run_id
        if note:
            body["note"] = note
        return self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")

    def runs(self, dag_id: str, **params: Any) -> list[dict]:
        params.setdefault("limit", 100)
        params.setdefault("order_by", "run_after")
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns", params=params)["dag_runs"]

    def all_runs(self) -> list[dict]:
        """The runs of every DAG (``~`` stands for all DAGs)."""
        return self.get_all("/api/v2/dags/~/dagRuns", "dag_runs", order_by="run_after")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get_all(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", "task_instances")

    def task_instance(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        if map_index >= 0:
            path += f"/{map_index}"
        return self.get(path)

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict]:
        """Every try of a task instance (state, hostname, start and end), oldest first."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries"
        return sorted(self.get(path)["task_instances"], key=lambda t: t["try_number"])

    def clear(self, dag_id: str, run_id: str, task_ids: list[str]) -> list[dict]:
        """Clear task instances of a run (the UI's "Clear"): they run again, and the run with them."""
        body = {"dag_run_id": run_id, "task_ids": task_ids, "dry_run": False, "only_failed": False,
                "reset_dag_runs": True}  # fmt: skip
        return self.request("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances", json=body)["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        entry = self.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            params={"deserialize": "true"},
        )
        return entry["value"]

    def xcom_entries(self, dag_id: str, run_id: str) -> list[dict]:
        """The run's XCom entries of all its tasks, without values (see :meth:`xcom_raw`)."""
        return self.get_all(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/~/xcomEntries", "xcom_entries")

    def xcom_raw(self, dag_id: str, run_id: str, task_id: str, key: str, map_index: int = -1) -> Any:
        """An XCom value as stored in the metadata DB (not deserialized)."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{quote(key, safe='')}"
        return self.get(path, params={"map_index": map_index})["value"]

    def extra_links(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict:
        """The task instance's extra links as the UI shows them: ``{name: url}``."""
        return self.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links", params={"map_index": map_index}
        )

    def asset_events(self) -> list[dict]:
        return self.get_all("/api/v2/assets/events", "asset_events")

    def hitl_details(self) -> list[dict]:
        """Human-in-the-loop requests of all runs (subject, body, answer)."""
        return self.get_all("/api/v2/dags/~/dagRuns/~/hitlDetails", "hitl_details")

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """A task try's whole log as text (structured lines rendered one per line)."""
        data = self.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true", "map_index": map_index},
            headers={"Accept": "application/json"},
        )
        return render_log(data.get("content", []) if isinstance(data, dict) else [data])

    def wait_for_run(
        self, dag_id: str, run_id: str, *, timeout: float = 300, state: str = "success", poll: float = 2
    ) -> dict:
        """Wait until the run is finished; raise :class:`RunDidNotFinish` with task logs unless it is ``state``."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(dag_id, run_id)
            if run["state"] in FINISHED:
                if run["state"] == state:
                    return run
                raise RunDidNotFinish(
                    f"DAG run {dag_id}/{run_id} ended {run['state']!r}, expected {state!r}.\n"
                    + self.failure_report(dag_id, run_id)
                )
            if time.monotonic() > deadline:
                raise RunDidNotFinish(
                    f"DAG run {dag_id}/{run_id} is still {run['state']!r} after {timeout:.0f}s "
                    f"(expected {state!r}).\n" + self.failure_report(dag_id, run_id)
                )
            time.sleep(poll)

    def wait_for_task(
        self, dag_id: str, run_id: str, task_id: str, states: Iterable[str], *, timeout: float = 180, poll: float = 1
    ) -> dict:
        """Wait until a task instance is in one of ``states``; a task that fails meanwhile ends the wait."""
        wanted = set(states)
        deadline = time.monotonic() + timeout
        while True:
            ti = self.task_instance(dag_id, run_id, task_id)
            if ti["state"] in wanted:
                return ti
            if ti["state"] in TI_PROBLEM_STATES or time.monotonic() > deadline:
                raise RunDidNotFinish(
                    f"Task {dag_id}/{run_id}/{task_id} is {ti['state']!r}, expected one of {sorted(wanted)}"
                    + (f" (waited {timeout:.0f}s)" if ti["state"] not in TI_PROBLEM_STATES else "")
                    + ".\n"
                    + self.failure_report(dag_id, run_id)
                )
            time.sleep(poll)

    def wait_for_runs(
        self, dag_id: str, predicate: Callable[[list[dict]], bool], *, timeout: float = 300, poll: float = 2, **params
    ) -> list[dict]:
        """Poll the DAG's runs until ``predicate(runs)`` holds; return them."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.runs(dag_id, **params)
            if predicate(runs):
                return runs
            failed = [r for r in runs if r["state"] == "failed"]
            if failed or time.monotonic() > deadline:
                reports = "\n".join(self.failure_report(dag_id, r["dag_run_id"]) for r in (failed or runs)[:3])
                states = [(r["dag_run_id"], r["run_type"], r["state"]) for r in runs]
                raise RunDidNotFinish(
                    f"Runs of {dag_id} did not reach the expected shape within {timeout:.0f}s: {states}\n{reports}"
                )
            time.sleep(poll)

    # -- backfills ----------------------------------------------------------------------------------
    def backfill_dry_run(self, dag_id: str, from_date: datetime | str, to_date: datetime | str) -> list[str]:
        body = {"dag_id": dag_id, "from_date": _iso(from_date), "to_date": _iso(to_date)}
        result = self.request("POST", "/api/v2/backfills/dry_run", json=body)
        return [b["logical_date"] for b in result["backfills"]]

    def create_backfill(
        self,
        dag_id: str,
        from_date: datetime | str,
        to_date: datetime | str,
        *,
        max_active_runs: int = 1,
        conf: dict | None = None,
        reprocess_behavior: str = "none",
    ) -> dict:
        """``POST /api/v2/backfills``: the scheduler then runs one DAG run per interval in the range."""
        body = {
            "dag_id": dag_id,
            "from_date": _iso(from_date),
            "to_date": _iso(to_date),
            "max_active_runs": max_active_runs,
            "reprocess_behavior": reprocess_behavior,
            "dag_run_conf": conf or {},
        }
        return self.request("POST", "/api/v2/backfills", json=body)

    def backfill(self, backfill_id: int) -> dict:
        return self.get(f"/api/v2/backfills/{backfill_id}")

    # -- failure reports -----------------------------------------------------------------------------
    def failure_report(self, dag_id: str, run_id: str, *, max_log_chars: int = 6000) -> str:
        """Each task instance's state; for failed or stuck ones, their latest try's log from the API."""
        lines = []
        try:
            tis = self.task_instances(dag_id, run_id)
        except Exception as error:  # the report must never hide the original failure
            return f"(could not list task instances: {error})" + self._diagnostics()
        lines.append("Task instances: " + ", ".join(f"{ti['task_id']}={ti['state']}" for ti in tis))
        never_ran = {"upstream_failed", "removed", "skipped"}
        problem = [ti for ti in tis if ti["state"] in TI_PROBLEM_STATES - never_ran]
        stuck = [ti for ti in tis if ti["state"] in {"queued", "running", "deferred", "scheduled"}]
        for ti in problem + stuck:
            try_number = max(ti.get("try_number") or 1, 1)
            try:
                log = self.task_log(dag_id, run_id, ti["task_id"], try_number, ti.get("map_index", -1))
            except Exception as error:
                log = f"(log not available: {error})"
            if len(log) > max_log_chars:
                log = "...\n" + log[-max_log_chars:]
            lines.append(
                f"\n----- log of {ti['task_id']} (state {ti['state']}, try {try_number}) -----\n{log}\n"
                f"----- end of log of {ti['task_id']} -----"
            )
        if not problem and not [
            ti for ti in tis if ti["state"] == "upstream_failed"
        ]:  # nothing failed: something is stuck, so the components' own logs matter
            lines.append(self._diagnostics())
        return "\n".join(lines)

    def _diagnostics(self) -> str:
        if not self.diagnostics:
            return ""
        try:
            return "\n" + self.diagnostics()
        except Exception as error:
            return f"\n(diagnostics failed: {error})"


def render_log(content: list) -> str:
    """Airflow 3 structured log lines -> readable text, with exception details when a line carries them."""
    out = []
    for line in content:
        if isinstance(line, str):
            out.append(line)
            continue
        if not isinstance(line, dict):
            out.append(str(line))
            continue
        timestamp = line.get("timestamp") or ""
        level = line.get("level") or ""
        logger = line.get("logger") or ""
        prefix = " ".join(part for part in (timestamp, level.upper(), f"{logger}:" if logger else "") if part)
        text = f"{prefix} {line.get('event', '')}".strip()
        if line.get("sources"):  # the header that says where the log was read from
            text += " " + ", ".join(map(str, line["sources"]))
        out.append(text)
        for detail in line.get("error_detail") or []:
            frames = detail.get("frames") or []
            for frame in frames[-8:]:
                out.append(f"    {frame.get('filename')}:{frame.get('lineno')} in {frame.get('name')}")
            out.append(f"  {detail.get('exc_type')}: {detail.get('exc_value')}")
    return "\n".join(out)
