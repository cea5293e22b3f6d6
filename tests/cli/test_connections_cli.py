"""Connections in the SDK and the CLI, and `jobport run --mode`: the SDK's requests against
MockTransport and a real server; the command as a real subprocess against a real server:
secrets go in (from stdin too) and never come out; usage errors exit 2 before a call."""

from __future__ import annotations

import asyncio
import json
import os
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Protocol

import httpx2
import pytest

from conftest import Server, free_port
from jobport.client import AsyncClient, Client, Conflict, NotFound, ValidationFailed

PASSWORD, TOKEN = "s3cret-pw", "t0ken-value"


class Run(Protocol):
    def __call__(
        self, *args: str, input: str | None = None
    ) -> subprocess.CompletedProcess[str]: ...


def _runner(url: str, key: str | None, cwd: Path) -> Run:
    env = {**os.environ, "JOBPORT_URL": url, "COLUMNS": "200"}
    if key is not None:
        env["JOBPORT_KEY"] = key

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jobport.cli", *args],
            env=env,
            cwd=cwd,
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


@pytest.fixture
def jobport(server: Server, tmp_path: Path) -> Run:
    """`jobport ARGS...` against the test server, as an Administrator key."""
    return _runner(server.url, server.key, tmp_path)


@pytest.fixture
def offline(tmp_path: Path) -> Run:
    """`jobport ARGS...` with no server at all: what must fail before any call."""
    return _runner(f"http://127.0.0.1:{free_port()}", None, tmp_path)


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_connections_are_created_listed_shown_updated_and_deleted(
    jobport: Run, project: str
) -> None:
    dsn = f"postgresql://etl:{PASSWORD}@db.example:5432/dw"
    made = jobport(
        "connections",
        "create",
        f"{project}/dw",
        "--url-stdin",
        "--description",
        "the warehouse",
        input=dsn + "\n",
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == (
        "created connection dw (sql): postgresql://etl:***@db.example:5432/dw"
    )
    api = _json(
        jobport(
            "connections",
            "create",
            f"{project}/api",
            "--url",
            "https://api.example.com/v1",
            "--header",
            f"Authorization: Bearer {TOKEN}",
            "--header",
            "X-Team:data",
            "--json",
        )
    )
    assert api["kind"] == "http" and api["headers"] == {"Authorization": "***", "X-Team": "***"}

    listed = jobport("connections", "list", project)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows[0] == ["NAME", "KIND", "URL", "HEADERS", "DESCRIPTION"]
    assert rows[1] == ["api", "http", "https://api.example.com/v1", "Authorization,", "X-Team"]
    assert rows[2] == [
        "dw",
        "sql",
        "postgresql://etl:***@db.example:5432/dw",
        "-",
        "the",
        "warehouse",
    ]
    as_json = _json(jobport("connections", "list", project, "--json"))
    assert [c["name"] for c in as_json] == ["api", "dw"]
    shown = jobport("connections", "show", f"{project}/dw")
    assert shown.returncode == 0, shown.stderr
    assert "url         postgresql://etl:***@db.example:5432/dw" in shown.stdout
    assert "headers     none" in shown.stdout and "description the warehouse" in shown.stdout
    assert _json(jobport("connections", "show", f"{project}/api", "--json"))["id"] == api["id"]
    for output in (made.stdout, listed.stdout, shown.stdout, json.dumps(as_json)):
        assert PASSWORD not in output and TOKEN not in output

    described = jobport("connections", "update", f"{project}/dw", "--description", "renewed")
    assert described.returncode == 0, described.stderr
    assert described.stdout.startswith("updated connection dw (sql): postgresql://etl:***@")
    kept = _json(
        jobport(
            "connections", "update", f"{project}/api", "--header", "Authorization: ***", "--json"
        )
    )
    assert kept["headers"] == {"Authorization": "***"}
    cleared = _json(jobport("connections", "update", f"{project}/api", "--clear-headers", "--json"))
    assert cleared["headers"] == {}
    moved = _json(
        jobport(
            "connections",
            "update",
            f"{project}/dw",
            "--url-stdin",
            "--json",
            input="postgresql://etl:***@db2.example/dw\n",
        )
    )
    assert moved["url"] == "postgresql://etl:***@db2.example/dw"
    assert moved["description"] == "renewed"

    deleted = jobport("connections", "delete", f"{project}/api")
    assert (deleted.returncode, deleted.stdout.strip()) == (0, "deleted connection api")
    gone = jobport("connections", "show", f"{project}/api")
    assert gone.returncode == 2 and gone.stderr.startswith("error: connection_not_found:")
    again = jobport("connections", "create", f"{project}/dw", "--url", "sqlite:///x.db")
    assert again.returncode == 2 and again.stderr.startswith("error: already_exists:")
    invalid = jobport("connections", "create", f"{project}/bad", "--url", "nowhere")
    assert invalid.returncode == 2 and invalid.stderr.startswith("error: invalid_connection:")


def test_connections_test_exits_0_when_it_works_and_1_when_not(
    jobport: Run, project: str, tmp_path: Path
) -> None:
    database = tmp_path / "probe.db"
    sqlite3.connect(database).close()  # a probe opens a SQLite file, never makes one
    made = jobport(  # the whole URL from stdin reaches the server: the probe opens it
        "connections", "create", f"{project}/db", "--url-stdin", input=f"sqlite:///{database}\n"
    )
    assert made.returncode == 0, made.stderr
    nowhere = f"http://127.0.0.1:{free_port()}/"
    assert jobport("connections", "create", f"{project}/down", "--url", nowhere).returncode == 0

    works = jobport("connections", "test", f"{project}/db")
    assert works.returncode == 0, works.stdout + works.stderr
    assert works.stdout.startswith("ok: sql connection db in ")
    assert works.stdout.rstrip().endswith(" ms: the sqlite database answered")
    fails = jobport("connections", "test", f"{project}/down")
    assert fails.returncode == 1, fails.stdout + fails.stderr
    assert fails.stdout.startswith("failed: http connection down in ") and ": " in fails.stdout
    probe = jobport("connections", "test", f"{project}/down", "--json")
    assert probe.returncode == 1 and json.loads(probe.stdout)["ok"] is False
    missing = jobport("connections", "test", f"{project}/nope")
    assert missing.returncode == 2 and missing.stderr.startswith("error: connection_not_found:")


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (["create", "p/dw"], None, "give the connection's --url, or --url-stdin"),
        (["create", "p/dw", "--url", "sqlite://", "--url-stdin"], "x", "not both"),
        (["create", "p/dw", "--url-stdin"], "\n", "no URL on standard input"),
        (["create", "dw", "--url", "sqlite://"], None, "is not PROJECT/NAME"),
        (["create", "p/dw", "--url", "http://x", "--header", "X-Token"], None, "'Name: value'"),
        (["update", "p/dw"], None, "nothing to change"),
        (["update", "p/dw", "--header", "A: b", "--clear-headers"], None, "not both"),
        (["show", "p/"], None, "is not PROJECT/NAME"),
    ],
)
def test_usage_errors_exit_2_before_any_call(
    offline: Run, args: list[str], stdin: str | None, says: str
) -> None:
    done = offline("connections", *args, input=stdin)
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in " ".join(done.stderr.split())  # rich wraps usage errors in a box
    assert "could not reach" not in done.stderr


