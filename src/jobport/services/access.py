"""Access use-cases: authenticate callers, authorise them, manage keys, roles, users, sessions."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, NoReturn

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import ValidationError

from jobport.domain import access as rules
from jobport.domain.access import BUILTIN_ROLES, FirewallRule, Grant, Principal, RoleSpec
from jobport.domain.clock import utcnow
from jobport.domain.ids import new_id
from jobport.domain.pages import Page
from jobport.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    Unauthenticated,
    error_details,
    invalid,
)
from jobport.services.runtime import Runtime
from jobport.store import access as access_store
from jobport.store import projects as project_store

log = logging.getLogger("jobport.access")
_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) defaults


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown users (same cost as a real check); made on first
    use, not at import, where it cost every process a fifth of a second."""
    return _hasher.hash("a password nobody has")


MIN_PASSWORD_LENGTH = 8


@dataclass
class AccessState:
    """Per-process access machinery: the token key, the failed-attempt limiter, and a
    short-lived cache of API keys with their grants (see _load_key)."""

    signing_key: str
    limiter: MovingWindowRateLimiter = field(
        default_factory=lambda: MovingWindowRateLimiter(MemoryStorage())
    )
    keys: dict[str, tuple[float, dict[str, Any], tuple[Grant, ...]]] = field(default_factory=dict)


@contextlib.contextmanager
def _write(rt: Runtime) -> Iterator[Any]:
    """A write transaction of access data; this process forgets its cached keys after it."""
    try:
        with rt.db.write() as conn:
            yield conn
    finally:
        if rt.access is not None:
            rt.access.keys.clear()


def _state(rt: Runtime) -> AccessState:
    if rt.access is None:
        bootstrap(rt)
    assert rt.access is not None
    return rt.access  # type: ignore[no-any-return]


