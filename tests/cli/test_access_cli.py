"""The access commands (keys, roles, users, login), over HTTP and --local on the database."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from conftest import ADMIN_PASSWORD, Server

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Refused credentials are part of these tests: lift the failed-attempt limits."""
    workdir = tmp_path_factory.mktemp("access-cli")
    srv = Server(
        f"sqlite:///{workdir / 'jobport.db'}",
        workdir,
        auth_failures_per_client="1000/minute",
        auth_failures_per_address="1000/minute",
    ).start()
    yield srv
    srv.stop()


@pytest.fixture
def jobport(server: Server, tmp_path: Path) -> Run:
    """Run `jobport ARGS...`: as the Administrator key unless `key=` says otherwise (None: no
    key), on the test server's URL and, for --local, its database."""

    def run(
        *args: str, key: str | None = "admin", stdin: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        environment = {
            **os.environ,
            "JOBPORT_URL": server.url,
            "JOBPORT_DATABASE_URL": server.database_url,
            "COLUMNS": "200",
            **env,
        }
        if key is not None:
            environment["JOBPORT_KEY"] = (server.key or "") if key == "admin" else key
        return subprocess.run(
            [sys.executable, "-m", "jobport.cli", *args],
            env=environment,
            cwd=tmp_path,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def created(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def as_key(server: Server, key: str) -> httpx2.Client:
    return server.client(anonymous=True, headers={"Authorization": f"Bearer {key}"})


# --- keys -------------------------------------------------------------------------------------


def test_keys_create_local_prints_the_json_the_api_answers_and_the_key_works(
    jobport: Run, api: httpx2.Client, server: Server
) -> None:
    over_api = api.post("/api/v1/keys", json={"description": "made over the API"})
    assert over_api.status_code == 201

    local = created(
        jobport(
            "keys", "create", "--local", "--description", "D", "--role", "Administrator", "--json",
            key=None,
        )
    )  # fmt: skip

    assert list(local) == list(over_api.json())  # the same fields, in the same order
    assert local["description"] == "D" and local["createdBy"].startswith("local:")
    assert local["roles"] == [{"role": "Administrator", "project": None}]
    with as_key(server, local["key"]) as jp:
        me = jp.get("/api/v1/me").json()
    assert me["id"] == local["clientId"] and me["scopes"] == {"application": ["*"]}
    audited = api.get("/api/v1/audit", params={"action": "create_key", "outcome": "ok"}).json()
    assert any(
        e["principal"] == local["createdBy"] and e["target"] == "POST /api/v1/keys"
        for e in audited["items"]
    )


def test_keys_create_over_http_gives_the_roles_in_the_project(
    jobport: Run, api: httpx2.Client, project: str, server: Server
) -> None:
    answer = created(
        jobport(
            "keys", "create", "--role", "Viewer", "--project", project, "--never-expires", "--json"
        )
    )
    assert answer["roles"] == [{"role": "Viewer", "project": project}]
    assert answer["expiresAt"] is None and answer["key"].startswith("jpk_")
    local = created(jobport("keys", "create", "--local", "--role", "Viewer", "--json", key=None))
    assert list(local) == list(answer)
    with as_key(server, answer["key"]) as jp:
        assert jp.get(f"/api/v1/projects/{project}/jobs").status_code == 200

    missing = jobport("keys", "create", "--role", "Nobody")
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: role_not_found: no role 'Nobody'")

    plain = jobport("keys", "create", "--description", "for people")
    assert plain.returncode == 0, plain.stderr
    assert "key            jpk_" in plain.stdout and "shown this once" in plain.stderr


def test_keys_list_show_rotate_and_delete(jobport: Run, server: Server) -> None:
    key = created(jobport("keys", "create", "--role", "Viewer", "--description", "cycle", "--json"))
    client_id = key["clientId"]

    listed = jobport("keys", "list")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if client_id in line)
    assert "Viewer" in row and "cycle" in row
    as_json = json.loads(jobport("keys", "list", "--json").stdout)
    assert client_id in [k["clientId"] for k in as_json]
    assert "clientSecret" not in json.dumps(as_json)
    local = json.loads(jobport("keys", "list", "--local", "--json", key=None).stdout)
    assert [k["clientId"] for k in local] == [k["clientId"] for k in as_json]

    shown = jobport("keys", "show", client_id)
    assert shown.returncode == 0 and "roles       Viewer" in shown.stdout
    assert "every address may use the key" in shown.stdout

    rotated = created(jobport("keys", "rotate", client_id, "--json"))
    assert rotated["clientId"] == client_id and rotated["previousSecretValidUntil"]
    for secret in (key["key"], rotated["key"]):  # both work until the overlap ends
        with as_key(server, secret) as jp:
            assert jp.get("/api/v1/me").status_code == 200
    ended = created(
        jobport("keys", "rotate", client_id, "--local", "--json",
                "--old-secret-valid-until", "2099-01-01T00:00:00Z", key=None)
    )  # fmt: skip
    assert ended["previousSecretValidUntil"] == "2099-01-01T00:00:00.000Z"
    with as_key(server, rotated["key"]) as jp:
        assert jp.get("/api/v1/me").status_code == 200  # the previous secret, still valid
    with as_key(server, key["key"]) as jp:
        assert jp.get("/api/v1/me").status_code == 401  # two rotations ago

    deleted = jobport("keys", "delete", client_id)
    assert deleted.returncode == 0 and deleted.stdout.strip() == f"deleted API key {client_id}"
    with as_key(server, ended["key"]) as jp:
        assert jp.get("/api/v1/me").json()["error"] == "key_revoked"
    again = jobport("keys", "show", client_id)
    assert again.returncode == 2 and again.stderr.startswith("error: key_not_found:")


def test_firewall_rules_my_address_and_named_ranges(
    jobport: Run, server: Server, project: str
) -> None:
    key = created(jobport("keys", "create", "--role", "Viewer", "--json"))
    client_id = key["clientId"]

    mine = jobport("keys", "firewall", "add", client_id, "--my-address", "--name", "laptop")
    assert mine.returncode == 0, mine.stderr
    assert "laptop" in mine.stdout and "127.0.0.1" in mine.stdout
    office = jobport(
        "keys", "firewall", "add", client_id, "--name", "office",
        "--start", "10.0.0.1", "--end", "10.0.0.9",
    )  # fmt: skip
    assert office.returncode == 0, office.stderr
    rules = json.loads(jobport("keys", "show", client_id, "--json").stdout)["firewallRules"]
    assert rules == [
        {"name": "laptop", "startIp": "127.0.0.1", "endIp": "127.0.0.1", "enabled": True},
        {"name": "office", "startIp": "10.0.0.1", "endIp": "10.0.0.9", "enabled": True},
    ]
    with as_key(server, key["key"]) as jp:
        assert jp.get("/api/v1/me").status_code == 200

    assert jobport("keys", "firewall", "remove", client_id, "--name", "laptop").returncode == 0
    refused = jobport("jobs", "list", project, key=key["key"])
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: ip_not_allowed: address 127.0.0.1 is not allowed")

    local = jobport(
        "keys", "firewall", "remove", client_id, "--name", "office", "--local", key=None
    )
    assert local.returncode == 0 and "every address may use the key" in local.stdout
    assert jobport("jobs", "list", project, key=key["key"]).returncode == 0

    unknown = jobport("keys", "firewall", "remove", client_id, "--name", "nope")
    assert unknown.returncode == 2 and "error: rule_not_found:" in unknown.stderr
    bad = jobport("keys", "firewall", "add", client_id, "--name", "x", "--start", "300.1.1.1")
    assert bad.returncode == 2 and "error: invalid_firewall_rule:" in bad.stderr
    usage = jobport("keys", "firewall", "add", client_id, "--my-address", "--local", key=None)
    assert usage.returncode == 2 and "needs a server" in usage.stderr


# --- roles and errors ---------------------------------------------------------------------------


def test_roles_add_member_gives_rights_in_one_project_and_a_403_exits_2(
    jobport: Run, api: httpx2.Client
) -> None:
    mine, other = unique("mine"), unique("other")
    for name in (mine, other):
        assert api.post("/api/v1/projects", json={"name": name}).status_code == 201
    key = created(jobport("keys", "create", "--json"))  # no role yet
    client_id = key["clientId"]

    before = jobport("jobs", "list", mine, key=key["key"])
    assert before.returncode == 2
    assert before.stderr.strip() == (
        f"error: insufficient_scope: this call needs scope 'jobs:read' in project '{mine}', "
        f"which apiKey:{client_id} does not hold"
    )

    added = jobport("roles", "add-member", "Viewer", "--key", client_id, "--project", mine)
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == f"apiKey {client_id} has role Viewer in project {mine}"
    assert jobport("jobs", "list", mine, key=key["key"]).returncode == 0
    forbidden = jobport("jobs", "list", other, key=key["key"])
    assert forbidden.returncode == 2
    assert forbidden.stderr.strip() == (
        f"error: project_forbidden: apiKey:{client_id} has no role that grants "
        f"'jobs:read' in project '{other}'"
    )
    no_scope = jobport("keys", "list", key=key["key"])
    assert no_scope.returncode == 2
    assert no_scope.stderr.startswith(
        "error: insufficient_scope: this call needs scope 'keys:read'"
    )

    roles = json.loads(jobport("roles", "list", "--project", mine, "--json").stdout)
    viewer = next(r for r in roles if r["name"] == "Viewer")
    assert {"type": "apiKey", "id": client_id} in viewer["members"]
    table = jobport("roles", "list", "--project", mine)
    assert f"apiKey:{client_id}" in table.stdout

    removed = jobport("roles", "remove-member", "Viewer", "--key", client_id, "--project", mine)
    assert removed.returncode == 0, removed.stderr
    assert jobport("jobs", "list", mine, key=key["key"]).returncode == 2


def test_roles_create_and_local_membership(jobport: Run, api: httpx2.Client) -> None:
    made = created(
        jobport("roles", "create", "runners", "--scope", "jobs:execute", "--scope", "jobs:read",
                "--description", "run things", "--json")
    )  # fmt: skip
    assert made["scopes"] == ["jobs:execute", "jobs:read"] and made["level"] == "application"
    assert made == api.get("/api/v1/roles/runners").json()

    key = created(jobport("keys", "create", "--json"))
    local = jobport("roles", "add-member", "runners", "--key", key["clientId"], "--local", key=None)
    assert local.returncode == 0, local.stderr
    members = api.get("/api/v1/roles/runners").json()["members"]
    assert members == [{"type": "apiKey", "id": key["clientId"]}]

    bad_scope = jobport("roles", "create", "odd", "--scope", "jobs:fly")
    assert bad_scope.returncode == 2 and "error: invalid_role:" in bad_scope.stderr
    neither = jobport("roles", "add-member", "runners")
    assert neither.returncode == 2 and "--key CLIENT_ID or --user USERNAME" in neither.stderr


# --- users --------------------------------------------------------------------------------------


def login(server: Server, username: str, password: str) -> httpx2.Response:
    with server.client(anonymous=True) as http:
        return http.post("/api/v1/session", json={"username": username, "password": password})


def test_users_passwd_local_sets_the_password_the_console_accepts(
    jobport: Run, server: Server
) -> None:
    changed = jobport(
        "users", "passwd", "admin", "--local", "--password-stdin",
        stdin="a brand new password\n", key=None,
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    assert login(server, "admin", "a brand new password").status_code == 201
    assert login(server, "admin", ADMIN_PASSWORD).status_code == 401

    short = jobport(
        "users", "passwd", "admin", "--local", "--password-stdin", stdin="short\n", key=None
    )
    assert short.returncode == 2 and short.stderr.startswith("error: weak_password:")
    remote = jobport("users", "passwd", "admin", "--password-stdin", stdin="whatever123\n")
    assert remote.returncode == 2 and "--local" in remote.stderr


def test_users_create_local_with_a_project_role(jobport: Run, server: Server, project: str) -> None:
    name = unique("ann")
    made = jobport(
        "users", "create", name, "--role", "Operator", "--project", project,
        "--local", "--password-stdin", stdin="ann's password\n", key=None,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    session = login(server, name, "ann's password")
    assert session.status_code == 201
    assert session.json()["me"]["roles"] == [{"role": "Operator", "project": project}]


# --- login ---------------------------------------------------------------------------------------


def test_login_keeps_a_private_profile_that_later_commands_use(
    jobport: Run, server: Server, project: str, no_ambient_credentials: Path
) -> None:
    key = created(jobport("keys", "create", "--role", "Viewer", "--json"))
    profile = no_ambient_credentials / "profile.json"

    wrong = jobport("login", "--client-id", key["clientId"], "--client-secret", "x" * 40, key=None)
    assert wrong.returncode == 2 and wrong.stderr.startswith("error: invalid_credentials:")
    assert not profile.exists()

    logged_in = jobport(
        "login", "--client-id", key["clientId"], "--client-secret", key["clientSecret"],
        "--url", server.url, key=None, JOBPORT_URL="",
    )  # fmt: skip
    assert logged_in.returncode == 0, logged_in.stderr
    assert logged_in.stdout.strip() == f"logged in to {server.url} as API key {key['clientId']}"
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    assert json.loads(profile.read_text()) == {
        "url": server.url,
        "client_id": key["clientId"],
        "client_secret": key["clientSecret"],
    }

    listed = jobport("jobs", "list", project, "--json", key=None, JOBPORT_URL="")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    denied = jobport("keys", "list", key=None)  # the profile's key is only a Viewer
    assert denied.returncode == 2 and denied.stderr.startswith("error: insufficient_scope:")

    logged_out = jobport("logout", key=None)
    assert logged_out.returncode == 0 and not profile.exists()
    anonymous = jobport("jobs", "list", project, key=None)
    assert anonymous.returncode == 2
    assert anonymous.stderr.startswith("error: missing_credentials:")
    assert "jobport login" in anonymous.stderr
    assert jobport("logout", key=None).stdout.strip() == "not logged in"


# --- serve ---------------------------------------------------------------------------------------


def test_serve_binds_every_interface_with_a_warning(make_server: Any) -> None:
    srv = make_server(workers=1)
    srv.start("--host", "0.0.0.0")
    with httpx2.Client(base_url=srv.url, timeout=10) as http:
        assert http.get("/healthz").status_code == 200
        assert http.get("/api/v1/projects").status_code == 401
    srv.stop()
    assert "reachable from other machines" in srv.log()