def test_run_mode_delta_is_recorded_and_seen_by_the_step(
    jobport: Run, api: httpx2.Client, project: str
) -> None:
    step = {
        "name": "say",
        "kind": "command",
        "config": {"command": "echo $JOBPORT_MODE {{ mode }}"},
    }
    made = api.post(f"/api/v1/projects/{project}/jobs", json={"name": "moded", "steps": [step]})
    assert made.status_code == 201, made.text

    done = jobport("run", f"{project}/moded", "--mode", "delta", "--follow", "--json")
    run = _json(done)
    assert run["status"] == "succeeded" and run["mode"] == "delta"
    assert "delta delta" in done.stderr.splitlines()  # --json: the log lines on stderr
    assert api.get(f"/api/v1/executions/{run['id']}").json()["mode"] == "delta"
    default = _json(jobport("run", f"{project}/moded", "--wait", "--json"))
    assert default["mode"] == "full"
    wrong = jobport("run", f"{project}/moded", "--mode", "partial")
    assert wrong.returncode == 2 and "partial" in wrong.stderr


def test_the_connections_group_is_listed_and_says_how_to_keep_a_password_off_the_command_line(
    offline: Run,
) -> None:
    assert "connections" in offline("--help").stdout
    helped = " ".join(offline("connections", "create", "--help").stdout.split())
    assert "--url-stdin" in helped and "shell history" in helped


