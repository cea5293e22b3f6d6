"""Connection use-cases: define, read, change, delete and test a project's connections.

Every write validates the whole connection (`ConnectionSpec`) before anything is stored, and
stores its secrets (the whole URL, the headers' values) only encrypted. What leaves here is a
`Connection` record, which holds no secret; error messages hold none either. On a change,
`***` where a secret was (the URL's password, a header's value) keeps the stored secret, so a
caller can send back what it read.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pydantic import ValidationError
from sqlalchemy.engine import make_url

from jobport.domain.clock import utcnow
from jobport.domain.connections import (
    MASK,
    Connection,
    ConnectionSpec,
    Kind,
    Resolved,
    keep_masked_query,
    masked,
    masked_query_keys,
)
from jobport.domain.ids import new_id
from jobport.domain.pages import Page
from jobport.engine import connections as engine_connections
from jobport.engine.connections import scrub, secrets_of
from jobport.errors import Invalid, error_details, invalid
from jobport.services.runtime import Runtime
from jobport.store import connections as connection_store
from jobport.store import projects as project_store

CODE = "invalid_connection"
_FIELDS = {"name", "url", "description", "headers"}
TEST_TIMEOUT = 10.0  # seconds a test waits for the connection to answer


@dataclass(frozen=True, slots=True)
class ConnectionTest:
    """What a test of a connection saw: whether it answered, and in how long."""

    ok: bool
    kind: Kind
    elapsed_ms: int
    message: str


# -- parsing ----------------------------------------------------------------------------------


def _refuse(field: str, reason: str) -> Invalid:
    return Invalid(
        f"invalid connection: {field}: {reason}",
        code=CODE,
        details=[{"field": field, "reason": reason}],
    )


def parse(data: dict[str, Any]) -> ConnectionSpec:
    """A connection body as a ConnectionSpec, or Invalid naming every problem, without a
    secret of the body in the message or the details."""
    try:
        spec = ConnectionSpec.model_validate(data)
        masked(spec.url)  # an http URL with a password must also be one we can mask
    except ValidationError as exc:
        details = error_details(exc.errors(include_url=False))
        hidden = _secrets_in(data)
        for detail in details:
            detail["reason"] = scrub(detail["reason"], hidden)
        raise invalid(details, what="invalid connection", code=CODE) from None
    except ValueError as exc:
        raise _refuse("url", scrub(str(exc), _secrets_in(data))) from None
    return spec


def _secrets_in(data: dict[str, Any]) -> list[str]:
    """Every secret a body may hold, as text: to keep them out of an error message."""
    url, headers = data.get("url"), data.get("headers")
    return secrets_of(
        url if isinstance(url, str) else "",
        {str(k): v for k, v in headers.items() if isinstance(v, str)}
        if isinstance(headers, dict)
        else {},
    )


def _refuse_masks(spec: ConnectionSpec) -> None:
    """`***` stands for a stored secret: a new connection has none to keep."""
    if _password_of(spec.url) == MASK:
        raise _refuse("url", f"the password {MASK} keeps a stored one; give the password")
    for name, value in spec.headers.items():
        if value == MASK:
            raise _refuse(f"headers.{name}", f"{MASK} keeps a stored value; give the value")
    for name in masked_query_keys(spec.url):
        raise _refuse("url", f"{name}={MASK} keeps a stored value, and there is none; give it")


def _password_of(url: str) -> str | None:
    """The URL's password as written (percent-decoded), or None."""
    if url.split(":", 1)[0].lower() in ("http", "https"):
        userinfo = urlsplit(url).netloc.rpartition("@")[0]
        _user, colon, password = userinfo.partition(":")
        return unquote(password) if colon else None
    password = make_url(url).password
    return None if password is None else str(password)


def _with_password(url: str, password: str) -> str:
    """`url` with its password replaced by `password`."""
    if url.split(":", 1)[0].lower() in ("http", "https"):
        parts = urlsplit(url)
        userinfo, _, host = parts.netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:{quote(password, safe='')}@{host}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return make_url(url).set(password=password).render_as_string(hide_password=False)


def _row(spec: ConnectionSpec, rt: Runtime) -> dict[str, Any]:
    return {
        "name": spec.name,
        "description": spec.description,
        "kind": spec.kind(),
        "url": masked(spec.url),
        "header_names": sorted(spec.headers),
        "secret": rt.cipher().encrypt(spec.secret()),
    }


# -- use-cases --------------------------------------------------------------------------------


def create(rt: Runtime, project_ref: str, data: dict[str, Any]) -> Connection:
    """Validate `data` ({name, url, description?, headers?}) whole and store it encrypted."""
    spec = parse(data)
    _refuse_masks(spec)
    now = utcnow()
    with rt.db.write() as conn:
        project = project_store.get(conn, project_ref)
        row = {
            "id": new_id(),
            "project_id": project["id"],
            **_row(spec, rt),
            "created_at": now,
            "updated_at": now,
        }
        connection_store.insert_connection(conn, row)
    return Connection.from_row(row)


def get(rt: Runtime, project_ref: str, connection_ref: str) -> Connection:
    with rt.db.read() as conn:
        project = project_store.get(conn, project_ref)
        return Connection.from_row(connection_store.get(conn, project["id"], connection_ref))


