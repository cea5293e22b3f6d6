"""Every endpoint by every kind of caller: the documented answer, and no change when refused.

The endpoint table below must name every route the app serves (a test checks it against the
app's own route table), so a new endpoint without an entry here fails the suite.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest

from conftest import Server, admin_key, wait_for
from jobport.api.app import create_app
from jobport.api.auth import route_table
from jobport.domain.access import BUILTIN_ROLES, covered, key_string, new_secret, parse_key_string


@dataclass
class World:
    """Fresh objects for one endpoint's calls: a project with a job, a run, a key, roles."""

    project: str
    job: str
    execution: str
    key: str  # client id of a key to act on
    role: str  # an application role with `key` as member
    project_role: str  # a project role with `key` as member
    admin: httpx2.Client


Request = tuple[str, dict[str, Any]]  # url, extra httpx arguments
Build = Callable[[World], Request]


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _sleeping_run(w: World) -> str:
    """A run still going, so that cancel has something to cancel."""
    body = {
        "name": _name("nap"),
        "steps": [{"name": "nap", "kind": "command", "config": {"command": "sleep 30"}}],
    }
    assert w.admin.post(f"/api/v1/projects/{w.project}/jobs", json=body).status_code == 201
    run = w.admin.post(f"/api/v1/projects/{w.project}/jobs/{body['name']}/execute").json()

    # Running and settled, so the database does not move under the refused calls.
    def settled() -> bool:
        # Its step's start written too: the heartbeat writes the steps' states when they
        # change, which a loaded machine may do while a refused call is being checked.
        now = w.admin.get(f"/api/v1/executions/{run['id']}").json()
        started = now["steps"][0]["status"] == "running"
        return bool(now["status"] == "running" and now["logLines"] >= 1 and started)

    wait_for(settled)
    return str(run["id"])


def _user(w: World) -> str:
    """A user of its own, so that setting its password changes nobody else's."""
    name = _name("u")
    body = {"username": name, "password": "matrix pw"}
    assert w.admin.post("/api/v1/users", json=body).status_code == 201
    return name


