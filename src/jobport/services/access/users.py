"""Console users: making them (with their roles), their passwords and how they are hashed."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from jobport.domain import access as rules
from jobport.domain.access import User
from jobport.domain.clock import utcnow
from jobport.domain.ids import new_id
from jobport.errors import Invalid, NotFound
from jobport.services.access.roles import add_memberships, roles_of
from jobport.services.access.state import write
from jobport.services.runtime import Runtime
from jobport.store import access as access_store

MIN_PASSWORD_LENGTH = 8

hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) defaults


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown users (same cost as a real check); made on first
    use, not at import, where it cost every process a fifth of a second."""
    return hasher.hash("a password nobody has")


def password_user(rt: Runtime, username: str, password: str) -> dict[str, Any] | None:
    """The enabled user with this password, or None; an unknown user costs the same check."""
    with rt.db.read() as conn:
        user = access_store.find_user(conn, username)
    stored = user["password_hash"] if user else _dummy_hash()
    try:
        hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    return user if user is not None and user["enabled"] else None


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters",
            code="weak_password",
            details=[{"field": "password", "reason": "too short"}],
        )


def insert_user(conn: Any, username: str, password: str, now: dt.datetime) -> dict[str, Any]:
    """A new enabled user, inside the caller's transaction."""
    if not rules.is_valid_username(username):
        raise Invalid(
            f"username {username!r} is not valid: 1-200 letters, digits, '_', '.', '@', '-'",
            code="invalid_username",
            details=[{"field": "username", "reason": "invalid"}],
        )
    _check_password(password)
    row = {
        "id": new_id(),
        "username": username,
        "password_hash": hasher.hash(password),
        "enabled": True,
        "created_at": now,
        "updated_at": now,
        "last_login_at": None,
    }
    access_store.insert_user(conn, row)
    return row


def create_user(
    rt: Runtime,
    username: str,
    password: str,
    roles: list[tuple[str, str | None]] = (),  # type: ignore[assignment]
) -> User:
    """A user with a password and, in the same transaction, roles as (role, project)."""
    now = utcnow()
    with write(rt) as conn:
        row = insert_user(conn, username, password, now)
        add_memberships(conn, roles, "user", username, now)
        return User.from_row(row, roles_of(conn, "user", username))


def set_password(rt: Runtime, username: str, password: str) -> None:
    _check_password(password)
    with write(rt) as conn:
        user = access_store.find_user(conn, username)
        if user is None:
            raise NotFound(f"no user {username!r}", code="user_not_found")
        access_store.update_user(
            conn, user["id"], {"password_hash": hasher.hash(password), "updated_at": utcnow()}
        )


def list_users(rt: Runtime) -> list[User]:
    with rt.db.read() as conn:
        return [
            User.from_row(u, roles_of(conn, "user", u["username"]))
            for u in access_store.list_users(conn)
        ]