def list_page(rt: Runtime, project_ref: str, *, cursor: str | None = None, limit: int = 50) -> Page:
    """A page of the project's Connections, by name."""
    with rt.db.read() as conn:
        project = project_store.get(conn, project_ref)
        page = connection_store.list_page(conn, project["id"], cursor=cursor, limit=limit)
    return Page([Connection.from_row(r) for r in page.items], page.next_cursor)


def _merged(stored: dict[str, Any], row: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The whole connection after `changes`, with `***` replaced by the stored secrets."""
    body = {
        "name": row["name"],
        "url": stored["url"],
        "description": row["description"],
        "headers": dict(stored["headers"]),
    }
    body.update(changes)
    url = changes.get("url")
    if isinstance(url, str) and MASK in url:  # a secret query value written *** is kept too
        with contextlib.suppress(ValueError):
            url = body["url"] = keep_masked_query(url, stored["url"])
    if isinstance(url, str) and url != stored["url"]:
        try:
            given = _password_of(url)
        except Exception:  # not a URL at all: validation says so, below
            given = None
        if given == MASK:
            kept = _password_of(stored["url"])
            if kept is None:
                raise _refuse("url", f"{MASK} keeps the stored password, and there is none")
            # Not a URL a password can be written into: validation says why, below.
            with contextlib.suppress(ValueError):
                body["url"] = _with_password(url, kept)
    headers = changes.get("headers")
    if isinstance(headers, dict):
        by_name = {name.lower(): value for name, value in stored["headers"].items()}
        merged: dict[str, Any] = {}
        for name, value in headers.items():
            if value == MASK:
                if not isinstance(name, str) or name.lower() not in by_name:
                    reason = (
                        f"{MASK} keeps a header's stored value, and there is no header {name!r}"
                    )
                    raise _refuse(f"headers.{name}", reason)
                value = stored["headers"].get(name, by_name[name.lower()])
            merged[name] = value
        body["headers"] = merged
    return body


def patch(
    rt: Runtime, project_ref: str, connection_ref: str, changes: dict[str, Any]
) -> Connection:
    """Change any of name, url, description, headers (which replaces the set); `***` keeps
    the stored password of the URL or value of a header. Validated whole, as on create."""
    unknown = sorted(str(k) for k in changes if k not in _FIELDS)
    if unknown:
        raise _refuse(unknown[0], "Extra inputs are not permitted")
    with rt.db.write() as conn:
        project = project_store.get(conn, project_ref)
        row = connection_store.get(conn, project["id"], connection_ref)
        stored = rt.cipher().decrypt(row["secret"])
        try:
            spec = parse(_merged(stored, row, changes))
        except Invalid as exc:  # the stored secrets are not the caller's to see either
            hidden = secrets_of(stored["url"], stored["headers"])
            exc.message = scrub(exc.message, hidden)
            for detail in exc.details or []:
                detail["reason"] = scrub(detail["reason"], hidden)
            exc.args = (exc.message,)
            raise
        for name in masked_query_keys(spec.url):  # *** with nothing stored to keep
            raise _refuse("url", f"{name}={MASK} keeps a stored value, and there is none")
        values = {**_row(spec, rt), "updated_at": utcnow()}
        connection_store.update_connection(conn, row["id"], values)
    return Connection.from_row({**row, **values})


def delete(rt: Runtime, project_ref: str, connection_ref: str) -> None:
    with rt.db.write() as conn:
        project = project_store.get(conn, project_ref)
        row = connection_store.get(conn, project["id"], connection_ref)
        connection_store.delete_connection(conn, row["id"])


def resolve(rt: Runtime, project_ref: str, connection_ref: str) -> Resolved:
    """The connection with its secrets (for a test; never for an answer)."""
    with rt.db.read() as conn:
        project = project_store.get(conn, project_ref)
        row = connection_store.get(conn, project["id"], connection_ref)
    secret = rt.cipher().decrypt(row["secret"])
    return Resolved(row["name"], row["kind"], secret["url"], dict(secret["headers"]))


def test(
    rt: Runtime, project_ref: str, connection_ref: str, *, timeout: float = TEST_TIMEOUT
) -> ConnectionTest:
    """Reach the connection once (engine/connections.probe), for at most `timeout` seconds
    (a driver that hangs longer is left to end on its own, in its own thread)."""
    resolved = resolve(rt, project_ref, connection_ref)
    outcome: list[tuple[bool, str]] = []

    def attempt() -> None:
        try:
            outcome.append((True, engine_connections.probe(resolved, timeout)))
        except engine_connections.ProbeFailed as exc:
            outcome.append((False, str(exc)))

    started = time.monotonic()
    worker = threading.Thread(target=attempt, name="jobport-connection-test", daemon=True)
    worker.start()
    worker.join(timeout + 1)
    elapsed = int((time.monotonic() - started) * 1000)
    ok, message = outcome[0] if outcome else (False, f"no answer within {timeout:g} s")
    return ConnectionTest(ok=ok, kind=resolved.kind, elapsed_ms=elapsed, message=message)
