"""Testing a connection (POST .../connections/{c}/test) through the real server, whose own
database is SQLite or PostgreSQL: a SQLite file, PostgreSQL, MariaDB and an HTTP service
answer; a closed port, a missing file and a 5xx do not, and say why without a secret."""

from __future__ import annotations

import contextlib
import http.server
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from api.connections_support import (
    BACKENDS,
    MASK,
    PASSWORD,
    SECRETS,
    TOKEN,
    Answers,
    assert_no_secret_anywhere,
    base,
    new_project,
    pg_url,
    serve,
)
from conftest import PG_ADMIN_URL, Server, free_port, service_missing

ANSWERS = Answers()


@pytest.fixture(scope="module", params=BACKENDS)
def probe_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    yield from serve(request.param, tmp_path_factory)


@pytest.fixture
def api(probe_server: Server) -> Iterator[httpx2.Client]:
    with ANSWERS.client(probe_server) as client:
        yield client


@pytest.fixture
def project(api: httpx2.Client) -> str:
    return new_project(api)


def probe_of(api: httpx2.Client, project: str, name: str, url: str, **extra: Any) -> dict[str, Any]:
    """Define the connection, test it, and return the test's answer (which never holds a
    secret)."""
    made = api.post(base(project), json={"name": name, "url": url, **extra})
    assert made.status_code == 201, made.text
    response = api.post(f"{base(project)}/{name}/test")
    assert response.status_code == 200, response.text
    result = response.json()
    assert set(result) == {"ok", "kind", "elapsedMs", "message"}
    assert isinstance(result["elapsedMs"], int) and result["elapsedMs"] >= 0
    assert not any(s in response.text for s in SECRETS), response.text
    return result  # type: ignore[no-any-return]


def reachable(what: str, port: int) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3):
            pass
    except OSError as exc:
        service_missing(what, str(exc))


def test_a_sqlite_file_answers_and_a_missing_one_is_not_made(
    api: httpx2.Client, project: str, tmp_path: Path
) -> None:
    target = tmp_path / "target.db"
    sqlite3.connect(target).close()
    ok = probe_of(api, project, "file", f"sqlite:///{target}")
    assert ok["ok"] is True and ok["kind"] == "sql", ok
    missing = tmp_path / "missing" / "nowhere.db"
    not_there = probe_of(api, project, "missing", f"sqlite:///{missing}")
    assert not_there["ok"] is False and "must exist" in not_there["message"], not_there
    assert not missing.exists() and not missing.parent.exists()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all " * 100)
    not_a_db = probe_of(api, project, "junk", f"sqlite:///{junk}")
    assert not_a_db["ok"] is False and "not a database" in not_a_db["message"], not_a_db


def test_a_postgresql_database_answers_and_a_closed_port_does_not(
    api: httpx2.Client, project: str
) -> None:
    reachable("PostgreSQL", 5432)
    assert PG_ADMIN_URL.startswith("postgresql://postgres@127.0.0.1:5432/")  # what pg_url reaches
    ok = probe_of(api, project, "pg", pg_url())
    assert ok["ok"] is True and ok["kind"] == "sql", ok
    closed = probe_of(api, project, "closed", pg_url(port=free_port()))
    assert closed["ok"] is False and closed["kind"] == "sql", closed
    assert "refused" in closed["message"].lower(), closed


def test_a_mariadb_database_answers_and_a_wrong_password_does_not(
    api: httpx2.Client, project: str
) -> None:
    reachable("MariaDB", 3306)
    ok = probe_of(api, project, "maria", "mysql://root@127.0.0.1:3306/mysql")
    assert ok["ok"] is True, ok
    refused = probe_of(api, project, "denied", f"mariadb://root:{PASSWORD}@127.0.0.1:3306/mysql")
    assert refused["ok"] is False and "denied" in refused["message"].lower(), refused


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:  # the standard library names it
        _Recorder.seen.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(503 if self.path.startswith("/down") else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def http_service() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_an_http_service_answers_with_the_headers(api: httpx2.Client, project: str) -> None:
    _Recorder.seen.clear()
    with http_service() as url:
        # Any answer below 500 is an answer (a base URL may well be a 404).
        ok = probe_of(api, project, "svc", f"{url}/api/", headers={"X-Token": TOKEN})
        assert ok["ok"] is True and ok["kind"] == "http" and "404" in ok["message"], ok
        assert _Recorder.seen[-1]["x-token"] == TOKEN  # decrypted, and sent
        down = probe_of(api, project, "down", f"{url}/down/")
        assert down["ok"] is False and "503" in down["message"], down
    closed = probe_of(api, project, "nobody", f"http://u:{PASSWORD}@127.0.0.1:{free_port()}/")
    assert closed["ok"] is False and closed["kind"] == "http", closed


def test_no_secret_in_any_answer_the_audit_the_log_or_the_database(
    probe_server: Server, api: httpx2.Client, project: str
) -> None:
    # Last in the module: it looks through what every test above left behind.
    probe_of(api, project, "last", f"http://u:{PASSWORD}@127.0.0.1:{free_port()}/")
    api.patch(f"{base(project)}/last", json={"url": f"http://u:{MASK}@127.0.0.1:1/"})
    assert_no_secret_anywhere(probe_server, api, ANSWERS, action="patch_connection")
