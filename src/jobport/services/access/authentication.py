"""Authentication: who calls. API keys and their access tokens, console sessions (login,
logout), and the failed-attempt counting that slows down whoever keeps getting it wrong:
one module, because they share one rule, read together below (a credential is always
checked before any count can refuse it)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
import time
from typing import Any, NamedTuple, NoReturn

import jwt
from limits import parse

from jobport import metrics
from jobport.domain import access as rules
from jobport.domain.access import AccessToken, Grant, Principal, Session
from jobport.domain.clock import utcnow
from jobport.domain.ids import new_id
from jobport.errors import APIError, Forbidden, Invalid, RateLimited, Unauthenticated
from jobport.services.access.bootstrap import state_of
from jobport.services.access.state import AccessState, write
from jobport.services.access.users import hasher, password_user
from jobport.services.runtime import Runtime
from jobport.store import access as access_store

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
# Scope words that ask for no fewer rights than the key holds (a vendor's name for "all").
_OWN_RIGHTS = frozenset({"webApi"})
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
    state = state_of(rt)
    over: list[RateLimited] = []
    for limit, ident, what in counters:
        item = parse(limit)
        # Every counter is hit, even past another's limit, so each one counts every failure.
        if not state.limiter.hit(item, *ident):
            over.append(_rate_limited(state, item, ident, what))
    if over:
        raise _failed(max(over, key=lambda e: e.retry_after)) from None
    raise _failed(refusal) from None


def _failed(refusal: APIError) -> APIError:
    """Count a refused credential (jobport_auth_failures_total, by the code the caller
    gets) and return the refusal to raise."""
    metrics.auth_failure(refusal.code)
    return refusal


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
        raise _failed(
            Unauthenticated(f"API key {row['client_id']} was deleted", code="key_revoked")
        )
    if not row["enabled"]:
        raise _failed(
            Unauthenticated(f"API key {row['client_id']} is disabled", code="key_revoked")
        )
    if row["expires_at"] is not None and row["expires_at"] <= now:
        raise _failed(
            Unauthenticated(
                f"API key {row['client_id']} expired at {row['expires_at'].isoformat()}",
                code="key_expired",
            )
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
        raise _failed(
            Forbidden(
                f"address {address} is not allowed by the firewall rules of API key "
                f"{row['client_id']}",
                code="ip_not_allowed",
                details={"address": address},
            )
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
    state = state_of(rt)
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
) -> AccessToken:
    """OAuth2 client credentials: a signed JWT for the key, optionally with fewer scopes."""
    now = utcnow()
    if not rules.looks_like_client_id(client_id):
        # No key can have this id; it is not kept as a counter (it could be anything, and
        # long). The answer is the same as for a wrong secret.
        _refuse(rt, _invalid(), _by_address(rt, address))
    row, grants = _proven_key(rt, client_id, secret, address, now)
    principal = _key_principal(row, grants, address, "token")
    held = sorted({s for g in principal.grants for s in g.scopes})
    words = set((scope or "").split())
    # Loome's scripts ask for `webApi`: the whole API, as far as the key's roles allow.
    own_rights = bool(words & _OWN_RIGHTS)
    if words - _OWN_RIGHTS:
        asked = sorted(words - _OWN_RIGHTS)
        for s in asked:
            try:
                rules.check_scope(s)
            except ValueError as exc:
                raise Invalid(str(exc), code="invalid_scope") from None
            if not any(rules.scope_covers(g, s) for g in held):
                raise Invalid(f"the key does not hold scope {s!r}", code="invalid_scope")
        granted = held if own_rights else asked
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
    token = jwt.encode(claims, state_of(rt).signing_key, algorithm="HS256")
    _touch(rt, row, address, now)
    return AccessToken(
        access_token=token,
        expires_in=max(0, int((expires - now).total_seconds())),
        scope=" ".join(granted),
    )


def _access_claims(rt: Runtime, token: str, audience: str | None = None) -> dict[str, Any]:
    """A token's claims, signature, audience (an access token's unless given), issuer and
    expiry checked (PyJWTError if any fails)."""
    return jwt.decode(  # type: ignore[no-any-return]
        token,
        state_of(rt).signing_key,
        algorithms=["HS256"],
        audience=audience or rt.settings.token_audience,
        issuer=rt.settings.token_issuer,
        options={"require": ["exp", "iss", "aud", "sub"]},
    )


def authenticate_token(rt: Runtime, token: str, address: str) -> Principal:
    """The principal of an OAuth access token; the key is re-checked on every call.

    A token whose key was deleted, disabled or has expired is refused like a forged one, and
    counts as a failure: a token is not the secret, so its bearer (perhaps someone who found
    it in a log) does not learn what became of the key. The holder of the secret learns it
    at the token endpoint, where the SDK goes for a new token after a 401.
    """
    try:
        claims = _access_claims(rt, token)
    except jwt.ExpiredSignatureError:
        # Genuine but stale (the SDK replaces it on this 401): not a failed attempt, and not
        # counted as an authentication failure either.
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
    return dataclasses.replace(principal, token_scopes=scopes)


def _session_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _checked_password(rt: Runtime, username: str, password: str, address: str) -> dict[str, Any]:
    """The user whose password this is, with guessing slowed (see login()); else
    Unauthenticated or RateLimited."""
    state = state_of(rt)
    if not rules.is_valid_username(username):
        # No user can have this name (a public rule), so it costs no password check, and it
        # is not kept as a counter.
        _refuse(rt, _invalid(_BAD_LOGIN), _by_address(rt, address))
    pair = _by_login(rt, address, username)
    item = parse(pair.limit)
    if not state.limiter.test(item, *pair.ident):
        raise _failed(_rate_limited(state, item, pair.ident, pair.what))
    user = password_user(rt, username, password)
    if user is None:
        _refuse(rt, _invalid(_BAD_LOGIN), _by_address(rt, address), pair)
    return user  # type: ignore[no-any-return]


def login(rt: Runtime, username: str, password: str, address: str) -> Session:
    """Check a user's password; a new session (token, CSRF token, expiry).

    Passwords can be guessed, so unlike keys a login can be refused before its password is
    checked. The rule: failures count per (address, username) pair and per address. Once a
    pair is over `auth_failures_per_client`, that username is refused from that address with
    429 before any password check, the right password included (that is what stops guessing,
    and it costs no argon2). The address count only turns failing logins into 429s. So a
    flood from one address, or guessing against other usernames, never locks a user out:
    only failures for that very username from that very address do, until the window frees.
    """
    user = _checked_password(rt, username, password, address)
    now = utcnow()
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    expires = now + dt.timedelta(seconds=rt.settings.session_lifetime_seconds)
    with write(rt) as conn:
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
        if hasher.check_needs_rehash(user["password_hash"]):
            values["password_hash"] = hasher.hash(password)
        access_store.update_user(conn, user["id"], values)
    return Session(token=token, csrf_token=csrf, expires_at=expires, username=username)


def logout(rt: Runtime, token: str) -> None:
    with write(rt) as conn:
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
            raise _failed(_invalid("the session has ended; log in again"))
        if not user["enabled"]:
            raise _failed(
                Unauthenticated(f"user {user['username']} is disabled", code="key_revoked")
            )
        if unsafe and not (csrf and secrets.compare_digest(csrf, session["csrf_token"])):
            raise _failed(
                Forbidden(
                    "this request needs the session's X-CSRF-Token header", code="csrf_failed"
                )
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


# --- token pairs: refresh tokens, and access tokens for users (the InfoLink face's grants) ---
#
# A refresh token is a JWT like an access token, with an audience of its own (so no API
# accepts it as an access token) and `typ: refresh`. It is not kept anywhere: each use checks
# that its key or user still exists and is enabled (and, for a user, that the password has
# not changed since; for a key, that the secret it was got with is still valid, so rotating
# a leaked secret ends it once the old secret's overlap ends), so disabling or deleting
# either ends it at once. A user's access token
# carries the same password mark, so a new password ends it too (a key's access token ends
# with its key, as authenticate_token says).

REFRESH_LIFETIME_SECONDS = 30 * 24 * 3600
_BAD_REFRESH = "the refresh token is not valid"


class TokenPair(NamedTuple):
    """An access token with the refresh token that gets the next one."""

    access: AccessToken
    refresh_token: str


def _refresh_audience(rt: Runtime) -> str:
    return f"{rt.settings.token_audience}:refresh"


def _password_mark(password_hash: str) -> str:
    """A digest of a stored password or secret hash: a password change ends a user's tokens,
    and a key's rotation the refresh tokens got with its old secret."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:24]


