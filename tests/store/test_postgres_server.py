"""A real `jobport serve` on PostgreSQL: migrate on start, run a job to its result, read logs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_a_server_on_postgresql_runs_a_job_and_serves_its_result_and_logs(
    new_postgres_database: Callable[[], str], make_server: Any
) -> None:
    server = make_server(new_postgres_database()).start()
    with server.client() as api:
        response = api.post("/api/v1/projects", json={"name": "pg-demo"})
        assert response.status_code == 201, response.text
        job = {
            "name": "two-steps",
            "steps": [
                {"name": "greet", "kind": "command", "config": {"command": "echo hi"}},
                {
                    "name": "rows",
                    "kind": "python",
                    "needs": ["greet"],
                    "config": {"callable": "fixtures_steps:records", "kwargs": {"n": 2}},
                },
            ],
        }
        response = api.post("/api/v1/projects/pg-demo/jobs", json=job)
        assert response.status_code == 201, response.text

        response = api.post(
            "/api/v1/projects/pg-demo/jobs/two-steps/execute", params={"wait": 30}, json={}
        )
        assert response.status_code == 200, response.text
        execution = response.json()
        assert execution["status"] == "succeeded", execution
        assert [s["status"] for s in execution["steps"]] == ["succeeded", "succeeded"]
        assert execution["result"] == {
            "schema": [
                {"name": "id", "type": "integer"},
                {"name": "name", "type": "string"},
                {"name": "score", "type": "number"},
                {"name": "ok", "type": "boolean"},
            ],
            "records": [
                {"id": 0, "name": "row 0", "score": 0.0, "ok": True},
                {"id": 1, "name": "row 1", "score": 1.5, "ok": False},
            ],
        }

        logs = api.get(f"/api/v1/executions/{execution['id']}/logs")
        assert logs.status_code == 200, logs.text
        body = logs.json()
        assert body["status"] == "succeeded" and body["finished"] is True
        stdout = [(ln["step"], ln["text"]) for ln in body["items"] if ln["stream"] == "stdout"]
        assert ("greet", "hi") in stdout
        seqs = [ln["seq"] for ln in body["items"]]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

        listed = api.get("/api/v1/projects/pg-demo/jobs").json()["items"]
        assert [j["lastExecution"]["id"] for j in listed] == [execution["id"]]
    server.kill()  # a graceful stop takes seconds and is not what this test is about
