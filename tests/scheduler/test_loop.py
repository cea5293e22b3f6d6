"""The loop with the real clock: it sleeps until the next fire, wakes on a change, and runs
on its own as `jobport scheduler` beside a server that does not schedule."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conftest import wait_for
from jobport.scheduler import Scheduler
from jobport.services import schedules as schedule_service
from jobport.services.runtime import Runtime

from .conftest import Harness, make_runtime


def local_in(seconds: float) -> str:
    """runAt (UTC wall time) `seconds` from now, to the microsecond."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).isoformat()[:26]


def test_the_loop_sleeps_until_the_next_fire_and_wakes_on_a_change(tmp_path: Path) -> None:
    # A poll far longer than the test: only the change notice and the fire time wake it.
    rt = make_runtime(tmp_path, scheduler_poll_seconds=300)
    h = _harness(rt)
    scheduler = Scheduler(rt)
    scheduler.start()
    try:
        time.sleep(0.2)  # asleep now, for up to 300 s
        put_now(h, "once", runAt=local_in(1.0))
        put_now(h, "later", runAt=local_in(2.0))
        fires = wait_for(lambda: len(h.fires()) == 2 and h.fires(), timeout=10)
    finally:
        scheduler.stop()
    for fire in fires:
        lag = (fire["recorded_at"] - fire["fire_at"]).total_seconds()
        assert 0 <= lag < 0.5, fire
    rt.db.dispose()


def _harness(rt: Runtime) -> Harness:
    from store.rows import add_job, add_project

    with rt.db.write() as conn:
        project = add_project(conn)
        job = add_job(conn, project)
    return Harness(rt, job, project)


def put_now(h: Harness, name: str, **body: Any) -> None:
    """Define a schedule at the real time (the harness's put uses its fake clock)."""
    schedule_service.put(h.rt, h.project["id"], h.job["id"], name, body)


def test_jobport_scheduler_fires_into_a_server_that_does_not_schedule(
    make_server: Any, tmp_path: Path
) -> None:
    server = make_server(scheduler_enabled="false").start()
    env = {
        **os.environ,
        "JOBPORT_DATABASE_URL": server.database_url,
        "JOBPORT_SCHEDULER_POLL_SECONDS": "0.5",
    }
    log = (tmp_path / "scheduler.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobport.cli", "scheduler", "--log-level", "warning"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        with server.client() as api:
            project = api.post("/api/v1/projects", json={"name": "p"}).json()["name"]
            jobs = f"/api/v1/projects/{project}/jobs"
            step = {"name": "a", "kind": "command", "config": {"command": "echo hi"}}
            assert api.post(jobs, json={"name": "j", "steps": [step]}).status_code == 201
            body = {"runAt": local_in(1.5)[:19]}
            assert api.put(f"{jobs}/j/schedules/once", json=body).status_code == 201
            execution_id = wait_for(
                lambda: [
                    f["executionId"]
                    for f in api.get(f"{jobs}/j/schedules/once/fires").json()["items"]
                ],
                timeout=20,
            )[0]
            run = wait_for(
                lambda: (
                    (e := api.get(f"/api/v1/executions/{execution_id}").json())["status"]
                    == "succeeded"
                    and e
                ),
                timeout=20,
            )
        assert run["trigger"] == "schedule"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, (tmp_path / "scheduler.log").read_text()
