"""After a crash (kill -9 of the server), nothing the API accepted is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from typing import Any

from api.test_execute import execute, final, make_job, sh
from conftest import wait_for


def orphans(marker: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    return out.stdout.split()


def test_kill_9_of_the_server_fails_running_runs_as_worker_lost_and_runs_queued_ones(
    make_server: Any,
) -> None:
    server = make_server().start()
    api = server.client()
    api.post("/api/v1/projects", json={"name": "crash"})
    marker = f"{uuid.uuid4().hex[:12]}"
    job = make_job(api, "crash", maxConcurrent=1, steps=[sh("sleep", f"sleep 60 # {marker}")])
    retried = make_job(
        api,
        "crash",
        retries=1,
        retryDelaySeconds=0,
        steps=[sh("sleep", f"sleep {{{{ 60 if execution.attempt == 1 else 0 }}}} # {marker}")],
    )
    running = execute(api, "crash", job["name"]).json()
    queued = execute(api, "crash", job["name"]).json()
    lost_then_retried = execute(api, "crash", retried["name"]).json()
    wait_for(lambda: api.get(f"/api/v1/executions/{running['id']}").json()["status"] == "running")
    wait_for(
        lambda: (
            api.get(f"/api/v1/executions/{lost_then_retried['id']}").json()["status"] == "running"
        )
    )
    assert api.get(f"/api/v1/executions/{queued['id']}").json()["status"] == "queued"
    api.close()

    os.kill(server.proc.pid, signal.SIGKILL)  # only the server: workers must follow it
    server.proc.wait(10)
    server.proc = None
    wait_for(lambda: not orphans(marker), timeout=10)

    server.start()
    api = server.client()
    lost = final(api, running["id"], timeout=30)
    assert lost["status"] == "failed"
    assert lost["error"]["code"] == "worker_lost"
    # The run held back by maxConcurrent starts once the lost one is concluded.
    wait_for(
        lambda: api.get(f"/api/v1/executions/{queued['id']}").json()["status"] == "running",
        timeout=30,
    )
    api.post(f"/api/v1/executions/{queued['id']}/cancel")
    assert final(api, queued["id"])["status"] == "cancelled"
    assert final(api, lost_then_retried["id"])["error"]["code"] == "worker_lost"

    def retry_succeeded() -> bool:
        runs = api.get("/api/v1/projects/crash/executions", params={"job": retried["name"]}).json()[
            "items"
        ]
        return len(runs) == 2 and runs[0]["status"] == "succeeded"

    wait_for(retry_succeeded, timeout=30)
    api.close()


def test_every_accepted_execution_ends_even_if_the_server_dies_mid_burst(
    make_server: Any,
) -> None:
    server = make_server().start()
    api = server.client()
    api.post("/api/v1/projects", json={"name": "burst"})
    job = make_job(api, "burst", retries=3, retryDelaySeconds=0, steps=[sh("nap", "sleep 0.2")])
    accepted = [execute(api, "burst", job["name"]).json()["id"] for _ in range(40)]
    api.close()
    server.kill()  # the whole process group, at once

    server.start()
    api = server.client()

    def all_ended() -> bool:
        runs, cursor = [], None
        while True:
            params: dict[str, Any] = {"limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = api.get("/api/v1/projects/burst/executions", params=params).json()
            runs += page["items"]
            cursor = page["nextCursor"]
            if not cursor:
                break
        by_id = {r["id"]: r for r in runs}
        if not all(by_id[i]["status"] in {"succeeded", "failed"} for i in accepted):
            return False
        # Every accepted run succeeded, or failed as worker_lost and its retry succeeded.
        retry_of = {r["retryOf"]: r for r in runs if r["retryOf"]}
        for execution_id in accepted:
            run = by_id[execution_id]
            while run["status"] == "failed" and run["id"] in retry_of:
                run = retry_of[run["id"]]
            if run["status"] != "succeeded":
                return False
        return True

    wait_for(all_ended, timeout=60, interval=0.5)
    api.close()


def test_a_clean_shutdown_concludes_the_runs_it_interrupts(make_server: Any) -> None:
    server = make_server(heartbeat_timeout=600).start()
    api = server.client()
    api.post("/api/v1/projects", json={"name": "stop"})
    job = make_job(api, "stop", steps=[sh("sleep", "sleep 60")])
    run = execute(api, "stop", job["name"]).json()
    wait_for(lambda: api.get(f"/api/v1/executions/{run['id']}").json()["status"] == "running")
    api.close()
    server.stop()  # SIGINT: the server stops its workers, waiting a few seconds for them

    server.start()
    with server.client() as api:
        body = api.get(f"/api/v1/executions/{run['id']}").json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "worker_lost"
    assert "shut down" in body["error"]["message"]


def test_restart_does_not_wait_for_the_heartbeat_timeout_when_the_worker_is_gone(
    make_server: Any,
) -> None:
    server = make_server(heartbeat_timeout=600).start()
    api = server.client()
    api.post("/api/v1/projects", json={"name": "quick"})
    job = make_job(api, "quick", steps=[sh("sleep", "sleep 60")])
    run = execute(api, "quick", job["name"]).json()
    wait_for(lambda: api.get(f"/api/v1/executions/{run['id']}").json()["status"] == "running")
    api.close()
    server.kill()

    server.start()
    with server.client() as api:
        lost = final(api, run["id"], timeout=10)
    assert lost["error"]["code"] == "worker_lost"
    assert "no longer exists" in lost["error"]["message"]
