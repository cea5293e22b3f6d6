"""Access on both databases: bootstrap, keys and tombstones, memberships, sessions, audit."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import pytest

from jobport.domain.access import key_string, new_client_id, new_secret
from jobport.errors import Conflict, Forbidden, NotFound, RateLimited, Unauthenticated
from jobport.services import access, audit, projects
from jobport.services.runtime import Runtime
from jobport.settings import Settings
from jobport.store import access as access_store
from jobport.store.db import Database


@pytest.fixture
def rt(db: Database) -> Runtime:
    runtime = Runtime(Settings(database_url="sqlite://", admin_password="first-admin-pw"), db)
    access.bootstrap(runtime)
    return runtime


def test_bootstrap_is_idempotent_and_makes_one_admin(rt: Runtime) -> None:
    assert access.bootstrap(rt) is None  # users exist: no new password
    with rt.db.read() as conn:
        builtins = [
            r["name"]
            for r in access_store.list_roles(conn, access_store.APPLICATION)
            if r["builtin"]
        ]
        assert sorted(builtins) == ["Administrator", "Operator", "Viewer"]
        assert [u["username"] for u in access_store.list_users(conn)] == ["admin"]
        grants = access_store.grants_of(conn, "user", "admin")
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
        assert len(access_store.list_users(conn)) == 1
        assert len(access_store.list_roles(conn, access_store.APPLICATION)) == 3


def test_a_key_authenticates_and_carries_its_project_grants(rt: Runtime) -> None:
    project = projects.create(rt, "alpha")
    row, secret = access.create_key(rt, description="ci", roles=[("Operator", "alpha")])
    principal = access.authenticate_key(rt, key_string(row.client_id, secret), "10.0.0.1")
    assert principal.allows("jobs:execute", project.id)
    assert not principal.allows("jobs:write", project.id)
    assert access.authorize(rt, principal, "jobs:read", "alpha") == project.id
    projects.create(rt, "beta")
    with pytest.raises(Forbidden) as refused:
        access.authorize(rt, principal, "jobs:read", "beta")
    assert refused.value.code == "project_forbidden"


def refusal(call: Callable[[], object]) -> tuple[str, str]:
    with pytest.raises(Unauthenticated) as refused:
        call()
    return refused.value.code, refused.value.message


def test_deleting_a_key_keeps_a_tombstone_and_drops_memberships(rt: Runtime) -> None:
    row, secret = access.create_key(rt, roles=[("Viewer", None)])
    client_id = row.client_id
    with rt.db.read() as conn:
        stored = access_store.find_key(conn, client_id)
    access.delete_key(rt, client_id)
    with rt.db.read() as conn:
        tomb = access_store.find_key(conn, client_id)
        assert tomb is not None and tomb["deleted_at"] is not None
        # The hash stays, so the holder of the secret (and only they) hear why.
        assert tomb["secret_hash"] == stored["secret_hash"]
        assert access_store.grants_of(conn, "apiKey", client_id) == []
    with pytest.raises(NotFound):
        access.get_key(rt, client_id)
    right = key_string(client_id, secret)
    assert refusal(lambda: access.authenticate_key(rt, right, "10.0.0.1"))[0] == "key_revoked"
    assert refusal(lambda: access.issue_token(rt, client_id, secret, None, "10.0.0.1")) == (
        "key_revoked",
        f"API key {client_id} was deleted",
    )
    wrong = key_string(client_id, new_secret())
    unknown = key_string(new_client_id(), new_secret())
    assert (
        refusal(lambda: access.authenticate_key(rt, wrong, "10.0.0.1"))
        == refusal(lambda: access.authenticate_key(rt, unknown, "10.0.0.1"))
        == ("invalid_credentials", "the credentials are not valid")
    )
    with rt.db.write() as conn, pytest.raises(Conflict):
        access_store.insert_key(conn, {**stored, "deleted_at": None})


def test_a_tombstone_kept_without_its_hashes_refuses_even_the_right_secret_alike(
    rt: Runtime,
) -> None:
    """Tombstones made before the hashes were kept: every secret is simply wrong."""
    row, secret = access.create_key(rt)
    access.delete_key(rt, row.client_id)
    with rt.db.write() as conn:
        access_store.update_key(conn, row.client_id, {"secret_hash": None})
    right = key_string(row.client_id, secret)
    assert refusal(lambda: access.authenticate_key(rt, right, "10.0.0.1")) == (
        "invalid_credentials",
        "the credentials are not valid",
    )


def test_failures_never_refuse_a_valid_key_but_do_stop_password_guessing(db: Database) -> None:
    settings = Settings(
        admin_password="first-admin-pw",
        auth_failures_per_client="2/minute",
        auth_failures_per_address="3/minute",
    )
    rt = Runtime(settings, db)
    access.bootstrap(rt)
    row, secret = access.create_key(rt, roles=[("Viewer", None)])
    client_id, here = row.client_id, "10.0.0.9"
    wrong = key_string(client_id, new_secret())
    codes = []
    for _ in range(5):
        try:
            access.authenticate_key(rt, wrong, here)
        except (Unauthenticated, RateLimited) as exc:
            codes.append(exc.code)
        # Over both limits, the right secret from the same address still passes.
        assert access.authenticate_key(rt, key_string(client_id, secret), here).id == client_id
    assert codes == ["invalid_credentials"] * 2 + ["rate_limited"] * 3

    for _ in range(2):
        with pytest.raises(Unauthenticated):
            access.login(rt, "admin", "not the password", "10.0.0.1")
    with pytest.raises(RateLimited) as guessing:
        access.login(rt, "admin", "first-admin-pw", "10.0.0.1")  # the right one, too late
    assert guessing.value.retry_after >= 1 and "admin" in guessing.value.message
    assert access.login(rt, "admin", "first-admin-pw", "10.0.0.2").username == "admin"


def test_project_roles_go_with_their_project(rt: Runtime) -> None:
    projects.create(rt, "gamma")
    access.create_role(rt, "gamma", {"name": "Runner", "scopes": ["jobs:execute"]})
    row, _ = access.create_key(rt)
    access.add_member(rt, "gamma", "Runner", "apiKey", row.client_id)
    access.add_member(rt, "gamma", "Viewer", "apiKey", row.client_id)
    assert {r.name for r in access.list_roles(rt, "gamma")} >= {"Runner", "Viewer"}
    assert "Runner" not in {r.name for r in access.list_roles(rt, None)}
    projects.delete(rt, "gamma")
    with rt.db.read() as conn:
        assert access_store.grants_of(conn, "apiKey", row.client_id) == []


def test_sessions_end_at_logout(rt: Runtime) -> None:
    session = access.login(rt, "admin", "first-admin-pw", "10.0.0.2")
    user = access.authenticate_session(rt, session.token, "10.0.0.2", unsafe=False, csrf=None)
    assert user.name == "admin" and user.allows("keys:write")
    access.logout(rt, session.token)
    with pytest.raises(Unauthenticated):
        access.authenticate_session(rt, session.token, "10.0.0.2", unsafe=False, csrf=None)


def test_audit_pages_newest_first_with_filters(rt: Runtime) -> None:
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for i in range(5):
        row = audit.entry(action="execute_job", outcome="ok" if i % 2 else "denied")
        audit.record(rt, {**row, "at": base + dt.timedelta(minutes=i), "principal": f"p{i}"})
    first = audit.list_page(rt, limit=2)
    assert [r.principal for r in first.items] == ["p4", "p3"]
    second = audit.list_page(rt, limit=2, cursor=first.next_cursor)
    assert [r.principal for r in second.items] == ["p2", "p1"]
    denied = audit.list_page(rt, outcome="denied")
    assert [r.principal for r in denied.items] == ["p4", "p2", "p0"]
