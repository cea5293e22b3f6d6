"""Metrics and health as an operator meets them: /metrics scraped over HTTP (with a key that
holds `metrics:read`, or on JOBPORT_METRICS_BIND without one), /healthz and /readyz."""

from __future__ import annotations

import datetime as dt
import socket
import time
import uuid
from typing import Any

import httpx2
import pytest

from conftest import (
    Server,
    admin_key,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    scrape,
    value,
    wait_for,
)


def _job(api: httpx2.Client, project: str, command: str, **spec: Any) -> str:
    name = f"j-{uuid.uuid4().hex[:8]}"
    body = {
        "name": name,
        "steps": [{"name": "s", "kind": "command", "config": {"command": command}}],
        **spec,
    }
    response = api.post(f"/api/v1/projects/{project}/jobs", json=body)
    assert response.status_code == 201, response.text
    return name


def _project(api: httpx2.Client) -> str:
    name = f"p-{uuid.uuid4().hex[:8]}"
    assert api.post("/api/v1/projects", json={"name": name}).status_code == 201
    return name


def _key_with(api: httpx2.Client, scopes: list[str]) -> str:
    """A new API key holding only `scopes` (through an application role of its own)."""
    role = f"r-{uuid.uuid4().hex[:8]}"
    assert api.post("/api/v1/roles", json={"name": role, "scopes": scopes}).status_code == 201
    response = api.post("/api/v1/keys", json={"description": "metrics", "roles": [{"role": role}]})
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


def test_metrics_need_the_metrics_read_scope_and_count_refusals(make_server: Any) -> None:
    server: Server = make_server().start()
    with server.client() as api:
        before = scrape(api)
        with server.client(anonymous=True) as anonymous:
            refused = anonymous.get("/metrics")
        assert refused.status_code == 401
        assert refused.json()["error"] == "missing_credentials"

        viewer = admin_key(server.database_url, role="Viewer")
        with server.client(anonymous=True, headers={"Authorization": f"Bearer {viewer}"}) as c:
            refused = c.get("/metrics")
        assert refused.status_code == 403
        assert refused.json()["error"] == "insufficient_scope"

        wrong = viewer[:-6] + ("A" if viewer[-6] != "A" else "B") + viewer[-5:]
        with server.client(anonymous=True, headers={"Authorization": f"Bearer {wrong}"}) as c:
            assert c.get("/api/v1/projects").status_code == 401

        # A key whose only right is metrics:read scrapes, and sees the refusals counted.
        scraper = _key_with(api, ["metrics:read"])
        with server.client(anonymous=True, headers={"Authorization": f"Bearer {scraper}"}) as c:
            after = scrape(c)
            assert c.get("/api/v1/keys").status_code == 403  # and nothing else
    failures = "jobport_auth_failures_total"
    for reason in ("missing_credentials", "insufficient_scope", "invalid_credentials"):
        grown = value(after, failures, reason=reason) - value(before, failures, reason=reason)
        assert grown == 1, (reason, after.get(failures))


def test_runs_are_counted_by_job_and_status_from_the_worker_processes(make_server: Any) -> None:
    server: Server = make_server().start()
    with server.client() as api:
        project = _project(api)
        good, bad = _job(api, project, "true"), _job(api, project, "false")
        for job, status in ((good, "succeeded"), (bad, "failed")):
            run = api.post(f"/api/v1/projects/{project}/jobs/{job}/execute?wait=30").json()
            assert run["status"] == status, run
        # The runs ran in worker processes forked from the fork server: what they counted is
        # in the scrape of the API process.
        samples = wait_for(
            lambda: (
                (s := scrape(api))
                and value(s, "jobport_runs_finished_total", project=project) == 2
                and s
            )
        )
    for job, status in ((good, "succeeded"), (bad, "failed")):
        labels = {"project": project, "job": job}
        assert value(samples, "jobport_runs_started_total", **labels) == 1
        assert value(samples, "jobport_runs_finished_total", **labels, status=status) == 1
        assert value(samples, "jobport_runs_finished_total", **labels) == 1
        assert value(samples, "jobport_run_duration_seconds_count", **labels) == 1
        assert value(samples, "jobport_run_duration_seconds_bucket", **labels, le="+Inf") == 1
    assert value(samples, "jobport_run_queue_wait_seconds_count") == 2
    assert value(samples, "jobport_run_queue_wait_seconds_bucket", le="+Inf") == 2


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_queue_depth_and_running_are_read_from_the_database(
    make_server: Any, database: str
) -> None:
    # The queue is read from the runs' JSON spec by the database: both stores' JSON.
    url = create_postgres_database() if database == "postgresql" else None
    try:
        _queue_gauges(make_server(url, workers=1).start())
    finally:
        if url is not None:
            drop_postgres_database(url)