P = "/api/v1/projects/{project}"
# (method, route path) -> (how to build the request, the status a permitted caller gets)
ENDPOINTS: dict[tuple[str, str], tuple[Build, int]] = {
    ("GET", "/api/v1/projects"): (lambda w: ("/api/v1/projects", {}), 200),
    ("POST", "/api/v1/projects"): (
        lambda w: ("/api/v1/projects", {"json": {"name": _name("new")}}),
        201,
    ),
    ("GET", P): (lambda w: (f"/api/v1/projects/{w.project}", {}), 200),
    ("PATCH", P): (
        lambda w: (f"/api/v1/projects/{w.project}", {"json": {"description": "changed"}}),
        200,
    ),
    ("DELETE", P): (lambda w: (f"/api/v1/projects/{w.project}", {}), 204),
    ("GET", P + "/jobs"): (lambda w: (f"/api/v1/projects/{w.project}/jobs", {}), 200),
    ("POST", P + "/jobs"): (
        lambda w: (
            f"/api/v1/projects/{w.project}/jobs",
            {
                "json": {
                    "name": _name("job"),
                    "steps": [{"name": "s", "kind": "command", "config": {"command": "true"}}],
                }
            },
        ),
        201,
    ),
    ("GET", P + "/jobs/{job}"): (
        lambda w: (f"/api/v1/projects/{w.project}/jobs/{w.job}", {}),
        200,
    ),
    ("PATCH", P + "/jobs/{job}"): (
        lambda w: (
            f"/api/v1/projects/{w.project}/jobs/{w.job}",
            {"json": {"description": "changed"}},
        ),
        200,
    ),
    ("DELETE", P + "/jobs/{job}"): (
        lambda w: (f"/api/v1/projects/{w.project}/jobs/{w.job}", {}),
        204,
    ),
    ("POST", P + "/jobs/{job}/execute"): (
        lambda w: (f"/api/v1/projects/{w.project}/jobs/{w.job}/execute", {"json": {}}),
        202,
    ),
    ("GET", P + "/executions"): (lambda w: (f"/api/v1/projects/{w.project}/executions", {}), 200),
    ("GET", "/api/v1/executions/{execution_id}"): (
        lambda w: (f"/api/v1/executions/{w.execution}", {}),
        200,
    ),
    ("POST", "/api/v1/executions/{execution_id}/cancel"): (
        lambda w: (f"/api/v1/executions/{_sleeping_run(w)}/cancel", {}),
        202,
    ),
    ("GET", "/api/v1/executions/{execution_id}/result"): (
        lambda w: (f"/api/v1/executions/{w.execution}/result", {}),
        200,
    ),
    ("GET", "/api/v1/executions/{execution_id}/logs"): (
        lambda w: (f"/api/v1/executions/{w.execution}/logs", {}),
        200,
    ),
    ("GET", "/api/v1/executions/{execution_id}/items"): (
        lambda w: (f"/api/v1/executions/{w.execution}/items", {}),
        200,
    ),
    ("GET", "/api/v1/keys"): (lambda w: ("/api/v1/keys", {}), 200),
    ("POST", "/api/v1/keys"): (
        lambda w: ("/api/v1/keys", {"json": {"description": "made in the matrix"}}),
        201,
    ),
    ("GET", "/api/v1/keys/{client_id}"): (lambda w: (f"/api/v1/keys/{w.key}", {}), 200),
    ("PATCH", "/api/v1/keys/{client_id}"): (
        lambda w: (f"/api/v1/keys/{w.key}", {"json": {"description": "changed"}}),
        200,
    ),
    ("DELETE", "/api/v1/keys/{client_id}"): (lambda w: (f"/api/v1/keys/{w.key}", {}), 204),
    ("POST", "/api/v1/keys/{client_id}/rotate"): (
        lambda w: (f"/api/v1/keys/{w.key}/rotate", {}),
        200,
    ),
    ("POST", "/api/v1/keys/{client_id}/firewall-rules/current-address"): (
        lambda w: (f"/api/v1/keys/{w.key}/firewall-rules/current-address", {}),
        200,
    ),
    ("GET", "/api/v1/roles"): (lambda w: ("/api/v1/roles", {}), 200),
    ("POST", "/api/v1/roles"): (
        lambda w: ("/api/v1/roles", {"json": {"name": _name("role"), "scopes": ["jobs:read"]}}),
        201,
    ),
    ("GET", "/api/v1/roles/{role}"): (lambda w: (f"/api/v1/roles/{w.role}", {}), 200),
    ("PATCH", "/api/v1/roles/{role}"): (
        lambda w: (f"/api/v1/roles/{w.role}", {"json": {"description": "changed"}}),
        200,
    ),
    ("DELETE", "/api/v1/roles/{role}"): (lambda w: (f"/api/v1/roles/{w.role}", {}), 204),
    ("POST", "/api/v1/roles/{role}/members"): (
        lambda w: (
            "/api/v1/roles/Viewer/members",
            {"json": {"type": "apiKey", "id": w.key}},
        ),
        201,
    ),
    ("DELETE", "/api/v1/roles/{role}/members/{member_type}/{member_id}"): (
        lambda w: (f"/api/v1/roles/{w.role}/members/apiKey/{w.key}", {}),
        204,
    ),
    ("GET", P + "/roles"): (lambda w: (f"/api/v1/projects/{w.project}/roles", {}), 200),
    ("POST", P + "/roles"): (
        lambda w: (
            f"/api/v1/projects/{w.project}/roles",
            {"json": {"name": _name("role"), "scopes": ["jobs:*"]}},
        ),
        201,
    ),
    ("GET", P + "/roles/{role}"): (
        lambda w: (f"/api/v1/projects/{w.project}/roles/{w.project_role}", {}),
        200,
    ),
    ("PATCH", P + "/roles/{role}"): (
        lambda w: (
            f"/api/v1/projects/{w.project}/roles/{w.project_role}",
            {"json": {"scopes": ["executions:read"]}},
        ),
        200,
    ),
    ("DELETE", P + "/roles/{role}"): (
        lambda w: (f"/api/v1/projects/{w.project}/roles/{w.project_role}", {}),
        204,
    ),
    ("POST", P + "/roles/{role}/members"): (
        lambda w: (
            f"/api/v1/projects/{w.project}/roles/Viewer/members",
            {"json": {"type": "apiKey", "id": w.key}},
        ),
        201,
    ),
    ("DELETE", P + "/roles/{role}/members/{member_type}/{member_id}"): (
        lambda w: (
            f"/api/v1/projects/{w.project}/roles/{w.project_role}/members/apiKey/{w.key}",
            {},
        ),
        204,
    ),
    ("GET", "/api/v1/users"): (lambda w: ("/api/v1/users", {}), 200),
    ("POST", "/api/v1/users"): (
        lambda w: ("/api/v1/users", {"json": {"username": _name("u"), "password": "matrix pw"}}),
        201,
    ),
    ("PUT", "/api/v1/users/{username}/password"): (
        lambda w: (f"/api/v1/users/{_user(w)}/password", {"json": {"password": "new matrix pw"}}),
        204,
    ),
    ("GET", "/api/v1/session"): (lambda w: ("/api/v1/session", {}), 200),
    ("DELETE", "/api/v1/session"): (lambda w: ("/api/v1/session", {}), 204),
    ("GET", "/api/v1/me"): (lambda w: ("/api/v1/me", {}), 200),
    ("GET", "/api/v1/audit"): (lambda w: ("/api/v1/audit", {}), 200),
}

