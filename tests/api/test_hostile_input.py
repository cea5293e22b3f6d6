"""Hostile input, on SQLite and PostgreSQL alike: a 4xx JSON error, nothing stored, and no
value a run produces can make a later read fail."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from sqlalchemy import select

from conftest import Server, create_postgres_database, drop_postgres_database
from jobport.store.db import Database
from jobport.store.tables import metadata

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
P = "/api/v1/projects/hostile"
JSON = {"content-type": "application/json"}
_VOLATILE = {"api_keys": {"last_used_at", "last_used_ip"}, "executions": {"heartbeat_at"}}


@pytest.fixture(scope="module", params=BACKENDS)
def hostile(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("hostile")
    url = (
        f"sqlite:///{workdir / 'jobport.db'}"
        if request.param == "sqlite"
        else create_postgres_database()
    )
    server = Server(url, workdir).start()
    with server.client() as api:
        assert api.post("/api/v1/projects", json={"name": "hostile"}).status_code == 201
        job = {
            "name": "echo",
            "parameters": {"who": "world"},
            "steps": [
                {"name": "say", "kind": "command", "config": {"command": "echo {{ params.who }}"}}
            ],
        }
        assert api.post(f"{P}/jobs", json=job).status_code == 201
    try:
        yield server
    finally:
        server.kill()
        if request.param != "sqlite":
            drop_postgres_database(url)


def digest(server: Server) -> str:
    """Every stored row but the audit log's and the marks a read leaves behind."""
    db = Database(server.database_url, pool=False)
    hashed = hashlib.sha256()
    try:
        with db.read() as conn:
            for table in metadata.sorted_tables:
                if table.name == "audit_log":
                    continue
                columns = [c for c in table.c if c.name not in _VOLATILE.get(table.name, set())]
                for row in conn.execute(select(*columns).order_by(*table.primary_key.columns)):
                    hashed.update(repr((table.name, tuple(row))).encode())
    finally:
        db.dispose()
    return hashed.hexdigest()


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