def _connections_server(asked: list[tuple[str, str, str, Any]]) -> httpx2.MockTransport:
    """The agreed connections API of project `p`, in memory: one connection `warehouse`, two
    pages of one; POST a second `warehouse` is a 409, a url without a scheme a 422."""
    base = "/api/v1/projects/p/connections"
    shown = {"name": "warehouse", "kind": "sql", "url": "postgresql://etl:***@db/dw"}

    def answer(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content) if request.content else None
        path, query = request.url.raw_path.decode().partition("?")[::2]
        asked.append((request.method, path, query, body))
        if request.method == "POST" and path == base:
            if body["url"] == "nowhere":
                details = [{"field": "url", "reason": "url must be a SQLAlchemy database URL"}]
                problem = {"error": "invalid_connection", "message": "bad", "details": details}
                return httpx2.Response(422, json=problem)
            if body["name"] == "warehouse":
                return httpx2.Response(409, json={"error": "already_exists", "message": "taken"})
            return httpx2.Response(201, json={**body, "headers": {"X-Key": "***"}})
        if path == base:
            cursor = "c1" if "cursor" not in query else None
            return httpx2.Response(200, json={"items": [shown], "nextCursor": cursor})
        if not path.startswith(base + "/warehouse"):
            return httpx2.Response(
                404, json={"error": "connection_not_found", "message": "no connection"}
            )
        if request.method == "DELETE":
            return httpx2.Response(204)
        if path.endswith("/test"):
            return httpx2.Response(200, json={"ok": False, "kind": "sql", "message": "refused"})
        return httpx2.Response(200, json={**shown, **(body or {})})

    return httpx2.MockTransport(answer)


def _use_connections(jp: Client) -> list[Any]:
    return [
        jp.create_connection("p", "api", "https://api.example", "the API", {"X-Key": "s3cret"}),
        jp.list_connections("p", page_size=1),
        jp.get_connection("p", "warehouse"),
        jp.update_connection("p", "warehouse", url="postgresql://etl:***@db2/dw", headers={}),
        jp.test_connection("p", "warehouse"),
        jp.delete_connection("p", "warehouse"),
    ]


def test_the_connection_methods_send_the_agreed_requests_from_both_clients() -> None:
    asked: list[tuple[str, str, str, Any]] = []
    base = "/api/v1/projects/p/connections"
    with Client("http://jobport.test", transport=_connections_server(asked), key="k") as jp:
        made, listed, got, changed, probe, gone = _use_connections(jp)
    assert made["headers"] == {"X-Key": "***"} and [c["name"] for c in listed] == ["warehouse"] * 2
    assert got["kind"] == "sql" and changed["url"] == "postgresql://etl:***@db2/dw"
    assert probe == {"ok": False, "kind": "sql", "message": "refused"} and gone is None
    body = {"name": "api", "url": "https://api.example", "description": "the API"}
    assert asked == [
        ("POST", base, "", {**body, "headers": {"X-Key": "s3cret"}}),
        ("GET", base, "limit=1", None),
        ("GET", base, "limit=1&cursor=c1", None),
        ("GET", f"{base}/warehouse", "", None),
        ("PATCH", f"{base}/warehouse", "", {"url": "postgresql://etl:***@db2/dw", "headers": {}}),
        ("POST", f"{base}/warehouse/test", "", None),
        ("DELETE", f"{base}/warehouse", "", None),
    ]

    async def scenario() -> list[Any]:
        transport = _connections_server(asked)
        async with AsyncClient("http://jobport.test", transport=transport, key="k") as jp:
            return [await answer for answer in _use_connections(jp)]  # type: ignore[arg-type]

    sync_asked = list(asked)
    asked.clear()
    assert asyncio.run(scenario()) == [made, listed, got, changed, probe, gone]
    assert asked == sync_asked