SCHEDULES = P + "/jobs/{job}/schedules"
CONNECTIONS = P + "/connections"


def _connection(w: World) -> str:
    """A connection of the world's project (an in-memory SQLite database: a test of it
    touches nothing); returns its URL."""
    body = {"name": _name("conn"), "url": "sqlite://", "headers": {"X-Token": "matrix"}}
    url = f"/api/v1/projects/{w.project}/connections"
    response = w.admin.post(url, json=body)
    assert response.status_code == 201, response.text
    return f"{url}/{body['name']}"


ENDPOINTS.update(
    {
        ("GET", CONNECTIONS): (lambda w: (f"/api/v1/projects/{w.project}/connections", {}), 200),
        ("POST", CONNECTIONS): (
            lambda w: (
                f"/api/v1/projects/{w.project}/connections",
                {"json": {"name": _name("conn"), "url": "sqlite://"}},
            ),
            201,
        ),
        ("GET", CONNECTIONS + "/{connection}"): (lambda w: (_connection(w), {}), 200),
        ("PATCH", CONNECTIONS + "/{connection}"): (
            lambda w: (_connection(w), {"json": {"description": "changed"}}),
            200,
        ),
        ("DELETE", CONNECTIONS + "/{connection}"): (lambda w: (_connection(w), {}), 204),
        ("POST", CONNECTIONS + "/{connection}/test"): (
            lambda w: (_connection(w) + "/test", {}),
            200,
        ),
    }
)


def _schedule_endpoints() -> None:
    """Schedules (when the app serves them): each call on a schedule made for the world."""

    def sched(w: World) -> str:
        body = {"crons": ["0 3 * * *"], "timeZone": "UTC"}
        url = f"/api/v1/projects/{w.project}/jobs/{w.job}/schedules/nightly"
        response = w.admin.put(url, json=body)
        assert response.status_code in {200, 201}, response.text
        return url

    base = "/api/v1/projects/{project}/jobs/{job}/schedules"
    ENDPOINTS.update(
        {
            ("GET", SCHEDULES): (lambda w: (sched(w).rsplit("/", 1)[0], {}), 200),
            ("GET", base + "/{name}"): (lambda w: (sched(w), {}), 200),
            ("PUT", base + "/{name}"): (
                lambda w: (
                    f"/api/v1/projects/{w.project}/jobs/{w.job}/schedules/daily",
                    {"json": {"crons": ["0 4 * * *"]}},
                ),
                201,
            ),
            ("DELETE", base + "/{name}"): (lambda w: (sched(w), {}), 204),
            ("GET", base + "/{name}/preview"): (lambda w: (sched(w) + "/preview", {}), 200),
            ("GET", base + "/{name}/fires"): (lambda w: (sched(w) + "/fires", {}), 200),
            ("POST", base + "/{name}/trigger"): (lambda w: (sched(w) + "/trigger", {}), 201),
            ("POST", base + "/{name}/backfill"): (
                lambda w: (
                    sched(w) + "/backfill",
                    {"json": {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}},
                ),
                201,
            ),
        }
    )


# Loome: every job route by the job's id alone, and Add or Update Schedule (POST, named in
# the body) in both places.
BY_ID = "/api/v1/jobs/{job_id}"


def _job_id(w: World) -> str:
    return str(w.admin.get(f"/api/v1/projects/{w.project}/jobs/{w.job}").json()["id"])


def _by_id_schedule(w: World) -> str:
    url = f"/api/v1/jobs/{_job_id(w)}/schedules/nightly"
    response = w.admin.put(url, json={"crons": ["0 3 * * *"], "timezone": "UTC"})
    assert response.status_code in {200, 201}, response.text
    return url