def _secret_marks(row: dict[str, Any], now: dt.datetime) -> set[str]:
    """The marks of the key's secrets that still work: the current one, and the one before
    a rotation until its overlap ends."""
    marks = {_password_mark(row["secret_hash"])}
    until = row["previous_valid_until"]
    if row["previous_secret_hash"] and until is not None and until > now:
        marks.add(_password_mark(row["previous_secret_hash"]))
    return marks


def _signed(rt: Runtime, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, state_of(rt).signing_key, algorithm="HS256")


def _pair(
    rt: Runtime,
    subject: str,
    kind: str,
    scope: str,
    now: dt.datetime,
    until: dt.datetime | None,
    extra: dict[str, Any],
) -> TokenPair:
    """An access token for `subject` (a key's client id, or `user:<id>`) and its refresh
    token, neither outliving `until` (a key's expiry)."""
    expires = now + dt.timedelta(seconds=rt.settings.token_lifetime_seconds)
    refresh_expires = now + dt.timedelta(seconds=REFRESH_LIFETIME_SECONDS)
    if until is not None:
        expires, refresh_expires = min(expires, until), min(refresh_expires, until)
    common = {"iss": rt.settings.token_issuer, "sub": subject, "iat": int(now.timestamp())}
    access_claims = {
        **common,
        "aud": rt.settings.token_audience,
        "exp": int(expires.timestamp()),
        "jti": new_id(),
        "scope": scope,
        **({"typ": "user", **extra} if kind == "user" else {}),
    }
    refresh_claims = {
        **common,
        "aud": _refresh_audience(rt),
        "exp": int(refresh_expires.timestamp()),
        "jti": new_id(),
        "typ": "refresh",
        "kind": kind,
        "scope": scope,
        **extra,
    }
    access = AccessToken(
        access_token=_signed(rt, access_claims),
        expires_in=max(0, int((expires - now).total_seconds())),
        scope=scope,
    )
    return TokenPair(access, _signed(rt, refresh_claims))


