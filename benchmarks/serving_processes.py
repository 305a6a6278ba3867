"""The processes of ``bench_serving.py``: servers (started and stopped as the tests do, ``tests/support/services``)
waited for over HTTP, and what their child processes do on the CPUs (``BackgroundCpu``, read from ``/proc``)."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.services import ManagedProcess, free_port, launch_process  # noqa: E402

__all__ = ["BackgroundCpu", "ManagedProcess", "free_port", "post_json", "start_service", "wait_ready"]


def http_status(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def start_service(name: str, command: list[str], folder: Path, url: str, env: dict[str, str]) -> ManagedProcess:
    """Start ``command`` in its own session, ended with this benchmark even if it is killed (not waiting for it to
    be ready: see ``wait_ready``)."""
    return launch_process(name, command, folder, url=url, env=env, die_with_parent=True)


def wait_ready(service: ManagedProcess, path: str, timeout: float = 180.0) -> float:
    """Seconds from the start of ``service`` until ``GET path`` answers 200; raises with the log's tail if the
    process exits or does not answer within ``timeout`` seconds of its start."""
    started = service.started
    while time.monotonic() - started < timeout:
        if service.popen.poll() is not None:
            raise RuntimeError(f"{service.name} exited with code {service.popen.returncode}:\n{service.log_tail()}")
        if http_status(service.url + path) == 200:
            return time.monotonic() - started
        time.sleep(0.2)
    raise RuntimeError(f"{service.name} did not answer 200 on {path} within {timeout:.0f} s:\n{service.log_tail()}")


def post_json(url: str, body: dict | None = None, timeout: float = 60.0) -> dict:
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


class BackgroundCpu:
    """Whether a server's child processes (the shadow process, the journal's converter) ran on a CPU between two
    looks: one of their threads' run time (``/proc/<pid>/task/<tid>/schedstat``, nanoseconds) moved, or one was
    running at either look (a running thread's run time is brought up to date only at the scheduler's ticks)."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.pids: list[int] = []
        self.rescan()

    def rescan(self) -> None:
        """Find the children again (the converter starts with the first conversion); at least the shadow process
        (idle scheduling policy, or ``nice`` 10 where that is refused) must be among them."""
        children = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and _stat_fields(f"/proc/{entry}/stat")[1:2] == [str(self.server_pid)]:
                children.append(int(entry))
        if not any(_is_shadow_process(pid) for pid in children):
            raise RuntimeError(f"no shadow process (SCHED_IDLE or nice 10) among the children of {self.server_pid}")
        self.pids = children

    def look(self) -> tuple[int, bool]:
        """The children's threads' summed run time and whether one of them is running now."""
        total, running = 0, False
        for pid in self.pids:
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:  # a child that ended
                continue
            for tid in tids:
                try:
                    total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
                    running = running or _stat_fields(f"/proc/{pid}/task/{tid}/stat")[:1] == ["R"]
                except (OSError, ValueError, IndexError):  # a thread that ended meanwhile
                    continue
        return total, running

    @staticmethod
    def ran(before: tuple[int, bool], after: tuple[int, bool]) -> bool:
        return before[0] != after[0] or before[1] or after[1]


def _stat_fields(path: str) -> list[str]:
    """The fields of a ``/proc/.../stat`` file after the command name (state, parent pid, ...); [] if it is gone."""
    try:
        stat = Path(path).read_text()
    except OSError:
        return []
    return stat[stat.rindex(")") + 2 :].split()


def _is_shadow_process(pid: int) -> bool:
    try:
        return os.sched_getscheduler(pid) == os.SCHED_IDLE or _stat_fields(f"/proc/{pid}/stat")[16:17] == ["10"]
    except OSError:
        return False
