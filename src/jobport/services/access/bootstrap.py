"""What access needs before the first call: the built-in roles, the first admin user and the
token key in the database, and this process's AccessState made from them."""

from __future__ import annotations

import secrets

from jobport.domain.clock import utcnow
from jobport.errors import Conflict
from jobport.services.access.roles import add_membership, create_builtin_roles
from jobport.services.access.state import AccessState, limiter_for, write
from jobport.services.access.users import insert_user
from jobport.services.runtime import Runtime
from jobport.store import access as access_store


def bootstrap(rt: Runtime) -> str | None:
    """Built-in roles, the first admin user and the token key. Returns a generated password.

    Several nodes may start at once on a fresh database: the one that loses the race to
    insert the first rows sees a conflict, and simply runs again over what the winner made.
    """
    for attempt in range(3):
        try:
            return _bootstrap(rt)
        except Conflict:
            if attempt == 2:
                raise
    return None


def _bootstrap(rt: Runtime) -> str | None:
    now = utcnow()
    generated: str | None = None
    with write(rt) as conn:
        create_builtin_roles(conn, now)
        if access_store.count_users(conn) == 0:
            password = rt.settings.admin_password
            if not password:
                password = generated = secrets.token_urlsafe(12)
            user = insert_user(conn, rt.settings.admin_username, password, now)
            add_membership(conn, "Administrator", None, "user", user["username"], now)
        key = rt.settings.token_secret or access_store.server_secret(
            conn, "token_signing_key", lambda: secrets.token_urlsafe(48), now
        )
    rt.access = AccessState(
        signing_key=key, limiter=limiter_for(rt.settings.rate_limit_storage_url)
    )
    return generated


def state_of(rt: Runtime) -> AccessState:
    """This process's access state, bootstrapping on first use."""
    if rt.access is None:
        bootstrap(rt)
    assert rt.access is not None
    return rt.access  # type: ignore[no-any-return]