_LOOME_SCHEDULE = {
    "name": "My Schedule",
    "timezone": "AUS Eastern Standard Time",
    "startDate": "2023-09-04",
    "endDate": None,
    "enabled": True,
    "crons": ["0 10 * * *"],
}
ENDPOINTS.update(
    {
        ("POST", SCHEDULES): (
            lambda w: (
                f"/api/v1/projects/{w.project}/jobs/{w.job}/schedules",
                {"json": _LOOME_SCHEDULE},
            ),
            201,
        ),
        ("GET", BY_ID): (lambda w: (f"/api/v1/jobs/{_job_id(w)}", {}), 200),
        ("PATCH", BY_ID): (
            lambda w: (f"/api/v1/jobs/{_job_id(w)}", {"json": {"description": "changed"}}),
            200,
        ),
        ("DELETE", BY_ID): (lambda w: (f"/api/v1/jobs/{_job_id(w)}", {}), 204),
        ("POST", BY_ID + "/execute"): (
            lambda w: (f"/api/v1/jobs/{_job_id(w)}/execute", {}),
            202,
        ),
        ("GET", BY_ID + "/schedules"): (
            lambda w: (f"/api/v1/jobs/{_job_id(w)}/schedules", {}),
            200,
        ),
        ("POST", BY_ID + "/schedules"): (
            lambda w: (f"/api/v1/jobs/{_job_id(w)}/schedules", {"json": _LOOME_SCHEDULE}),
            201,
        ),
        ("PUT", BY_ID + "/schedules/{name}"): (
            lambda w: (
                f"/api/v1/jobs/{_job_id(w)}/schedules/daily",
                {"json": {"crons": ["0 4 * * *"]}},
            ),
            201,
        ),
        ("GET", BY_ID + "/schedules/{name}"): (lambda w: (_by_id_schedule(w), {}), 200),
        ("DELETE", BY_ID + "/schedules/{name}"): (lambda w: (_by_id_schedule(w), {}), 204),
        ("GET", BY_ID + "/schedules/{name}/preview"): (
            lambda w: (_by_id_schedule(w) + "/preview", {}),
            200,
        ),
        ("GET", BY_ID + "/schedules/{name}/fires"): (
            lambda w: (_by_id_schedule(w) + "/fires", {}),
            200,
        ),
        ("POST", BY_ID + "/schedules/{name}/trigger"): (
            lambda w: (_by_id_schedule(w) + "/trigger", {}),
            201,
        ),
        ("POST", BY_ID + "/schedules/{name}/backfill"): (
            lambda w: (
                _by_id_schedule(w) + "/backfill",
                {"json": {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}},
            ),
            201,
        ),
    }
)

# InfoLink: the app (a project) and the job (a run) come in the body or the query, and errors
# in InfoLink's shape, `{"status": "error", "result": {"message", "code"}}`.
INFOLINK = ("/api/v1/executeJob.jsp", "/api/v1/getJobStatus.jsp", "/api/v1/stopJob.jsp")


def _run_scenario(w: World) -> dict[str, Any]:
    operation = {"opName": "RunScenario", "opParams": {"scenario": w.job, "parameters": {}}}
    return {"json": {"appId": w.project, "operation": operation}}


ENDPOINTS.update(
    {
        ("POST", INFOLINK[0]): (lambda w: (INFOLINK[0], _run_scenario(w)), 200),
        ("GET", INFOLINK[1]): (
            lambda w: (INFOLINK[1], {"params": {"appId": w.project, "jobId": w.execution}}),
            200,
        ),
        ("GET", INFOLINK[2]): (
            lambda w: (INFOLINK[2], {"params": {"appId": w.project, "jobId": _sleeping_run(w)}}),
            200,
        ),
    }
)


def _refusal(body: dict[str, Any]) -> tuple[Any, Any]:
    """(code, message) of an error answer, in jobport's shape or InfoLink's."""
    if body.get("status") == "error" and isinstance(body.get("result"), dict):
        return body["result"].get("code"), body["result"].get("message")
    return body.get("error"), body.get("message")


ROUTES = [r for r in route_table(create_app()) if not (r[3] or "").startswith("public")]
if any(path.startswith(SCHEDULES) for _, path, _, _ in ROUTES):
    _schedule_endpoints()