# (name, method, path, request kwargs, status, error code)
CASES: list[tuple[str, str, str, dict[str, Any], int, str]] = [
    (
        "lone surrogate in a parameter",
        "POST",
        f"{P}/jobs/echo/execute",
        {"content": b'{"parameters": {"who": "\\udc00x"}}'},
        422,
        "invalid_request",
    ),
    (
        "lone surrogate in a key",
        "POST",
        f"{P}/jobs/echo/execute",
        {"content": b'{"parameters": {"\\ud800": "x"}}'},
        422,
        "invalid_request",
    ),
    (
        "NaN",
        "POST",
        f"{P}/jobs/echo/execute",
        {"content": b'{"parameters": {"who": NaN}}'},
        400,
        "invalid_json",
    ),
    (
        "Infinity",
        "POST",
        f"{P}/jobs/echo/execute",
        {"content": b'{"parameters": {"who": -Infinity}}'},
        400,
        "invalid_json",
    ),
    (
        "a number too large for a float",
        "POST",
        f"{P}/jobs/echo/execute",
        {"content": b'{"parameters": {"who": 1e999}}'},
        400,
        "invalid_json",
    ),
    (
        "parameters nested 900 deep",
        "POST",
        f"{P}/jobs/echo/execute",
        {"content": b'{"parameters": {"who": ' + deep(900).encode() + b"}}"},
        400,
        "invalid_json",
    ),
    (
        "nesting past Python's recursion limit",
        "POST",
        f"{P}/jobs/echo/execute",
        {"content": b'{"parameters": {"who": ' + deep(100_000).encode() + b"}}"},
        400,
        "invalid_json",
    ),
    (
        "a step config nested 900 deep",
        "POST",
        f"{P}/jobs",
        {
            "content": json.dumps(
                {
                    "name": "deep",
                    "steps": [
                        {
                            "name": "a",
                            "kind": "python",
                            "config": {"callable": "a:b", "kwargs": {"x": "X"}},
                        }
                    ],
                }
            )
            .replace('"X"', deep(900))
            .encode()
        },
        400,
        "invalid_json",
    ),
    (
        "invalid UTF-8",
        "POST",
        f"{P}/jobs/echo/execute",
        {"content": b'{"parameters": {"who": "\xff\xfe"}}'},
        400,
        "invalid_json",
    ),
    (
        "not JSON",
        "POST",
        f"{P}/jobs/echo/execute",
        {"content": b'{"parameters":'},
        400,
        "invalid_json",
    ),
    ("NUL in a path", "GET", "/api/v1/projects/a%00b", {}, 422, "invalid_request"),
    ("NUL in a query", "GET", f"{P}/executions?job=a%00b", {}, 422, "invalid_request"),
    (
        "NUL in a description",
        "POST",
        "/api/v1/projects",
        {"content": b'{"name": "nul", "description": "a\\u0000b"}'},
        422,
        "invalid_request",
    ),
    (
        "NUL in a parameter",
        "POST",
        f"{P}/jobs/echo/execute",
        {"content": b'{"parameters": {"who": "a\\u0000b"}}'},
        422,
        "invalid_request",
    ),
    (
        "NUL in a username",
        "POST",
        "/api/v1/session",
        {"content": b'{"username": "ad\\u0000min", "password": "whatever"}'},
        422,
        "invalid_request",
    ),
    (
        "NUL in a form",
        "POST",
        "/connect/token",
        {
            "content": b"grant_type=client_credentials&client_id=a%00b&client_secret=x",
            "headers": {"content-type": "application/x-www-form-urlencoded"},
        },
        422,
        "invalid_request",
    ),
    (
        "a date before year 1 in UTC",
        "GET",
        f"{P}/executions?createdAfter=0001-01-01T00:00:00%2B14:00",
        {},
        422,
        "invalid_request",
    ),
    (
        "a date after year 9999 in UTC",
        "GET",
        f"{P}/executions?createdAfter=9999-12-31T23:59:59-14:00",
        {},
        422,
        "invalid_request",
    ),
    (
        "an audit date out of range",
        "GET",
        "/api/v1/audit?since=0001-01-01T00:00:00%2B14:00",
        {},
        422,
        "invalid_request",
    ),
    (
        "a key expiry out of range",
        "POST",
        "/api/v1/keys",
        {"json": {"expiresAt": "9999-12-31T23:59:59-14:00"}},
        422,
        "invalid_request",
    ),
    (
        "a date-time given as a number",
        "GET",
        f"{P}/executions?createdBefore=0.5",
        {},
        422,
        "invalid_request",
    ),
    (
        "a boolean where a count goes",
        "POST",
        f"{P}/jobs",
        {
            "json": {
                "name": "lax",
                "retries": True,
                "steps": [{"name": "a", "kind": "command", "config": {"command": "true"}}],
            }
        },
        422,
        "invalid_job",
    ),
    (
        "a string where seconds go",
        "POST",
        f"{P}/jobs",
        {
            "json": {
                "name": "lax",
                "steps": [
                    {
                        "name": "a",
                        "kind": "command",
                        "timeoutSeconds": "30",
                        "config": {"command": "true"},
                    }
                ],
            }
        },
        422,
        "invalid_job",
    ),
    (
        "a number where a flag goes",
        "POST",
        "/api/v1/keys",
        {
            "json": {
                "firewallRules": [
                    {"name": "r", "startIp": "10.0.0.1", "endIp": "10.0.0.2", "enabled": 0}
                ]
            }
        },
        422,
        "invalid_firewall_rule",
    ),
    (
        "a log cursor past 64 bits",
        "GET",
        "/api/v1/executions/x/logs?after=99999999999999999999",
        {},
        422,
        "invalid_request",
    ),
    (
        "an over-long description",
        "POST",
        "/api/v1/projects",
        {"json": {"name": "long", "description": "x" * 10_001}},
        422,
        "invalid_request",
    ),
    (
        "an over-long job description",
        "POST",
        f"{P}/jobs",
        {
            "json": {
                "name": "long",
                "description": "x" * 10_001,
                "steps": [{"name": "a", "kind": "command", "config": {"command": "true"}}],
            }
        },
        422,
        "invalid_job",
    ),
    (
        "an over-long name",
        "POST",
        "/api/v1/projects",
        {"json": {"name": "x" * 201}},
        422,
        "invalid_request",
    ),
    (
        "an over-long idempotency key",
        "POST",
        f"{P}/jobs/echo/execute",
        {"headers": {"Idempotency-Key": "k" * 201}},
        422,
        "invalid_request",
    ),
    (
        "a body over the limit",
        "POST",
        "/api/v1/projects",
        {"json": {"name": "big", "description": "x" * 2_000_000}},
        413,
        "payload_too_large",
    ),
]


