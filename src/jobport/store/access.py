"""Access repository: users, API keys, roles, memberships, sessions, audit, server secrets."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from jobport.domain.pages import Page
from jobport.errors import Conflict, NotFound
from jobport.store.db import savepoint
from jobport.store.pagination import fetch_page
from jobport.store.tables import (
    api_keys,
    audit_log,
    role_members,
    roles,
    server_secrets,
    sessions,
    users,
)

APPLICATION = ""  # project_key of application-level roles and memberships


def _one(conn: Connection, query: Any) -> dict[str, Any] | None:
    row = conn.execute(query).first()
    return dict(row._mapping) if row is not None else None


# --- users ----------------------------------------------------------------------------------


def insert_user(conn: Connection, row: dict[str, Any]) -> None:
    clash = Conflict(f"a user named {row['username']!r} exists", code="already_exists")
    with savepoint(conn, clash=clash):
        conn.execute(insert(users).values(**row))


def find_user(conn: Connection, username: str) -> dict[str, Any] | None:
    return _one(conn, select(users).where(users.c.username == username))


def find_user_by_id(conn: Connection, user_id: str) -> dict[str, Any] | None:
    return _one(conn, select(users).where(users.c.id == user_id))


def count_users(conn: Connection) -> int:
    return len(conn.execute(select(users.c.id).limit(1)).all())


def list_users(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(select(users).order_by(users.c.username))]


def update_user(conn: Connection, user_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(**values))


# --- API keys -------------------------------------------------------------------------------


def insert_key(conn: Connection, row: dict[str, Any]) -> None:
    clash = Conflict(f"client id {row['client_id']!r} was already issued", code="client_id_taken")
    with savepoint(conn, clash=clash):
        conn.execute(insert(api_keys).values(**row))


# Built once: authentication runs these on every request, and building a statement costs
# more than running it.
_KEY = select(api_keys).where(api_keys.c.client_id == bindparam("client_id"))
_GRANTS = (
    select(roles.c.name, roles.c.scopes, role_members.c.project_id)
    .select_from(role_members.join(roles, roles.c.id == role_members.c.role_id))
    .where(
        role_members.c.member_type == bindparam("member_type"),
        role_members.c.member_id == bindparam("member_id"),
    )
    .order_by(roles.c.name)
)


def find_key(conn: Connection, client_id: str) -> dict[str, Any] | None:
    """A key by client id, deleted ones (tombstones) included."""
    row = conn.execute(_KEY, {"client_id": client_id}).first()
    return dict(row._mapping) if row is not None else None


def get_key(conn: Connection, client_id: str) -> dict[str, Any]:
    row = find_key(conn, client_id)
    if row is None or row["deleted_at"] is not None:
        raise NotFound(f"no API key {client_id!r}", code="key_not_found")
    return row


def list_keys(conn: Connection, *, cursor: str | None, limit: int) -> Page:
    return fetch_page(
        conn,
        select(api_keys).where(api_keys.c.deleted_at.is_(None)),
        api_keys.c.created_at,
        api_keys.c.client_id,
        descending=True,
        cursor=cursor,
        limit=limit,
    )


def update_key(conn: Connection, client_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(api_keys).where(api_keys.c.client_id == client_id).values(**values))


# --- roles and memberships ------------------------------------------------------------------


def insert_role(conn: Connection, row: dict[str, Any]) -> None:
    clash = Conflict(f"a role named {row['name']!r} exists here", code="already_exists")
    with savepoint(conn, clash=clash):
        conn.execute(insert(roles).values(**row))


def find_role(conn: Connection, project_key: str, name: str) -> dict[str, Any] | None:
    """A role visible at a level: the level's own roles, then the built-ins."""
    rows = conn.execute(
        select(roles).where(
            roles.c.name == name,
            or_(roles.c.project_key == project_key, roles.c.builtin.is_(True)),
        )
    ).all()
    rows.sort(key=lambda r: r.builtin)
    return dict(rows[0]._mapping) if rows else None