def _queue_gauges(server: Server) -> None:
    with server.client() as api:
        project = _project(api)
        sleeper = _job(api, project, "sleep 30", queue="batch")
        # A failed run whose retry waits an hour: queued, but not due, so not in the depth.
        later = _job(api, project, "false", retries=1, retryDelaySeconds=3600)
        run = api.post(f"/api/v1/projects/{project}/jobs/{later}/execute?wait=30").json()
        assert run["status"] == "failed"
        runs = [
            api.post(f"/api/v1/projects/{project}/jobs/{sleeper}/execute").json()["id"]
            for _ in range(2)
        ]

        def one_runs_one_waits() -> dict[str, list[Any]] | None:
            s = scrape(api)
            running = value(s, "jobport_runs_running", queue="batch")
            return s if running == 1 and value(s, "jobport_queue_depth", queue="batch") else None

        samples = wait_for(one_runs_one_waits)
        assert value(samples, "jobport_queue_depth", queue="batch") == 1
        assert value(samples, "jobport_queue_depth", queue="default") == 0
        assert value(samples, "jobport_runs_running", queue="default") == 0
        for run_id in runs:
            api.post(f"/api/v1/executions/{run_id}/cancel")
        samples = wait_for(
            lambda: (
                (s := scrape(api)) and value(s, "jobport_runs_running", queue="batch") == 0 and s
            )
        )
        assert value(samples, "jobport_queue_depth", queue="batch") == 0


def test_schedule_fires_and_their_lag_are_counted(make_server: Any) -> None:
    server: Server = make_server().start()
    with server.client() as api:
        project = _project(api)
        job = f"/api/v1/projects/{project}/jobs/{_job(api, project, 'true')}"
        before = scrape(api)
        soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
        body = {"runAt": soon.strftime("%Y-%m-%dT%H:%M:%S"), "overlapPolicy": "allow"}
        assert api.put(f"{job}/schedules/once", json=body).status_code == 201
        # Counted once its fire is committed, by the scheduler in the API's process.
        after_fire = wait_for(
            lambda: (s := scrape(api)) and value(s, "jobport_scheduler_fires_total") and s,
            timeout=20,
        )
        assert api.post(f"{job}/schedules/once/trigger").status_code == 201
        after_trigger = scrape(api)
    fires, lag = "jobport_scheduler_fires_total", "jobport_scheduler_lag_seconds"
    assert value(after_fire, fires) - value(before, fires) == 1
    assert value(after_fire, lag + "_count") - value(before, lag + "_count") == 1
    # Fired by the scheduler within its poll: late by well under the poll interval.
    assert (
        value(after_fire, lag + "_bucket", le="5.0") - value(before, lag + "_bucket", le="5.0") == 1
    )
    assert value(after_trigger, fires) - value(after_fire, fires) == 1


def test_the_metrics_bind_serves_them_without_a_key(make_server: Any) -> None:
    port = free_port()
    server: Server = make_server(metrics_bind=f"127.0.0.1:{port}").start()
    with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as open_client:
        samples = scrape(open_client)
    assert value(samples, "jobport_queue_depth", queue="default") == 0
    assert "jobport_scheduler_fires_total" in samples
    with server.client(anonymous=True) as anonymous:  # the API's own /metrics still asks
        assert anonymous.get("/metrics").status_code == 401


def test_a_bind_that_is_not_host_and_port_stops_the_server_with_a_message(
    make_server: Any,
) -> None:
    server: Server = make_server(metrics_bind="9100")
    try:
        server.start()
    except RuntimeError:
        pass
    else:  # pragma: no cover - the assertion below says what went wrong
        raise AssertionError("the server started with JOBPORT_METRICS_BIND=9100")
    assert "JOBPORT_METRICS_BIND: '9100' is not host:port" in server.log()


def test_healthz_is_alive_and_readyz_fails_when_the_database_is_gone(make_server: Any) -> None:
    url = create_postgres_database()
    try:
        server: Server = make_server(url).start()
        with server.client(anonymous=True) as anonymous:
            ready = anonymous.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json() == {
                "status": "ready",
                "checks": {"database": "ok", "broker": "not used"},
            }
            drop_postgres_database(url)
            refused = anonymous.get("/readyz")
            assert refused.status_code == 503, refused.text
            body = refused.json()
            assert body["error"] == "not_ready"
            assert body["message"].startswith("not ready: database: ")
            assert body["details"]["checks"]["broker"] == "not used"
            assert body["details"]["checks"]["database"] not in ("ok", "")
            alive = anonymous.get("/healthz")
            assert alive.status_code == 200 and alive.json()["status"] == "ok"
    finally:
        drop_postgres_database(url)


def test_readyz_gives_up_on_a_broker_that_never_answers(make_server: Any) -> None:
    # A broker address that accepts connections and never says a word: the worst case.
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(16)
        port = mute.getsockname()[1]
        server: Server = make_server(
            executor="celery", broker_url=f"redis://127.0.0.1:{port}/0"
        ).start()
        with server.client(anonymous=True) as anonymous:
            for _ in range(2):  # the second while the first check still hangs
                started = time.monotonic()
                refused = anonymous.get("/readyz")
                assert time.monotonic() - started < 4
                assert refused.status_code == 503, refused.text
                checks = refused.json()["details"]["checks"]
                assert checks["database"] == "ok"
                assert checks["broker"] not in ("ok", "not used")
            assert anonymous.get("/healthz").status_code == 200
