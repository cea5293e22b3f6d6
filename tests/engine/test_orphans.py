"""A crash leaves no process of a command step behind, and a retry never overlaps its first try."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import httpx2

from api.test_execute import execute, final, make_job
from conftest import Server, wait_for


def unique_sleep() -> str:
    """`sleep <seconds>` with seconds no other process on this host has in its arguments."""
    return f"sleep 300.{random.randrange(10**8, 10**9)}"


def orphans(marker: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    return out.stdout.split()


def children(pid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{name}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(name))
    return found


def reapers(worker_pids: list[int]) -> list[int]:
    """The reaper processes the given workers started."""
    found = []
    for worker in worker_pids:
        for pid in children(worker):
            with contextlib.suppress(OSError):
                if b"reaper.py" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(pid)
    return found


def kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def command(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "command", "config": {"command": script}, **extra}


def grandchildren(sleep: str) -> str:
    """Three processes under `sh -c`: two in the step's group, one in a session of its own."""
    return f"{sleep} & setsid {sleep} & {sleep}; wait"


def start_running(server: Server, project: str, **job: Any) -> tuple[httpx2.Client, str]:
    api = server.client()
    api.post("/api/v1/projects", json={"name": project})
    made = make_job(api, project, **job)
    run = execute(api, project, made["name"]).json()
    wait_for(lambda: api.get(f"/api/v1/executions/{run['id']}").json()["status"] == "running")
    return api, run["id"]


def status_when_gone(api: httpx2.Client, execution_id: str, sleep: str) -> dict[str, Any]:
    """Poll the run until it ends; every time it shows ended, its processes must be gone."""

    def ended() -> dict[str, Any] | None:
        body = api.get(f"/api/v1/executions/{execution_id}").json()
        if body["status"] in {"queued", "running", "cancelling"}:
            return None
        assert not orphans(sleep), f"{body['status']} while its processes still ran"
        return body

    return wait_for(ended, timeout=20, interval=0.02)  # type: ignore[no-any-return]


def worker_of(server: Server, execution_id: str) -> int:
    """The pid of the worker process that holds a running execution."""
    path = server.database_url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as db:
        row = db.execute("SELECT worker FROM executions WHERE id = ?", [execution_id])
        (worker,) = row.fetchone()
    return int(worker.rpartition(":")[2])


def test_after_kill_9_of_the_server_group_no_process_of_a_command_step_is_left(
    make_server: Any, tmp_path: Path
) -> None:
    """Its reaper kills them at once; if the reaper died too, the restart does, first."""
    server = make_server().start()
    api = server.client()
    api.post("/api/v1/projects", json={"name": "crash"})
    reaped, restarted = unique_sleep(), unique_sleep()
    lock, record = tmp_path / "lock", tmp_path / "starts"
    # Every process of the first attempt holds the lock (fd 9) until it dies; each attempt
    # records whether it could take the lock when it started.
    overlap_script = (
        f"exec 9>>{lock}; "
        f"if flock -n 9; then echo start $JOBPORT_ATTEMPT >> {record}; "
        f"else echo overlap $JOBPORT_ATTEMPT >> {record}; fi; "
        f'if [ "$JOBPORT_ATTEMPT" = 1 ]; then {grandchildren(restarted)}; fi'
    )
    job = make_job(api, "crash", steps=[command("nap", grandchildren(reaped))])
    retried = make_job(
        api, "crash", retries=1, retryDelaySeconds=0, steps=[command("nap", overlap_script)]
    )
    first = execute(api, "crash", job["name"]).json()["id"]
    second = execute(api, "crash", retried["name"]).json()["id"]
    wait_for(lambda: len(orphans(reaped)) == 4 and len(orphans(restarted)) == 4)
    kill(reapers([worker_of(server, second)]))
    api.close()

    server.kill()  # the server and its workers; not the steps: they have sessions of their own

    wait_for(lambda: not orphans(reaped), timeout=3)
    wait_for(lambda: len(orphans(restarted)) == 3)  # sh dies with its worker, its children not
    server.start()
    with server.client() as api:
        lost = status_when_gone(api, second, restarted)
        assert lost["error"]["code"] == "worker_lost"
        assert final(api, first)["error"]["code"] == "worker_lost"

        def retry() -> dict[str, Any] | None:
            runs = api.get("/api/v1/projects/crash/executions").json()["items"]
            again = next((r for r in runs if r["retryOf"] == second), None)
            return final(api, again["id"]) if again else None

        assert wait_for(retry, timeout=20)["status"] == "succeeded"
    assert record.read_text().split("\n") == ["start 1", "start 2", ""]


def test_when_one_worker_dies_its_run_is_worker_lost_only_once_its_processes_are_gone(
    server: Server,
) -> None:
    sleep = unique_sleep()
    api, run = start_running(server, "worker", steps=[command("nap", grandchildren(sleep))])
    wait_for(lambda: len(orphans(sleep)) == 4)

    worker = worker_of(server, run)
    kill(reapers([worker]))  # so that only the server can clean up
    kill([worker])

    lost = status_when_gone(api, run, sleep)
    assert lost["error"]["code"] == "worker_lost"
    # The executor's watch ("exited with code -9") or, under load, the sweep ("no longer
    # exists") sees the dead worker first; both kill its processes before concluding.
    message = lost["error"]["message"]
    assert "exited" in message or "no longer exists" in message, message
    api.close()


def test_cancel_kills_the_processes_that_left_the_step_s_process_group(server: Server) -> None:
    sleep = unique_sleep()
    api, run = start_running(
        server, "cancel", steps=[command("nap", f"setsid {sleep} & setsid -f {sleep}; wait")]
    )
    wait_for(lambda: len(orphans(sleep)) == 3)
    api.post(f"/api/v1/executions/{run}/cancel")
    assert final(api, run)["status"] == "cancelled"
    assert not orphans(sleep)
    api.close()