def list_roles(conn: Connection, project_key: str) -> list[dict[str, Any]]:
    query = (
        select(roles)
        .where(or_(roles.c.project_key == project_key, roles.c.builtin.is_(True)))
        .order_by(roles.c.builtin.desc(), roles.c.name)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def update_role(conn: Connection, role_id: str, values: dict[str, Any]) -> None:
    clash = Conflict(f"a role named {values.get('name')!r} exists here", code="already_exists")
    with savepoint(conn, clash=clash):
        conn.execute(update(roles).where(roles.c.id == role_id).values(**values))


def delete_role(conn: Connection, role_id: str) -> None:
    conn.execute(delete(roles).where(roles.c.id == role_id))


def members_of(conn: Connection, role_id: str, project_key: str) -> list[dict[str, Any]]:
    query = (
        select(role_members)
        .where(role_members.c.role_id == role_id, role_members.c.project_key == project_key)
        .order_by(role_members.c.member_type, role_members.c.member_id)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def add_member(conn: Connection, row: dict[str, Any]) -> bool:
    """Add a membership; False when it already existed."""
    try:
        with conn.begin_nested():
            conn.execute(insert(role_members).values(**row))
    except IntegrityError:
        return False
    return True


def remove_member(
    conn: Connection, role_id: str, project_key: str, member_type: str, member_id: str
) -> bool:
    result = conn.execute(
        delete(role_members).where(
            role_members.c.role_id == role_id,
            role_members.c.project_key == project_key,
            role_members.c.member_type == member_type,
            role_members.c.member_id == member_id,
        )
    )
    return bool(result.rowcount)


def remove_memberships_of(conn: Connection, member_type: str, member_id: str) -> None:
    conn.execute(
        delete(role_members).where(
            role_members.c.member_type == member_type, role_members.c.member_id == member_id
        )
    )


def grants_of(conn: Connection, member_type: str, member_id: str) -> list[dict[str, Any]]:
    """(role name, project id or None, scopes) for every membership of a principal."""
    params = {"member_type": member_type, "member_id": member_id}
    return [dict(r._mapping) for r in conn.execute(_GRANTS, params)]


# --- sessions -------------------------------------------------------------------------------


def insert_session(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(sessions).values(**row))


def find_session(conn: Connection, token_hash: str) -> dict[str, Any] | None:
    return _one(conn, select(sessions).where(sessions.c.token_hash == token_hash))


def delete_session(conn: Connection, token_hash: str) -> None:
    conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash))


def delete_expired_sessions(conn: Connection, now: dt.datetime) -> None:
    conn.execute(delete(sessions).where(sessions.c.expires_at < now))


# --- audit ----------------------------------------------------------------------------------


def insert_audit(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(audit_log), rows)


def list_audit(
    conn: Connection,
    *,
    principal: str | None,
    action: str | None,
    outcome: str | None,
    target: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    cursor: str | None,
    limit: int,
) -> Page:
    query = select(audit_log)
    if principal:
        query = query.where(audit_log.c.principal == principal)
    if action:
        query = query.where(audit_log.c.action == action)
    if outcome:
        query = query.where(audit_log.c.outcome == outcome)
    if target:
        query = query.where(audit_log.c.target.contains(target, autoescape=True))
    if since:
        query = query.where(audit_log.c.at >= since)
    if until:
        query = query.where(audit_log.c.at < until)
    return fetch_page(
        conn, query, audit_log.c.at, audit_log.c.id, descending=True, cursor=cursor, limit=limit
    )


# --- server secrets -------------------------------------------------------------------------


def server_secret(conn: Connection, name: str, make: Any, now: dt.datetime) -> str:
    """The named secret, created with `make()` on first use (the first writer wins)."""
    row = _one(conn, select(server_secrets).where(server_secrets.c.name == name))
    if row is not None:
        return str(row["value"])
    try:
        with conn.begin_nested():
            conn.execute(insert(server_secrets).values(name=name, value=make(), created_at=now))
    except IntegrityError:
        pass
    row = _one(conn, select(server_secrets).where(server_secrets.c.name == name))
    assert row is not None
    return str(row["value"])