# --- bootstrap ------------------------------------------------------------------------------


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
    with _write(rt) as conn:
        existing = {
            r["name"]
            for r in access_store.list_roles(conn, access_store.APPLICATION)
            if r["builtin"]
        }
        for name, (description, scopes) in BUILTIN_ROLES.items():
            if name not in existing:
                access_store.insert_role(
                    conn,
                    {
                        "id": new_id(),
                        "project_key": access_store.APPLICATION,
                        "project_id": None,
                        "name": name,
                        "description": description,
                        "scopes": list(scopes),
                        "builtin": True,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
        if access_store.count_users(conn) == 0:
            password = rt.settings.admin_password
            if not password:
                password = generated = secrets.token_urlsafe(12)
            user = _insert_user(conn, rt.settings.admin_username, password, now)
            _add_membership(conn, "Administrator", None, "user", user["username"], now)
        key = rt.settings.token_secret or access_store.server_secret(
            conn, "token_signing_key", lambda: secrets.token_urlsafe(48), now
        )
    rt.access = AccessState(signing_key=key)
    return generated


# --- authentication -------------------------------------------------------------------------
#
# Failed attempts are counted per address and per client id (per address and username for
# password logins). For API keys and tokens the counts only ever change the answer of an
# attempt that failed anyway (429 instead of 401): the credential is always checked first,
# so a flood of bad attempts from a shared address (a proxy, a NAT) or against a public
# client id never locks out the holder of a valid key or token. Guessing a key's secret is
# hopeless (about 238 bits, one HMAC to check), so these limits slow down and flag
# misbehaving clients rather than protect the secret. Passwords can be guessed: see login().
#
# A deleted, disabled or unknown key answers a wrong secret exactly like any other wrong
# secret, and the attempt counts the same way, so neither the answer nor the point where
# 429 starts tells whether a client id exists or what became of it. Only a caller who
# proves the secret learns that the key is revoked or expired.

_BAD_TOKEN = "the access token is not valid"
_BAD_LOGIN = "wrong username or password"


class _Counter(NamedTuple):
    """A count of failed attempts: its limit (a setting), identifiers, and name in a 429."""

    limit: str
    ident: tuple[str, ...]
    what: str


def _by_address(rt: Runtime, address: str) -> _Counter:
    return _Counter(rt.settings.auth_failures_per_address, ("address", address), f"from {address}")


def _by_client(rt: Runtime, client_id: str) -> _Counter:
    return _Counter(rt.settings.auth_failures_per_client, ("client", client_id), f"for {client_id}")


def _by_login(rt: Runtime, address: str, username: str) -> _Counter:
    return _Counter(
        rt.settings.auth_failures_per_client,
        ("login", address, username),
        f"for user {username} from {address}",
    )


def _retry_after(state: AccessState, item: Any, ident: tuple[str, ...]) -> int:
    reset = state.limiter.get_window_stats(item, *ident).reset_time
    return max(1, int(reset - dt.datetime.now(dt.UTC).timestamp()) + 1)


def _rate_limited(state: AccessState, item: Any, ident: tuple[str, ...], what: str) -> RateLimited:
    retry = _retry_after(state, item, ident)
    return RateLimited(f"too many failed attempts {what}; retry in {retry} s", retry_after=retry)


def _refuse(rt: Runtime, refusal: Unauthenticated, *counters: _Counter) -> NoReturn:
    """Count a failed attempt on every counter and raise its answer: `refusal`, or 429 once
    any counter is over its limit (naming the one that frees up last)."""
    state = _state(rt)
    over: list[RateLimited] = []
    for limit, ident, what in counters:
        item = parse(limit)
        # Every counter is hit, even past another's limit, so each one counts every failure.
        if not state.limiter.hit(item, *ident):
            over.append(_rate_limited(state, item, ident, what))
    if over:
        raise max(over, key=lambda e: e.retry_after) from None
    raise refusal from None


def _invalid(message: str = "the credentials are not valid") -> Unauthenticated:
    return Unauthenticated(message, code="invalid_credentials")


def _grants(conn: Any, member_type: str, member_id: str) -> tuple[Grant, ...]:
    return tuple(
        Grant(role=g["name"], project_id=g["project_id"], scopes=frozenset(g["scopes"]))
        for g in access_store.grants_of(conn, member_type, member_id)
    )


def _check_key_usable(row: dict[str, Any], now: dt.datetime) -> None:
    """Only for a caller who proved the key's secret: it may learn what became of the key."""
    if row["deleted_at"] is not None:
        raise Unauthenticated(f"API key {row['client_id']} was deleted", code="key_revoked")
    if not row["enabled"]:
        raise Unauthenticated(f"API key {row['client_id']} is disabled", code="key_revoked")
    if row["expires_at"] is not None and row["expires_at"] <= now:
        raise Unauthenticated(
            f"API key {row['client_id']} expired at {row['expires_at'].isoformat()}",
            code="key_expired",
        )


def _key_usable(row: dict[str, Any], now: dt.datetime) -> bool:
    return (
        row["deleted_at"] is None
        and bool(row["enabled"])
        and (row["expires_at"] is None or row["expires_at"] > now)
    )


def _secret_ok(rt: Runtime, row: dict[str, Any], secret: str, now: dt.datetime) -> bool:
    pepper = rt.settings.key_pepper
    if rules.secret_matches(secret, row["secret_hash"], pepper):
        return True
    until = row["previous_valid_until"]
    return (
        until is not None
        and until > now
        and rules.secret_matches(secret, row["previous_secret_hash"], pepper)
    )


def _key_principal(
    row: dict[str, Any], grants: tuple[Grant, ...], address: str, via: str
) -> Principal:
    if not rules.address_allowed(row["firewall_rules"], address):
        raise Forbidden(
            f"address {address} is not allowed by the firewall rules of API key {row['client_id']}",
            code="ip_not_allowed",
            details={"address": address},
        )
    return Principal(
        kind="apiKey",
        id=row["client_id"],
        name=row["client_id"],
        grants=grants,
        address=address,
        via=via,
    )


def _load_key(rt: Runtime, client_id: str) -> tuple[dict[str, Any] | None, tuple[Grant, ...]]:
    """The key row (None when unknown) and its grants, read together, and kept for
    `auth_cache_seconds`.

    Every check (secret, deleted, disabled, expiry, firewall) still runs on each call against
    the kept row. Any change to keys or roles made through this process empties the cache at
    once; a change made by another process (another node, `--local`) is seen within the
    cache time (default 1 s; 0 turns the cache off).
    """
    state = _state(rt)
    ttl = rt.settings.auth_cache_seconds
    now = time.monotonic()
    cached = state.keys.get(client_id)
    if cached is not None and now - cached[0] < ttl:
        return cached[1], cached[2]
    with rt.db.read() as conn:
        row = access_store.find_key(conn, client_id)
        grants = _grants(conn, "apiKey", client_id) if row is not None else ()
    if row is not None and ttl > 0:
        if len(state.keys) > 10_000:
            state.keys.clear()
        state.keys[client_id] = (now, row, grants)
    return row, grants


def _proven_key(
    rt: Runtime, client_id: str, secret: str, address: str, now: dt.datetime
) -> tuple[dict[str, Any], tuple[Grant, ...]]:
    """The key whose secret this is, still usable; any wrong secret is one and the same
    failure, whatever the key's state (unknown, deleted, disabled)."""
    row, grants = _load_key(rt, client_id)
    if row is None or not _secret_ok(rt, row, secret, now):
        _refuse(rt, _invalid(), _by_address(rt, address), _by_client(rt, client_id))
    _check_key_usable(row, now)
    return row, grants


def authenticate_key(rt: Runtime, key: str, address: str) -> Principal:
    """The principal of an API key string (`Authorization: Bearer jpk_...`)."""
    try:
        client_id, secret = rules.parse_key_string(key)
    except ValueError as exc:
        # The string's shape and checksum are public rules: saying which failed tells
        # nothing about any key, and there is no client id worth counting.
        _refuse(rt, _invalid(f"the API key is not valid: {exc}"), _by_address(rt, address))
    now = utcnow()
    row, grants = _proven_key(rt, client_id, secret, address, now)
    principal = _key_principal(row, grants, address, "key")
    _touch(rt, row, address, now)
    return principal


def _touch(rt: Runtime, row: dict[str, Any], address: str, now: dt.datetime) -> None:
    """Record last use, but write at most once per resolution period (or on a new address)."""
    last = row["last_used_at"]
    resolution = rt.settings.key_last_used_resolution_seconds
    if (
        last is not None
        and row["last_used_ip"] == address
        and (now - last).total_seconds() < resolution
    ):
        return
    with rt.db.write() as conn:
        access_store.update_key(
            conn, row["client_id"], {"last_used_at": now, "last_used_ip": address}
        )
    # The cached row (see _load_key) learns it too, so the next call does not write again.
    row["last_used_at"], row["last_used_ip"] = now, address


def issue_token(
    rt: Runtime, client_id: str, secret: str, scope: str | None, address: str
) -> dict[str, Any]:
    """OAuth2 client credentials: a signed JWT for the key, optionally with fewer scopes."""
    now = utcnow()
    if not rules.looks_like_client_id(client_id):
        # No key can have this id; it is not kept as a counter (it could be anything, and
        # long). The answer is the same as for a wrong secret.
        _refuse(rt, _invalid(), _by_address(rt, address))
    row, grants = _proven_key(rt, client_id, secret, address, now)
    principal = _key_principal(row, grants, address, "token")
    held = sorted({s for g in principal.grants for s in g.scopes})
    if scope:
        asked = sorted(set(scope.split()))
        for s in asked:
            try:
                rules.check_scope(s)
            except ValueError as exc:
                raise Invalid(str(exc), code="invalid_scope") from None
            if not any(rules.scope_covers(g, s) for g in held):
                raise Invalid(f"the key does not hold scope {s!r}", code="invalid_scope")
        granted = asked
    else:
        granted = held
    lifetime = rt.settings.token_lifetime_seconds
    expires = now + dt.timedelta(seconds=lifetime)
    if row["expires_at"] is not None and row["expires_at"] < expires:
        expires = row["expires_at"]
    claims = {
        "iss": rt.settings.token_issuer,
        "aud": rt.settings.token_audience,
        "sub": client_id,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": new_id(),
        "scope": " ".join(granted),
    }
    token = jwt.encode(claims, _state(rt).signing_key, algorithm="HS256")
    _touch(rt, row, address, now)
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": max(0, int((expires - now).total_seconds())),
        "scope": " ".join(granted),
    }


def authenticate_token(rt: Runtime, token: str, address: str) -> Principal:
    """The principal of an OAuth access token; the key is re-checked on every call.

    A token whose key was deleted, disabled or has expired is refused like a forged one, and
    counts as a failure: a token is not the secret, so its bearer (perhaps someone who found
    it in a log) does not learn what became of the key. The holder of the secret learns it
    at the token endpoint, where the SDK goes for a new token after a 401.
    """
    try:
        claims = jwt.decode(
            token,
            _state(rt).signing_key,
            algorithms=["HS256"],
            audience=rt.settings.token_audience,
            issuer=rt.settings.token_issuer,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        # Genuine but stale (the SDK replaces it on this 401): not a failed attempt.
        raise _invalid("the access token has expired") from None
    except jwt.PyJWTError:
        _refuse(rt, _invalid(_BAD_TOKEN), _by_address(rt, address))
    client_id = str(claims["sub"])
    now = utcnow()
    row, grants = _load_key(rt, client_id)
    if row is None or not _key_usable(row, now):
        _refuse(rt, _invalid(_BAD_TOKEN), _by_address(rt, address), _by_client(rt, client_id))
    principal = _key_principal(row, grants, address, "token")
    scopes = frozenset(str(claims.get("scope", "")).split())
    return Principal(
        kind=principal.kind,
        id=principal.id,
        name=principal.name,
        grants=principal.grants,
        token_scopes=scopes,
        address=address,
        via="token",
    )


def _session_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def login(rt: Runtime, username: str, password: str, address: str) -> dict[str, Any]:
    """Check a user's password; a new session (token, CSRF token, expiry).

    Passwords can be guessed, so unlike keys a login can be refused before its password is
    checked. The rule: failures count per (address, username) pair and per address. Once a
    pair is over `auth_failures_per_client`, that username is refused from that address with
    429 before any password check, the right password included (that is what stops guessing,
    and it costs no argon2). The address count only turns failing logins into 429s. So a
    flood from one address, or guessing against other usernames, never locks a user out:
    only failures for that very username from that very address do, until the window frees.
    """
    state = _state(rt)
    if not rules.is_valid_username(username):
        # No user can have this name (a public rule), so it costs no password check, and it
        # is not kept as a counter.
        _refuse(rt, _invalid(_BAD_LOGIN), _by_address(rt, address))
    pair = _by_login(rt, address, username)
    item = parse(pair.limit)
    if not state.limiter.test(item, *pair.ident):
        raise _rate_limited(state, item, pair.ident, pair.what)
    with rt.db.read() as conn:
        user = access_store.find_user(conn, username)
    stored = user["password_hash"] if user else _dummy_hash()  # same cost for unknown users
    try:
        _hasher.verify(stored, password)
        ok = user is not None and user["enabled"]
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None:
        _refuse(rt, _invalid(_BAD_LOGIN), _by_address(rt, address), pair)
    now = utcnow()
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    expires = now + dt.timedelta(seconds=rt.settings.session_lifetime_seconds)
    with _write(rt) as conn:
        access_store.delete_expired_sessions(conn, now)
        access_store.insert_session(
            conn,
            {
                "token_hash": _session_hash(token),
                "user_id": user["id"],
                "csrf_token": csrf,
                "address": address,
                "created_at": now,
                "expires_at": expires,
            },
        )
        values: dict[str, Any] = {"last_login_at": now}
        if _hasher.check_needs_rehash(user["password_hash"]):
            values["password_hash"] = _hasher.hash(password)
        access_store.update_user(conn, user["id"], values)
    return {"token": token, "csrf_token": csrf, "expires_at": expires, "username": username}


def logout(rt: Runtime, token: str) -> None:
    with _write(rt) as conn:
        access_store.delete_session(conn, _session_hash(token))


def authenticate_session(
    rt: Runtime, token: str, address: str, *, unsafe: bool, csrf: str | None
) -> Principal:
    """The user of a session cookie; unsafe methods must echo the CSRF token."""
    now = utcnow()
    with rt.db.read() as conn:
        session = access_store.find_session(conn, _session_hash(token))
        user = access_store.find_user_by_id(conn, session["user_id"]) if session else None
        if session is None or user is None or session["expires_at"] <= now:
            raise _invalid("the session has ended; log in again")
        if not user["enabled"]:
            raise Unauthenticated(f"user {user['username']} is disabled", code="key_revoked")
        if unsafe and not (csrf and secrets.compare_digest(csrf, session["csrf_token"])):
            raise Forbidden(
                "this request needs the session's X-CSRF-Token header", code="csrf_failed"
            )
        grants = _grants(conn, "user", user["username"])
    return Principal(
        kind="user",
        id=user["id"],
        name=user["username"],
        grants=grants,
        address=address,
        via="session",
        extra={"csrf_token": session["csrf_token"], "expires_at": session["expires_at"]},
    )


def local_principal(name: str = "local") -> Principal:
    """Whoever runs the CLI with --local: direct database access is already full power."""
    return Principal(
        kind="local",
        id=name,
        name=name,
        grants=(Grant("Administrator", None, frozenset({"*"})),),
        via="local",
    )


# --- authorisation --------------------------------------------------------------------------


def authorize(rt: Runtime, principal: Principal, scope: str, project_ref: str | None) -> str | None:
    """Raise Forbidden unless the principal holds `scope` there; returns the project id
    when it had to look the project up (None for application-level grants).

    `project_ref` None means the application level (keys, roles, audit, creating projects).
    """
    if project_ref is None:
        if not principal.allows(scope, None):
            raise _forbidden(principal, scope, None)
        return None
    if principal.allows(scope, None):
        return None  # held for every project: which one it is does not matter (no read)
    with rt.db.read() as conn:
        project = project_store.find(conn, project_ref)
    project_id = project["id"] if project else None
    if project_id is None:
        # Unknown project: only someone who may see every project learns that it is missing.
        if principal.project_ids(scope) is None:
            return None
        raise _forbidden(principal, scope, project_ref)
    if not principal.allows(scope, project_id):
        raise _forbidden(principal, scope, project_ref)
    return project_id  # type: ignore[no-any-return]


def check(principal: Principal, scope: str, project_id: str | None) -> None:
    """Like authorize, for a project already known by id (e.g. an execution's project)."""
    if not principal.allows(scope, project_id):
        raise _forbidden(principal, scope, project_id)


def _forbidden(principal: Principal, scope: str, project: str | None) -> Forbidden:
    code = principal.denial(scope, project)
    if code == "project_forbidden":
        return Forbidden(
            f"{principal.label} has no role that grants {scope!r} in project {project!r}",
            code=code,
            details={"scope": scope, "project": project},
        )
    where = f" in project {project!r}" if project else ""
    return Forbidden(
        f"this call needs scope {scope!r}{where}, which {principal.label} does not hold",
        code="insufficient_scope",
        details={"scope": scope},
    )


# --- API keys -------------------------------------------------------------------------------

_DEFAULT = object()


def _rules(value: Any) -> list[dict[str, Any]]:
    try:
        return [FirewallRule.model_validate(r).wire() for r in value or []]
    except ValidationError as exc:
        details = error_details(exc.errors(include_url=False), prefix="firewallRules")
        raise invalid(details, what="invalid firewall rule", code="invalid_firewall_rule") from None


def _check_expiry(expires_at: dt.datetime | None, now: dt.datetime) -> None:
    if expires_at is not None and expires_at <= now:
        raise Invalid(
            "expiresAt must be in the future",
            code="invalid_expiry",
            details=[{"field": "expiresAt", "reason": "in the past"}],
        )


def create_key(
    rt: Runtime,
    *,
    description: str = "",
    expires_at: Any = _DEFAULT,
    firewall_rules: list[Any] | None = None,
    created_by: str | None = None,
    roles: list[tuple[str, str | None]] = (),  # type: ignore[assignment]
) -> tuple[dict[str, Any], str]:
    """A new key; returns (row, secret). The secret is never stored or shown again."""
    now = utcnow()
    if expires_at is _DEFAULT:
        expires_at = now + dt.timedelta(days=rt.settings.key_default_days)
    _check_expiry(expires_at, now)
    rules_ = _rules(firewall_rules)
    secret = rules.new_secret()
    row = {
        "client_id": rules.new_client_id(),
        "secret_hash": rules.hash_secret(secret, rt.settings.key_pepper),
        "previous_secret_hash": None,
        "previous_valid_until": None,
        "description": description,
        "expires_at": expires_at,
        "enabled": True,
        "firewall_rules": rules_,
        "created_by": created_by,
        "created_at": now,
        "updated_at": now,
        "rotated_at": None,
        "last_used_at": None,
        "last_used_ip": None,
        "deleted_at": None,
    }
    with _write(rt) as conn:
        access_store.insert_key(conn, row)
        for role, project in roles:
            project_id = project_store.get(conn, project)["id"] if project else None
            _add_membership(conn, role, project_id, "apiKey", row["client_id"], now)
    return row, secret


def get_key(rt: Runtime, client_id: str) -> dict[str, Any]:
    with rt.db.read() as conn:
        row = access_store.get_key(conn, client_id)
        row["roles"] = _roles_of(conn, "apiKey", client_id)
    return row


def _roles_of(conn: Any, member_type: str, member_id: str) -> list[dict[str, Any]]:
    names = {p["id"]: p["name"] for p in _projects(conn)}
    return [
        {"role": g["name"], "project": names.get(g["project_id"]) if g["project_id"] else None}
        for g in access_store.grants_of(conn, member_type, member_id)
    ]


def _projects(conn: Any) -> list[dict[str, Any]]:
    return project_store.list_page(conn, cursor=None, limit=100_000).items


def list_keys(rt: Runtime, *, cursor: str | None, limit: int) -> Page:
    with rt.db.read() as conn:
        page = access_store.list_keys(conn, cursor=cursor, limit=limit)
        for row in page.items:
            row["roles"] = _roles_of(conn, "apiKey", row["client_id"])
    return page


def patch_key(
    rt: Runtime,
    client_id: str,
    changes: dict[str, Any],
    *,
    caller: Principal | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Edit description, expiry, firewall rules or enabled; refuse to lock the caller out."""
    now = utcnow()
    values: dict[str, Any] = {}
    if "description" in changes:
        values["description"] = changes["description"] or ""
    if "expires_at" in changes:
        _check_expiry(changes["expires_at"], now)
        values["expires_at"] = changes["expires_at"]
    if "firewall_rules" in changes:
        values["firewall_rules"] = _rules(changes["firewall_rules"])
    if "enabled" in changes:
        values["enabled"] = bool(changes["enabled"])
    with _write(rt) as conn:
        row = access_store.get_key(conn, client_id)
        after = {**row, **values}
        if caller is not None and caller.kind == "apiKey" and caller.id == client_id and not force:
            _guard_lock_out(after, caller.address)
        if values:
            access_store.update_key(conn, client_id, {**values, "updated_at": now})
    return get_key(rt, client_id)


def _guard_lock_out(after: dict[str, Any], address: str) -> None:
    reason = None
    if not rules.address_allowed(after["firewall_rules"], address):
        reason = f"the firewall rules would not allow your address {address}"
    elif not after["enabled"]:
        reason = "it would disable the key you are calling with"
    if reason:
        raise Conflict(
            f"this edit would lock you out: {reason}; send force=true to do it anyway",
            code="would_lock_out",
            details={"address": address},
        )


def add_current_address(
    rt: Runtime, client_id: str, address: str, name: str | None = None
) -> dict[str, Any]:
    """Append a single-address rule for the caller's address (the 'add my address' helper)."""
    with rt.db.read() as conn:
        row = access_store.get_key(conn, client_id)
    rules_ = list(row["firewall_rules"])
    if not any(r["startIp"] == address == r["endIp"] and r["enabled"] for r in rules_):
        rules_.append(
            {"name": name or f"added from {address}", "startIp": address, "endIp": address}
        )
    return patch_key(rt, client_id, {"firewall_rules": rules_})


def rotate_key(
    rt: Runtime, client_id: str, *, old_valid_until: dt.datetime | None = None
) -> tuple[dict[str, Any], str]:
    """A new secret; the old one keeps working until `old_valid_until` (default 24 h)."""
    now = utcnow()
    if old_valid_until is None:
        old_valid_until = now + dt.timedelta(hours=rt.settings.key_rotation_overlap_hours)
    if old_valid_until < now:
        raise Invalid(
            "oldSecretValidUntil must not be in the past",
            code="invalid_rotation",
            details=[{"field": "oldSecretValidUntil", "reason": "in the past"}],
        )
    secret = rules.new_secret()
    with _write(rt) as conn:
        row = access_store.get_key(conn, client_id)
        access_store.update_key(
            conn,
            client_id,
            {
                "secret_hash": rules.hash_secret(secret, rt.settings.key_pepper),
                "previous_secret_hash": row["secret_hash"],
                "previous_valid_until": old_valid_until,
                "rotated_at": now,
                "updated_at": now,
            },
        )
    return get_key(rt, client_id), secret


def delete_key(rt: Runtime, client_id: str) -> None:
    """Delete a key; its client id stays as a tombstone and is never issued again.

    The tombstone keeps the secret hashes (peppered HMACs, useless without the pepper and
    the secret), so whoever proves the secret is told the key was deleted (`key_revoked`),
    while a wrong secret gets the same answer as for any key. Tombstones made before this
    kept no hashes: every secret for them is simply wrong.
    """
    now = utcnow()
    with _write(rt) as conn:
        access_store.get_key(conn, client_id)
        access_store.update_key(
            conn, client_id, {"deleted_at": now, "updated_at": now, "enabled": False}
        )
        access_store.remove_memberships_of(conn, "apiKey", client_id)


# --- roles ----------------------------------------------------------------------------------


def _level(conn: Any, project_ref: str | None) -> tuple[str, str | None]:
    if project_ref is None:
        return access_store.APPLICATION, None
    project_id = project_store.get(conn, project_ref)["id"]
    return project_id, project_id


def _role(conn: Any, project_ref: str | None, name: str) -> tuple[dict[str, Any], str, str | None]:
    key, project_id = _level(conn, project_ref)
    role = access_store.find_role(conn, key, name)
    if role is None:
        where = f" in project {project_ref!r}" if project_ref else ""
        raise NotFound(f"no role {name!r}{where}", code="role_not_found")
    return role, key, project_id


def _with_members(conn: Any, role: dict[str, Any], key: str) -> dict[str, Any]:
    return {**role, "members": access_store.members_of(conn, role["id"], key)}


def list_roles(rt: Runtime, project_ref: str | None) -> list[dict[str, Any]]:
    with rt.db.read() as conn:
        key, _ = _level(conn, project_ref)
        return [_with_members(conn, r, key) for r in access_store.list_roles(conn, key)]


def get_role(rt: Runtime, project_ref: str | None, name: str) -> dict[str, Any]:
    with rt.db.read() as conn:
        role, key, _ = _role(conn, project_ref, name)
        return _with_members(conn, role, key)


def _parse_role(model: Any, data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = error_details(exc.errors(include_url=False))
        raise invalid(details, what="invalid role", code="invalid_role") from None


def create_role(rt: Runtime, project_ref: str | None, data: dict[str, Any]) -> dict[str, Any]:
    spec = _parse_role(RoleSpec, data)
    if spec.name in BUILTIN_ROLES:
        raise Conflict(f"{spec.name!r} is a built-in role", code="already_exists")
    now = utcnow()
    with _write(rt) as conn:
        key, project_id = _level(conn, project_ref)
        row = {
            "id": new_id(),
            "project_key": key,
            "project_id": project_id,
            "name": spec.name,
            "description": spec.description,
            "scopes": spec.scopes,
            "builtin": False,
            "created_at": now,
            "updated_at": now,
        }
        access_store.insert_role(conn, row)
        return _with_members(conn, row, key)


def patch_role(
    rt: Runtime, project_ref: str | None, name: str, data: dict[str, Any]
) -> dict[str, Any]:
    changes = _parse_role(rules.RolePatch, data).model_dump(exclude_unset=True)
    with _write(rt) as conn:
        role, key, _ = _role(conn, project_ref, name)
        _not_builtin(role, "changed")
        if changes.get("name") in BUILTIN_ROLES:
            raise Conflict(f"{changes['name']!r} is a built-in role", code="already_exists")
        values = {k: v for k, v in changes.items() if v is not None}
        if values:
            access_store.update_role(conn, role["id"], {**values, "updated_at": utcnow()})
        return _with_members(conn, {**role, **values}, key)


def _not_builtin(role: dict[str, Any], what: str) -> None:
    if role["builtin"]:
        raise Conflict(f"built-in role {role['name']!r} cannot be {what}", code="builtin_role")


def delete_role(rt: Runtime, project_ref: str | None, name: str) -> None:
    with _write(rt) as conn:
        role, _, _ = _role(conn, project_ref, name)
        _not_builtin(role, "deleted")
        access_store.delete_role(conn, role["id"])


def _check_member(conn: Any, member_type: str, member_id: str) -> None:
    if member_type == "apiKey":
        row = access_store.find_key(conn, member_id)
        if row is None or row["deleted_at"] is not None:
            raise NotFound(f"no API key {member_id!r}", code="key_not_found")
    elif member_type == "user":
        if access_store.find_user(conn, member_id) is None:
            raise NotFound(f"no user {member_id!r}", code="user_not_found")
    else:
        raise Invalid(
            f"member type must be one of {list(rules.MEMBER_TYPES)}, not {member_type!r}",
            code="invalid_member",
            details=[{"field": "type", "reason": "unknown member type"}],
        )


def _add_membership(
    conn: Any,
    role_name: str,
    project_id: str | None,
    member_type: str,
    member_id: str,
    now: dt.datetime,
) -> bool:
    key = project_id or access_store.APPLICATION
    role = access_store.find_role(conn, key, role_name)
    if role is None:
        raise NotFound(f"no role {role_name!r}", code="role_not_found")
    _check_member(conn, member_type, member_id)
    return access_store.add_member(
        conn,
        {
            "role_id": role["id"],
            "project_key": key,
            "project_id": project_id,
            "member_type": member_type,
            "member_id": member_id,
            "created_at": now,
        },
    )


def add_member(
    rt: Runtime, project_ref: str | None, role_name: str, member_type: str, member_id: str
) -> tuple[dict[str, Any], bool]:
    with _write(rt) as conn:
        role, key, project_id = _role(conn, project_ref, role_name)
        created = _add_membership(conn, role["name"], project_id, member_type, member_id, utcnow())
        return _with_members(conn, role, key), created


def remove_member(
    rt: Runtime, project_ref: str | None, role_name: str, member_type: str, member_id: str
) -> None:
    with _write(rt) as conn:
        role, key, _ = _role(conn, project_ref, role_name)
        if not access_store.remove_member(conn, role["id"], key, member_type, member_id):
            raise NotFound(
                f"{member_type} {member_id!r} is not a member of role {role_name!r}",
                code="member_not_found",
            )


# --- users ----------------------------------------------------------------------------------


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters",
            code="weak_password",
            details=[{"field": "password", "reason": "too short"}],
        )


def _insert_user(conn: Any, username: str, password: str, now: dt.datetime) -> dict[str, Any]:
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
        "password_hash": _hasher.hash(password),
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
) -> dict[str, Any]:
    now = utcnow()
    with _write(rt) as conn:
        row = _insert_user(conn, username, password, now)
        for role, project in roles:
            project_id = project_store.get(conn, project)["id"] if project else None
            _add_membership(conn, role, project_id, "user", username, now)
    return row


def set_password(rt: Runtime, username: str, password: str) -> None:
    _check_password(password)
    with _write(rt) as conn:
        user = access_store.find_user(conn, username)
        if user is None:
            raise NotFound(f"no user {username!r}", code="user_not_found")
        access_store.update_user(
            conn, user["id"], {"password_hash": _hasher.hash(password), "updated_at": utcnow()}
        )


def list_users(rt: Runtime) -> list[dict[str, Any]]:
    with rt.db.read() as conn:
        users = access_store.list_users(conn)
        for user in users:
            user["roles"] = _roles_of(conn, "user", user["username"])
    return users


def describe(rt: Runtime, principal: Principal) -> dict[str, Any]:
    """The principal, its roles and effective scopes (GET /me)."""
    with rt.db.read() as conn:
        names = {p["id"]: p["name"] for p in _projects(conn)}
    scopes = {
        (names.get(level, level) if level != "application" else level): s
        for level, s in principal.effective_scopes().items()
    }
    return {
        "type": principal.kind,
        "id": principal.id,
        "name": principal.name,
        "authenticatedBy": principal.via,
        "address": principal.address,
        "roles": [
            {"role": g.role, "project": names.get(g.project_id) if g.project_id else None}
            for g in principal.grants
        ],
        "scopes": scopes,
        "tokenScopes": sorted(principal.token_scopes)
        if principal.token_scopes is not None
        else None,
    }
