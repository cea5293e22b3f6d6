"""Access on both databases: bootstrap, keys and tombstones, memberships, sessions, audit."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from jobport.domain.access import key_string
from jobport.errors import Conflict, Forbidden, NotFound, Unauthenticated
from jobport.services import access, audit, projects
from jobport.services.runtime import Runtime
from jobport.settings import Settings
from jobport.store import access as store
from jobport.store.db import Database


@pytest.fixture
def rt(db: Database) -> Runtime:
    runtime = Runtime(Settings(database_url="sqlite://", admin_password="first-admin-pw"), db)
    access.bootstrap(runtime)
    return runtime


def test_bootstrap_is_idempotent_and_makes_one_admin(rt: Runtime) -> None:
    assert access.bootstrap(rt) is None  # users exist: no new password
    with rt.db.read() as conn:
        builtins = [r["name"] for r in store.list_roles(conn, store.APPLICATION) if r["builtin"]]
        assert sorted(builtins) == ["Administrator", "Operator", "Viewer"]
        assert [u["username"] for u in store.list_users(conn)] == ["admin"]
        grants = store.grants_of(conn, "user", "admin")
    assert [(g["name"], g["project_id"]) for g in grants] == [("Administrator", None)]


def test_concurrent_bootstraps_agree_on_one_signing_key(db: Database) -> None:
    runtimes = [Runtime(Settings(admin_password="first-admin-pw"), db) for _ in range(4)]
    errors: list[BaseException] = []

    def boot(r: Runtime) -> None:
        try:
            access.bootstrap(r)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=boot, args=(r,)) for r in runtimes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({r.access.signing_key for r in runtimes}) == 1
    with db.read() as conn:
        assert len(store.list_users(conn)) == 1
        assert len(store.list_roles(conn, store.APPLICATION)) == 3


def test_a_key_authenticates_and_carries_its_project_grants(rt: Runtime) -> None:
    project = projects.create(rt, "alpha")
    row, secret = access.create_key(rt, description="ci", roles=[("Operator", "alpha")])
    principal = access.authenticate_key(rt, key_string(row["client_id"], secret), "10.0.0.1")
    assert principal.allows("jobs:execute", project["id"])
    assert not principal.allows("jobs:write", project["id"])
    assert access.authorize(rt, principal, "jobs:read", "alpha") == project["id"]
    projects.create(rt, "beta")
    with pytest.raises(Forbidden) as refused:
        access.authorize(rt, principal, "jobs:read", "beta")
    assert refused.value.code == "project_forbidden"


def test_deleting_a_key_keeps_a_tombstone_and_drops_memberships(rt: Runtime) -> None:
    row, secret = access.create_key(rt, roles=[("Viewer", None)])
    access.delete_key(rt, row["client_id"])
    with rt.db.read() as conn:
        tomb = store.find_key(conn, row["client_id"])
        assert tomb is not None and tomb["deleted_at"] is not None
        assert tomb["secret_hash"] is None
        assert store.grants_of(conn, "apiKey", row["client_id"]) == []
    with pytest.raises(NotFound):
        access.get_key(rt, row["client_id"])
    with pytest.raises(Unauthenticated) as refused:
        access.authenticate_key(rt, key_string(row["client_id"], secret), "10.0.0.1")
    assert refused.value.code == "key_revoked"
    with rt.db.write() as conn, pytest.raises(Conflict):
        store.insert_key(conn, {**row, "deleted_at": None})


def test_project_roles_go_with_their_project(rt: Runtime) -> None:
    projects.create(rt, "gamma")
    access.create_role(rt, "gamma", {"name": "Runner", "scopes": ["jobs:execute"]})
    row, _ = access.create_key(rt)
    access.add_member(rt, "gamma", "Runner", "apiKey", row["client_id"])
    access.add_member(rt, "gamma", "Viewer", "apiKey", row["client_id"])
    assert {r["name"] for r in access.list_roles(rt, "gamma")} >= {"Runner", "Viewer"}
    assert "Runner" not in {r["name"] for r in access.list_roles(rt, None)}
    projects.delete(rt, "gamma")
    with rt.db.read() as conn:
        assert store.grants_of(conn, "apiKey", row["client_id"]) == []


def test_sessions_end_at_logout(rt: Runtime) -> None:
    session = access.login(rt, "admin", "first-admin-pw", "10.0.0.2")
    user = access.authenticate_session(rt, session["token"], "10.0.0.2", unsafe=False, csrf=None)
    assert user.name == "admin" and user.allows("keys:write")
    access.logout(rt, session["token"])
    with pytest.raises(Unauthenticated):
        access.authenticate_session(rt, session["token"], "10.0.0.2", unsafe=False, csrf=None)


def test_audit_pages_newest_first_with_filters(rt: Runtime) -> None:
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for i in range(5):
        row = audit.entry(action="execute_job", outcome="ok" if i % 2 else "denied")
        audit.record(rt, {**row, "at": base + dt.timedelta(minutes=i), "principal": f"p{i}"})
    first = audit.list_page(rt, limit=2)
    assert [r["principal"] for r in first.items] == ["p4", "p3"]
    second = audit.list_page(rt, limit=2, cursor=first.next_cursor)
    assert [r["principal"] for r in second.items] == ["p2", "p1"]
    denied = audit.list_page(rt, outcome="denied")
    assert [r["principal"] for r in denied.items] == ["p4", "p2", "p0"]
