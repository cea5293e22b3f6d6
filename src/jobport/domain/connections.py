"""Connections: a project's named databases (SQLAlchemy URLs) and HTTP services (base URLs
with headers), what a caller writes, and what anyone may read back (never a secret)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from jobport.domain.jobs import NAME_PATTERN
from jobport.domain.wire import Wire

Kind = Literal["sql", "http"]
MASK = "***"

# The SQLAlchemy backends a connection may name (a driver may follow: postgresql+psycopg).
SQL_BACKENDS = ("sqlite", "postgresql", "mysql", "mariadb")


def kind_of(url: str) -> Kind:
    """`http` for an http(s) URL, `sql` for a SQLAlchemy URL of a known backend; else
    ValueError saying what is accepted."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("http", "https"):
        parts = urlsplit(url)
        if not parts.hostname:
            raise ValueError(f"{url!r} has no host")
        return "http"
    try:
        parsed = make_url(url)
    except ArgumentError:
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


def masked(url: str) -> str:
    """The URL with its password (if any) replaced by ***: what is shown and logged."""
    if kind_of(url) == "http":
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        netloc = f"{parts.username or ''}:{MASK}@{host}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    parsed = make_url(url)
    if parsed.password is None:
        return url
    return parsed.render_as_string(hide_password=True)  # SQLAlchemy's mask is *** too


class ConnectionSpec(Wire):
    """A connection as a caller writes it (POST; PATCH takes any of its fields)."""

    name: str = Field(pattern=NAME_PATTERN)
    url: str = Field(min_length=1, max_length=4000)
    description: str = Field(default="", max_length=10_000)
    # For http connections: sent with every request of a step that uses the connection.
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _known_url(cls, value: str) -> str:
        kind_of(value)
        return value

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not name or any(c in name for c in " :\r\n\t") or len(name) > 200:
                raise ValueError(f"{name!r} is not an HTTP header name")
            if any(c in text for c in "\r\n"):
                raise ValueError(f"the value of header {name!r} holds a line break")
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