def test_every_route_declares_a_scope_and_is_in_the_matrix() -> None:
    undeclared = [(m, p) for m, p, _, scope in route_table(create_app()) if scope is None]
    # The OpenAPI document and its viewers are the only routes outside the access rules.
    assert {p for _, p in undeclared} <= {
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
    }
    served = {(m, p) for m, p, _, _ in ROUTES if p.startswith("/api/")}
    assert served - set(ENDPOINTS) == set(), "add the new endpoints to ENDPOINTS"
    assert set(ENDPOINTS) - served == set(), "ENDPOINTS names routes the app does not serve"


# --- the callers ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def matrix_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("matrix")
    srv = Server(
        f"sqlite:///{workdir / 'jobport.db'}",
        workdir,
        auth_failures_per_client="100000/minute",
        auth_failures_per_address="100000/minute",
    ).start()
    yield srv
    srv.stop()


def _db_path(server: Server) -> str:
    return server.database_url.removeprefix("sqlite:///")


@dataclass
class Callers:
    server: Server
    wrong_secret: str
    expired: str
    deleted: str
    deleted_wrong_secret: str  # a deleted key's client id with a wrong secret
    outside_firewall: str
    wrong_project: str  # Administrator of another project only
    read_only: str  # application Viewer
    project_admin: str  # Administrator of each world's project (added per world)
    admin: str  # application Administrator


@pytest.fixture(scope="module")
def callers(matrix_server: Server) -> Callers:
    server = matrix_server
    url = server.database_url
    with server.client() as admin:
        other = _name("other")
        assert admin.post("/api/v1/projects", json={"name": other}).status_code == 201

        client_id, _ = parse_key_string(server.key or "")
        wrong_secret = key_string(client_id, new_secret())

        expired = admin_key(url)
        with sqlite3.connect(_db_path(server)) as db:
            db.execute(
                "UPDATE api_keys SET expires_at = ? WHERE client_id = ?",
                (
                    (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).replace(tzinfo=None),
                    parse_key_string(expired)[0],
                ),
            )

        deleted = admin_key(url)
        assert admin.delete(f"/api/v1/keys/{parse_key_string(deleted)[0]}").status_code == 204
        deleted_wrong_secret = key_string(parse_key_string(deleted)[0], new_secret())

        fenced = admin.post(
            "/api/v1/keys",
            json={
                "description": "only from the office",
                "firewallRules": [{"name": "office", "startIp": "10.9.9.9", "endIp": "10.9.9.9"}],
            },
        ).json()
        assert (
            admin.post(
                "/api/v1/roles/Administrator/members",
                json={"type": "apiKey", "id": fenced["clientId"]},
            ).status_code
            == 201
        )
    return Callers(
        server=server,
        wrong_secret=wrong_secret,
        expired=expired,
        deleted=deleted,
        deleted_wrong_secret=deleted_wrong_secret,
        outside_firewall=fenced["key"],
        wrong_project=admin_key(url, role="Administrator", project=other),
        read_only=admin_key(url, role="Viewer"),
        project_admin=admin_key(url, role="Viewer", project=other),
        admin=server.key or "",
    )


def _world(server: Server, admin: httpx2.Client, project_admin: str) -> World:
    project = _name("p")
    assert admin.post("/api/v1/projects", json={"name": project}).status_code == 201
    job = {
        "name": "job",
        "steps": [{"name": "s", "kind": "command", "config": {"command": "true"}}],
    }
    assert admin.post(f"/api/v1/projects/{project}/jobs", json=job).status_code == 201
    run = admin.post(f"/api/v1/projects/{project}/jobs/job/execute", params={"wait": 20}).json()
    assert run["status"] == "succeeded", run
    key = admin.post("/api/v1/keys", json={"description": "target"}).json()["clientId"]
    role = _name("role")
    assert admin.post("/api/v1/roles", json={"name": role, "scopes": ["jobs:read"]}).is_success
    assert admin.post(
        f"/api/v1/roles/{role}/members", json={"type": "apiKey", "id": key}
    ).is_success
    prole = _name("prole")
    assert admin.post(
        f"/api/v1/projects/{project}/roles", json={"name": prole, "scopes": ["jobs:read"]}
    ).is_success
    assert admin.post(
        f"/api/v1/projects/{project}/roles/{prole}/members", json={"type": "apiKey", "id": key}
    ).is_success
    # The project administrator of this world holds Administrator on this project only.
    assert admin.post(
        f"/api/v1/projects/{project}/roles/Administrator/members",
        json={"type": "apiKey", "id": parse_key_string(project_admin)[0]},
    ).is_success
    return World(project, "job", run["id"], key, role, prole, admin)