def test_connection_errors_are_the_classes_of_jobport_errors() -> None:
    asked: list[tuple[str, str, str, Any]] = []
    with Client("http://jobport.test", transport=_connections_server(asked), key="k") as jp:
        with pytest.raises(NotFound) as missing:
            jp.get_connection("p", "a/b c")  # a name is one path segment, quoted whole
        with pytest.raises(Conflict) as taken:
            jp.create_connection("p", "warehouse", "sqlite:///x.db")
        with pytest.raises(ValidationFailed) as invalid:
            jp.create_connection("p", "other", "nowhere")
        with pytest.raises(TypeError, match="cannot change \\['password'\\]"):
            jp.update_connection("p", "warehouse", password="x")
    assert (missing.value.status, missing.value.code) == (404, "connection_not_found")
    assert asked[0][1] == "/api/v1/projects/p/connections/a%2Fb%20c"
    assert (taken.value.status, taken.value.code) == (409, "already_exists")
    assert invalid.value.code == "invalid_connection"
    assert invalid.value.details == [
        {"field": "url", "reason": "url must be a SQLAlchemy database URL"}
    ]
    assert asked[1][3] == {"name": "warehouse", "url": "sqlite:///x.db", "description": ""}
    assert len(asked) == 3  # the unknown field was refused before any request


def test_list_connections_follows_the_pages_of_a_real_server(server: Server, project: str) -> None:
    with Client(server.url, key=server.key) as jp:
        for name in ("c", "a", "b"):
            jp.create_connection(project, name, f"https://{name}.example", headers={"K": "v"})
        assert [c["name"] for c in jp.list_connections(project, page_size=2)] == ["a", "b", "c"]
        renamed = jp.update_connection(project, "c", name="d", headers={"K": "***"})
        assert (renamed["name"], renamed["headers"]) == ("d", {"K": "***"})
        jp.delete_connection(project, renamed["id"])  # by id as well as by name
        with pytest.raises(NotFound):
            jp.get_connection(project, "d")


def _read_until(fd: int, done: Any, seconds: float = 30) -> bytes:
    """What the terminal `fd` shows until `done(seen)` or it closes (EOF, EIO) or time is up."""
    seen = b""
    deadline = time.monotonic() + seconds
    while not done(seen) and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the command ended: its terminal is gone
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_url_stdin_at_a_terminal_asks_without_echoing(
    server: Server, project: str, tmp_path: Path
) -> None:
    import fcntl
    import pty
    import termios

    def own_terminal() -> None:  # the pty becomes the command's /dev/tty, as in a shell
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    url = f"sqlite:///{tmp_path / 'typed.db'}"
    master, slave = pty.openpty()
    env = {**os.environ, "JOBPORT_URL": server.url, "JOBPORT_KEY": server.key or ""}
    command = [sys.executable, "-m", "jobport.cli", "connections", "create", f"{project}/typed"]
    try:
        with subprocess.Popen(
            [*command, "--url-stdin"],
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=slave,
            env=env,
            preexec_fn=own_terminal,
        ) as proc:
            os.close(slave)
            # The space after the colon comes once getpass has turned the echo off.
            asked = _read_until(master, lambda seen: b"Connection URL: " in seen)
            os.write(master, f"{url}\n".encode())
            try:
                out, _ = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()  # fail, not hang: Popen's exit would wait for it forever
                raise
            shown = asked + _read_until(master, lambda seen: False, seconds=2)
    finally:
        os.close(master)
    assert b"Connection URL" in asked
    assert proc.returncode == 0, shown
    assert out.decode().strip() == f"created connection typed (sql): {url}"
    assert b"typed.db" not in shown  # not echoed as it was typed