def issue_token_pair(
    rt: Runtime, client_id: str, secret: str, scope: str | None, address: str
) -> TokenPair:
    """OAuth2 client credentials with a refresh token: issue_token's access token (so the
    same checks and scopes), and a refresh token for the same key and scopes."""
    issued = issue_token(rt, client_id, secret, scope, address)
    row, _ = _load_key(rt, client_id)  # just proven by issue_token (and cached)
    assert row is not None
    current = rules.secret_matches(secret, row["secret_hash"], rt.settings.key_pepper)
    used = row["secret_hash"] if current else row["previous_secret_hash"]
    mark = {"sec": _password_mark(used)}
    refresh = _pair(rt, client_id, "apiKey", issued.scope, utcnow(), row["expires_at"], mark)
    return TokenPair(issued, refresh.refresh_token)


def _user_pair(rt: Runtime, user: dict[str, Any], now: dt.datetime) -> TokenPair:
    with rt.db.read() as conn:
        grants = _grants(conn, "user", user["username"])
    scope = " ".join(sorted({s for g in grants for s in g.scopes}))
    mark = {"pwd": _password_mark(user["password_hash"])}
    return _pair(rt, f"user:{user['id']}", "user", scope, now, None, mark)


def issue_user_tokens(rt: Runtime, username: str, password: str, address: str) -> TokenPair:
    """OAuth2 password grant: tokens carrying a console user's own roles. Guessing is slowed
    exactly as at login() (the same counters, refused before the check once over)."""
    user = _checked_password(rt, username, password, address)
    return _user_pair(rt, user, utcnow())


def _usable_user(rt: Runtime, subject: str) -> tuple[dict[str, Any], tuple[Grant, ...]] | None:
    """The enabled user a token's `user:<id>` subject names, with its grants; None if gone."""
    user_id = subject.removeprefix("user:")
    with rt.db.read() as conn:
        user = access_store.find_user_by_id(conn, user_id)
        if user is None or not user["enabled"]:
            return None
        return user, _grants(conn, "user", user["username"])


def refresh_token_pair(rt: Runtime, refresh_token: str, address: str) -> TokenPair:
    """OAuth2 refresh_token grant: a new pair for the same key or user and scopes, while
    that key or user is still usable. A refused refresh token counts as a failed attempt."""
    try:
        claims = _access_claims(rt, refresh_token, _refresh_audience(rt))
    except jwt.ExpiredSignatureError:
        raise _invalid("the refresh token has expired; ask for a new one") from None
    except jwt.PyJWTError:
        _refuse(rt, _invalid(_BAD_REFRESH), _by_address(rt, address))
    subject, kind, now = str(claims["sub"]), claims.get("kind"), utcnow()
    if claims.get("typ") != "refresh":
        _refuse(rt, _invalid(_BAD_REFRESH), _by_address(rt, address))
    if kind == "user":
        found = _usable_user(rt, subject)
        if found is None or claims.get("pwd") != _password_mark(found[0]["password_hash"]):
            _refuse(rt, _invalid(_BAD_REFRESH), _by_address(rt, address))
        return _user_pair(rt, found[0], now)
    row, grants = _load_key(rt, subject)
    if (
        kind != "apiKey"
        or row is None
        or not _key_usable(row, now)
        or claims.get("sec") not in _secret_marks(row, now)
    ):
        _refuse(rt, _invalid(_BAD_REFRESH), _by_address(rt, address), _by_client(rt, subject))
    _key_principal(row, grants, address, "token")  # the key's firewall rules hold here too
    scope, mark = str(claims.get("scope", "")), {"sec": claims["sec"]}
    pair = _pair(rt, subject, "apiKey", scope, now, row["expires_at"], mark)
    _touch(rt, row, address, now)
    return pair


def authenticate_bearer(rt: Runtime, token: str, address: str) -> Principal:
    """The principal of an access token of either kind: a key's (authenticate_token) or a
    user's from the password grant, whose user is re-checked on every call."""
    try:
        claims = _access_claims(rt, token)
    except jwt.PyJWTError:
        return authenticate_token(rt, token, address)  # its own words for each failure
    if claims.get("typ") != "user":
        return authenticate_token(rt, token, address)
    found = _usable_user(rt, str(claims["sub"]))
    if found is None or claims.get("pwd") != _password_mark(found[0]["password_hash"]):
        _refuse(rt, _invalid(_BAD_TOKEN), _by_address(rt, address))
    user, grants = found
    return Principal(
        kind="user",
        id=user["id"],
        name=user["username"],
        grants=grants,
        address=address,
        via="token",
    )