_VOLATILE = {"api_keys": ("last_used_at", "last_used_ip"), "executions": ("heartbeat_at",)}


def _snapshot(server: Server) -> str:
    """A digest of everything a call could change, except the audit log and last-use marks."""
    digest = hashlib.sha256()
    with sqlite3.connect(_db_path(server)) as db:
        tables = [
            r[0]
            for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            if r[0] not in {"audit_log", "alembic_version"}
        ]
        for table in tables:
            columns = [
                c[1]
                for c in db.execute(f'PRAGMA table_info("{table}")')
                if c[1] not in _VOLATILE.get(table, ())
            ]
            cols = ", ".join(f'"{c}"' for c in columns)
            for row in db.execute(f'SELECT {cols} FROM "{table}" ORDER BY 1'):
                digest.update(repr((table, row)).encode())
    return digest.hexdigest()


def _expected_for(kind: str, method: str, path: str, scope: str, success: int) -> tuple[int, str]:
    on_project = path.startswith(
        ("/api/v1/projects/{project}", "/api/v1/executions/", BY_ID, *INFOLINK)
    )
    if kind == "none":
        return 401, "missing_credentials"
    if kind in {"wrong_secret", "deleted_wrong_secret"}:
        return 401, "invalid_credentials"  # only the secret tells what became of a key
    if kind == "expired":
        return 401, "key_expired"
    if kind == "deleted":
        return 401, "key_revoked"
    if kind == "outside_firewall":
        return 403, "ip_not_allowed"
    if scope == "authenticated":
        return success, ""
    if kind == "wrong_project":
        if (method, path) == ("GET", "/api/v1/projects"):
            return 200, ""  # a listing shows only what the caller may read
        if path.startswith(BY_ID):
            return 404, "job_not_found"  # by id, a job it may not see is one that is not there
        return (403, "project_forbidden") if on_project else (403, "insufficient_scope")
    if kind == "read_only":
        viewer = BUILTIN_ROLES["Viewer"][1]
        return (success, "") if covered(viewer, scope) else (403, "insufficient_scope")
    return success, ""


REFUSED_FIRST = [
    "none",
    "wrong_secret",
    "expired",
    "deleted",
    "deleted_wrong_secret",
    "outside_firewall",
    "wrong_project",
    "read_only",
]


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [(m, p, s) for m, p, _, s in ROUTES if p.startswith("/api/")],
    ids=[f"{m} {p}" for m, p, _, _ in ROUTES if p.startswith("/api/")],
)
def test_each_caller_gets_the_documented_answer(
    callers: Callers, method: str, path: str, scope: str
) -> None:
    server = callers.server
    build, success = ENDPOINTS[(method, path)]
    with server.client() as admin:
        world = _world(server, admin, callers.project_admin)
        url, kwargs = build(world)
        for kind in REFUSED_FIRST:
            expected_status, expected_code = _expected_for(kind, method, path, scope, success)
            if expected_code == "" and method != "GET":
                continue  # a permitted write would change the world: done last, below
            key = getattr(callers, kind) if kind != "none" else None
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            with server.client(anonymous=True, headers=headers) as client:
                before = _snapshot(server)
                response = client.request(method, url, **kwargs)
                after = _snapshot(server)
            assert response.status_code == expected_status, (kind, response.text)
            if expected_code:
                code, message = _refusal(response.json())
                assert code == expected_code, (kind, response.text)
                assert message
                assert before == after, f"a refused call ({kind}) changed the database"
                if expected_status == 401:
                    assert response.headers["www-authenticate"].startswith("Bearer")
            if kind == "wrong_project" and (method, path) == ("GET", "/api/v1/projects"):
                names = [p["name"] for p in response.json()["items"]]
                assert world.project not in names and len(names) == 1
        # The right role: an Administrator of this project for project calls, else of the app.
        on_project = path.startswith((P, BY_ID)) or "/executions/" in path
        right = callers.project_admin if on_project else None
        headers = {"Authorization": f"Bearer {right or callers.admin}"}
        with server.client(anonymous=True, headers=headers) as client:
            response = client.request(method, url, **kwargs)
        assert response.status_code == success, response.text
    # Runs this call started must end here, or they would move the next test's snapshots.
    wait_for(lambda: not _unsettled(server), timeout=30)


def _unsettled(server: Server) -> list[Any]:
    with sqlite3.connect(_db_path(server)) as db:
        query = "SELECT id FROM executions WHERE status IN ('queued', 'running', 'cancelling')"
        return db.execute(query).fetchall()
