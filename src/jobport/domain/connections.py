"""Connections: a project's named databases (SQLAlchemy URLs) and HTTP services (base URLs
with headers), what a caller writes, and what anyone may read back (never a secret)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import unquote_plus, urlsplit

from pydantic import AfterValidator, Field, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from jobport.domain.jobs import NAME_PATTERN
from jobport.domain.wire import Wire

Kind = Literal["sql", "http"]

# RFC 9110: a field name is a token; a value is visible ASCII with spaces or tabs inside.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"([\x21-\x7e]([\x20-\x7e\t]*[\x21-\x7e])?)?")
MASK = "***"

# The SQLAlchemy backends a connection may name (a driver may follow: postgresql+psycopg).
SQL_BACKENDS = ("sqlite", "postgresql", "mysql", "mariadb")


def kind_of(url: str) -> Kind:
    """`http` for an http(s) URL, `sql` for a SQLAlchemy URL of a known backend; else
    ValueError saying what is accepted (never quoting the URL: it may hold a password)."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("http", "https"):
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - urllib checks the port's range when it is read
        except ValueError:
            raise ValueError(
                "the URL does not parse: a host (an IPv6 one in brackets), an optional port "
                "from 0 to 65535, and no character that normalizes to / ? # @ or :"
            ) from None
        if not parts.hostname:
            raise ValueError("an http(s) URL needs a host")
        return "http"
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ValueError(
            "url must be a SQLAlchemy database URL (e.g. postgresql://user:pw@host/db, "
            "sqlite:///path.db, mysql+pymysql://user:pw@host/db) or an http(s) base URL"
        ) from None
    if parsed.get_backend_name() not in SQL_BACKENDS:
        raise ValueError(
            f"database {parsed.get_backend_name()!r} is not supported; "
            f"use one of {', '.join(SQL_BACKENDS)}"
        )
    return "sql"


# Query parameters whose values are secrets (a token in a URL is as secret as a password).
SECRET_QUERY_KEYS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "access_token",
        "api_key",
        "apikey",
        "key",
        "sig",
        "signature",
        "client_secret",
    }
)


def masked(url: str) -> str:
    """The URL with its password and secret query values (if any) replaced by ***: what is
    shown and logged. A database URL's password is found as SQLAlchemy reads it (it may hold
    / ? or #); an http URL keeps everything else as written, an IPv6 host's brackets too."""
    if kind_of(url) == "sql":
        parsed = make_url(url)
        if parsed.password is not None:
            url = parsed.render_as_string(hide_password=True)  # SQLAlchemy's mask is ***
        return masked_query(url)
    parts = urlsplit(url)
    if "@" in parts.netloc:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        if ":" in userinfo:
            # Replaced in place, not rebuilt: the rest stays exactly as written.
            url = url.replace(parts.netloc, f"{userinfo.split(':', 1)[0]}:{MASK}@{hostport}", 1)
    return masked_query(url)


def masked_query(url: str) -> str:
    """`url` with the values of its secret query parameters replaced by ***."""
    try:
        query = urlsplit(url).query
    except ValueError:
        return url
    if not query:
        return url
    shown = "&".join(_masked_pair(pair) for pair in query.split("&"))
    return url.replace(f"?{query}", f"?{shown}", 1)


def _is_secret_key(name: str) -> bool:
    return unquote_plus(name).lower() in SECRET_QUERY_KEYS


def _masked_pair(pair: str) -> str:
    name, sep, value = pair.partition("=")
    if sep and value and _is_secret_key(name):
        return f"{name}={MASK}"
    return pair


def secret_query_values(url: str) -> list[str]:
    """The values of the URL's secret query parameters (SECRET_QUERY_KEYS), decoded; none
    for a URL that does not parse."""
    from urllib.parse import parse_qsl

    try:
        pairs = parse_qsl(urlsplit(url).query)
    except ValueError:
        return []
    return [value for key, value in pairs if key.lower() in SECRET_QUERY_KEYS]


def keep_masked_query(url: str, stored: str) -> str:
    """`url` with each secret query value written *** replaced by the stored URL's value of
    that parameter (as PATCH keeps a password written ***); others stay as given."""
    kept = {}
    for pair in urlsplit(stored).query.split("&"):
        name, sep, value = pair.partition("=")
        if sep and _is_secret_key(name):
            kept[unquote_plus(name).lower()] = value
    query = urlsplit(url).query
    if not query:
        return url
    pairs = []
    for pair in query.split("&"):
        name, sep, value = pair.partition("=")
        key = unquote_plus(name).lower()
        if sep and value == MASK and key in kept:
            pair = f"{name}={kept[key]}"
        pairs.append(pair)
    return url.replace(f"?{query}", "?" + "&".join(pairs), 1)


def masked_query_keys(url: str) -> list[str]:
    """The secret query parameters whose value is written *** (standing for a stored one)."""
    try:
        query = urlsplit(url).query
    except ValueError:
        return []
    return [
        name
        for name, sep, value in (pair.partition("=") for pair in query.split("&"))
        if sep and value == MASK and _is_secret_key(name)
    ]


def _header_name(name: str) -> str:
    # What an HTTP client will send (RFC 9110); else it refuses at the first request.
    if not _TOKEN.fullmatch(name) or len(name) > 200:
        raise ValueError("a header name is letters, digits and !#$%&'*+-.^_`|~ only")
    return name


def _header_value(value: str) -> str:
    # Never named in the message: it may be a secret (and a client would quote it).
    if not _FIELD_VALUE.fullmatch(value):
        raise ValueError(
            "a header value is printable ASCII, without control characters or line breaks, "
            "and neither starts nor ends with a space"
        )
    return value


HeaderName = Annotated[str, AfterValidator(_header_name)]
HeaderValue = Annotated[str, AfterValidator(_header_value)]


class ConnectionSpec(Wire):
    """A connection as a caller writes it (POST; PATCH takes any of its fields)."""

    name: str = Field(pattern=NAME_PATTERN)
    url: str = Field(min_length=1, max_length=4000)
    description: str = Field(default="", max_length=10_000)
    # For http connections: sent with every request of a step that uses the connection.
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _known_url(cls, value: str) -> str:
        kind_of(value)
        return value

    def kind(self) -> Kind:
        return kind_of(self.url)

    def secret(self) -> dict[str, Any]:
        """What is stored encrypted: the whole URL and the headers' values."""
        return {"url": self.url, "headers": dict(self.headers)}


@dataclass(frozen=True, slots=True)
class Connection:
    """A connection as anyone who may read it sees it: the URL's password masked, the
    headers by name only. Times are aware UTC."""

    id: str
    project_id: str
    name: str
    description: str
    kind: Kind
    url: str  # masked
    header_names: tuple[str, ...]
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Connection:
        return cls(
            id=row["id"],
            project_id=row["project_id"],
            name=row["name"],
            description=row["description"],
            kind=row["kind"],
            url=row["url"],
            header_names=tuple(row["header_names"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@dataclass(frozen=True, slots=True)
class Resolved:
    """A connection with its secrets, as a step uses it: only ever in a worker's memory."""

    name: str
    kind: Kind
    url: str  # whole, with its password
    headers: dict[str, str]

    def __repr__(self) -> str:  # never print the secrets, even in a traceback
        return f"Resolved(name={self.name!r}, kind={self.kind!r}, url={masked(self.url)!r})"