@pytest.mark.parametrize(
    ("case", "method", "path", "kwargs", "status", "code"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input_is_a_json_4xx_and_stores_nothing(
    hostile: Server,
    case: str,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    before = digest(hostile)
    headers = {**hostile.auth, **JSON, **kwargs.get("headers", {})}
    rest = {k: v for k, v in kwargs.items() if k != "headers"}
    response = httpx2.request(method, hostile.url + path, headers=headers, timeout=30, **rest)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message", "details"} and body["error"] == code, body
    assert body["message"]
    assert digest(hostile) == before, f"{case}: something was stored"


def chunks(size: int) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        yield b"x" * 65536
        sent += 65536


def test_a_chunked_body_over_the_limit_is_a_413_without_a_content_length(hostile: Server) -> None:
    response = httpx2.post(
        f"{hostile.url}{P}/jobs/echo/execute",
        content=chunks(2_000_000),
        headers={**hostile.auth, **JSON},
        timeout=30,
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "payload_too_large"


def test_what_a_run_produces_is_stored_cleanly_and_every_read_works(hostile: Server) -> None:
    """NaN, lone surrogates, NUL characters and non-JSON values from a step's result and its
    output: the run succeeds and every read of it, and of the lists holding it, is a 200."""
    with hostile.client() as api:
        job = {
            "name": "unstorable",
            "steps": [
                {
                    "name": "say",
                    "kind": "command",
                    "config": {"command": "printf 'NUL \\000 bad UTF-8 \\377 end\\n'"},
                },
                {
                    "name": "rows",
                    "kind": "python",
                    "needs": ["say"],
                    "config": {"callable": "fixtures_steps:unstorable"},
                },
            ],
        }
        assert api.post(f"{P}/jobs", json=job).status_code == 201
        run = api.post(f"{P}/jobs/unstorable/execute", params={"wait": 30}).json()
        assert run["status"] == "succeeded", run
        assert run["result"] == {
            "nan": None,
            "inf": None,
            "text": "lone \ufffd and NUL \ufffd",
            "when": "2026-11-30 00:00:00",
            "tuple": [1, 2],
        }
        reads = [
            f"/api/v1/executions/{run['id']}",
            f"/api/v1/executions/{run['id']}/result",
            f"/api/v1/executions/{run['id']}/logs",
            f"{P}/executions",
            f"{P}/jobs",
            f"{P}/jobs/unstorable",
        ]
        for path in reads:
            response = api.get(path)
            assert response.status_code == 200, (path, response.text)
        texts = [line["text"] for line in api.get(reads[2]).json()["items"]]
        assert "NUL \ufffd bad UTF-8 \ufffd end" in texts
        assert "a lone \ufffd surrogate and a NUL \ufffd here" in texts


def test_a_row_stored_before_input_was_checked_still_reads(make_server: Any) -> None:
    """Older versions stored lone surrogates and NaN (SQLite keeps both; PostgreSQL never
    could): the reads that failed with 500 until the row was removed by hand now answer."""
    import sqlite3

    server = make_server().start()
    with server.client() as api:
        assert api.post("/api/v1/projects", json={"name": "old"}).status_code == 201
        job = {
            "name": "j",
            "steps": [{"name": "a", "kind": "command", "config": {"command": "true"}}],
        }
        assert api.post("/api/v1/projects/old/jobs", json=job).status_code == 201
        run = api.post("/api/v1/projects/old/jobs/j/execute", params={"wait": 30}).json()
        path = server.database_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as db:
            db.execute(
                "UPDATE executions SET parameters = ?, result = ? WHERE id = ?",
                ('{"who": "\\udc00x"}', '{"x": NaN}', run["id"]),
            )
        one = api.get(f"/api/v1/executions/{run['id']}")
        assert one.status_code == 200, one.text
        assert one.json()["parameters"] == {"who": "\ufffdx"}
        assert one.json()["result"] == {"x": None}
        assert api.get("/api/v1/projects/old/executions").status_code == 200
    server.kill()
