"""What the access services hand out: keys, roles, users and an identity, as frozen records
(never a secret or a hash)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from jobport.domain.access.principals import Principal


@dataclass(frozen=True, slots=True)
class RoleHeld:
    """A role a key or user holds, and where: a project's name, or None (the application)."""

    role: str
    project: str | None


@dataclass(frozen=True, slots=True)
class Member:
    """A member of a role: an API key (by client id) or a user (by username)."""

    type: str
    id: str


@dataclass(frozen=True, slots=True)
class Role:
    """A role at its level, with its members. Times are aware UTC."""

    id: str
    project_id: str | None  # None: an application (or built-in) role
    name: str
    description: str
    scopes: tuple[str, ...]
    builtin: bool
    members: tuple[Member, ...]
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def level(self) -> Literal["builtin", "project", "application"]:
        if self.builtin:
            return "builtin"
        return "project" if self.project_id else "application"

    @classmethod
    def from_row(cls, row: Mapping[str, Any], members: Iterable[Mapping[str, Any]]) -> Role:
        """From a stored role row and its stored membership rows."""
        return cls(
            id=row["id"],
            project_id=row["project_id"],
            name=row["name"],
            description=row["description"],
            scopes=tuple(row["scopes"]),
            builtin=row["builtin"],
            members=tuple(Member(m["member_type"], m["member_id"]) for m in members),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as its managers see it: never its secret or hashes. Times are aware UTC."""

    client_id: str
    description: str
    enabled: bool
    expires_at: dt.datetime | None
    firewall_rules: tuple[dict[str, Any], ...]  # each as FirewallRule.wire() wrote it
    roles: tuple[RoleHeld, ...]
    created_by: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    rotated_at: dt.datetime | None
    previous_valid_until: dt.datetime | None  # until when the secret before rotation works
    last_used_at: dt.datetime | None
    last_used_ip: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], roles: Iterable[RoleHeld]) -> ApiKey:
        """From a stored key row and the roles the key holds."""
        return cls(
            client_id=row["client_id"],
            description=row["description"],
            enabled=row["enabled"],
            expires_at=row["expires_at"],
            firewall_rules=tuple(row["firewall_rules"]),
            roles=tuple(roles),
            created_by=row["created_by"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            rotated_at=row["rotated_at"],
            previous_valid_until=row["previous_valid_until"],
            last_used_at=row["last_used_at"],
            last_used_ip=row["last_used_ip"],
        )


@dataclass(frozen=True, slots=True)
class User:
    """A console user: never the password hash. Times are aware UTC."""

    username: str
    enabled: bool
    roles: tuple[RoleHeld, ...]
    created_at: dt.datetime
    updated_at: dt.datetime
    last_login_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], roles: Iterable[RoleHeld]) -> User:
        """From a stored user row and the roles the user holds."""
        return cls(
            username=row["username"],
            enabled=row["enabled"],
            roles=tuple(roles),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            last_login_at=row["last_login_at"],
        )


@dataclass(frozen=True, slots=True)
class Identity:
    """A principal as GET /me shows it: its roles, and its effective scopes by level (the
    application, or a project's name)."""

    principal: Principal
    roles: tuple[RoleHeld, ...]
    scopes: dict[str, list[str]]


@dataclass(frozen=True, slots=True)
class Session:
    """A console session just opened: its token (the cookie), its CSRF token, and its end."""

    token: str
    csrf_token: str
    expires_at: dt.datetime
    username: str


@dataclass(frozen=True, slots=True)
class AccessToken:
    """An OAuth2 access token issued for a key: the token, its lifetime, the scopes granted."""

    access_token: str
    expires_in: int  # seconds
    scope: str  # space-separated
    token_type: str = "Bearer"
