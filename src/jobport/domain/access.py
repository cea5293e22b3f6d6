"""Access as pure data: scopes, built-in roles, key strings, firewall rules, principals, and
the records the access services hand out (ApiKey, Role, User, Identity).

One module past 400 lines because it is one vocabulary: the records are made of the rules'
nouns (Principal, Grant, scopes), and no part of it does anything but describe.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import re
import secrets
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from jobport.domain.jobs import NAME_PATTERN
from jobport.domain.wire import Flag, Wire

# Every scope an endpoint can ask for. A role may also hold `resource:*` or `*`.
SCOPES: tuple[str, ...] = (
    "projects:read",
    "projects:write",
    "jobs:read",
    "jobs:write",
    "jobs:execute",
    "executions:read",
    "executions:cancel",
    "schedules:read",
    "schedules:write",
    "keys:read",
    "keys:write",
    "roles:read",
    "roles:write",
    "users:read",
    "users:write",
    "audit:read",
)
RESOURCES = frozenset(s.split(":", 1)[0] for s in SCOPES)

_READ = ("projects:read", "jobs:read", "executions:read", "schedules:read")
BUILTIN_ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "Administrator": ("everything", ("*",)),
    "Operator": (
        "read, execute, cancel, and manage schedules",
        (*_READ, "jobs:execute", "executions:cancel", "schedules:write"),
    ),
    "Viewer": ("read projects, jobs, executions and schedules", _READ),
}

MemberType = Literal["apiKey", "user"]
MEMBER_TYPES: tuple[str, ...] = ("apiKey", "user")


def check_scope(scope: str) -> str:
    """Return the scope if it is `*`, `resource:*` or a known `resource:action`."""
    if scope == "*":
        return scope
    resource, _, action = scope.partition(":")
    if resource in RESOURCES and action == "*":
        return scope
    if scope in SCOPES:
        return scope
    known = ", ".join(SCOPES)
    raise ValueError(f"unknown scope {scope!r}; use one of {known}, 'resource:*' or '*'")


def scope_covers(granted: str, needed: str) -> bool:
    """Whether a granted scope (possibly a wildcard) includes the needed one."""
    if granted == "*" or granted == needed:
        return True
    if granted.endswith(":*"):
        return needed.split(":", 1)[0] == granted[:-2] or needed == granted
    return False


def covered(scopes: Iterable[str], needed: str) -> bool:
    return any(scope_covers(g, needed) for g in scopes)


# --- API key strings ------------------------------------------------------------------------

KEY_PREFIX = "jpk_"
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CLIENT_ID = re.compile(r"^[a-z0-9]{20}$")
_SECRET = re.compile(r"^[0-9A-Za-z]{40}$")
_CRC_LEN = 6


def _b62(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(_B62[r])
    return "".join(reversed(out))


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_client_id() -> str:
    return _random("abcdefghijklmnopqrstuvwxyz0123456789", 20)


def new_secret() -> str:
    """40 base62 characters: about 238 bits, so a fast hash is enough."""
    return _random(_B62, 40)


def key_string(client_id: str, secret: str) -> str:
    """The one string people paste: `jpk_<clientId>_<secret><crc>`; greppable, typo-checked."""
    body = f"{KEY_PREFIX}{client_id}_{secret}"
    return body + _b62(zlib.crc32(body.encode()), _CRC_LEN)


def parse_key_string(value: str) -> tuple[str, str]:
    """(client id, secret) of a key string; ValueError if its shape or checksum is wrong."""
    if not value.startswith(KEY_PREFIX):
        raise ValueError("not a jobport key (it should start with 'jpk_')")
    client_id, sep, rest = value[len(KEY_PREFIX) :].partition("_")
    secret = rest[:-_CRC_LEN]
    if not sep or not _CLIENT_ID.match(client_id) or not _SECRET.match(secret):
        raise ValueError("malformed jobport key")
    if not hmac.compare_digest(key_string(client_id, secret), value):
        raise ValueError("the key's checksum does not match: it was mistyped or truncated")
    return client_id, secret


def looks_like_client_id(value: str) -> bool:
    return bool(_CLIENT_ID.match(value))


def hash_secret(secret: str, pepper: str = "") -> str:
    """HMAC-SHA256 of the secret with the server pepper (the secret is random: no slow hash)."""
    return hmac.new(pepper.encode(), secret.encode(), hashlib.sha256).hexdigest()


def secret_matches(secret: str, stored_hash: str | None, pepper: str = "") -> bool:
    if not stored_hash:
        return False
    return hmac.compare_digest(hash_secret(secret, pepper), stored_hash)


# --- Firewall rules -------------------------------------------------------------------------

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(value: str) -> IPAddress:
    """An IP address, with IPv4-mapped IPv6 (`::ffff:a.b.c.d`) unwrapped to IPv4."""
    address = ipaddress.ip_address(value.strip())
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class FirewallRule(Wire):
    name: str = Field(min_length=1, max_length=200)
    start_ip: str
    end_ip: str
    enabled: Flag = True

    @field_validator("start_ip", "end_ip")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            return str(parse_address(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None

    @model_validator(mode="after")
    def _range(self) -> FirewallRule:
        start, end = parse_address(self.start_ip), parse_address(self.end_ip)
        if start.version != end.version:
            raise ValueError("startIp and endIp must both be IPv4 or both IPv6")
        if end < start:  # type: ignore[operator]
            raise ValueError("endIp must not be lower than startIp")
        return self

    def matches(self, address: IPAddress) -> bool:
        start, end = parse_address(self.start_ip), parse_address(self.end_ip)
        return (
            self.enabled and address.version == start.version and start <= address <= end  # type: ignore[operator]
        )


def address_allowed(rules: Iterable[FirewallRule | Mapping[str, Any]], address: str) -> bool:
    """An empty rule list allows every address; otherwise an enabled rule must match."""
    parsed = [r if isinstance(r, FirewallRule) else FirewallRule.model_validate(r) for r in rules]
    if not parsed:
        return True
    try:
        ip = parse_address(address)
    except ValueError:
        return False
    return any(rule.matches(ip) for rule in parsed)


def client_address(
    peer: str | None, forwarded_for: str | None, trusted_proxies: Iterable[str]
) -> str:
    """The caller's address: the socket peer, or X-Forwarded-For behind a trusted proxy.

    Walk X-Forwarded-For from the right, skipping trusted proxies: the first address that is
    not one is the client (anything further left could have been forged by it).
    """
    networks = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]

    def trusted(value: str) -> bool:
        try:
            ip = parse_address(value)
        except ValueError:
            return False
        return any(ip in net for net in networks)

    if peer is None:
        return "unknown"
    if not forwarded_for or not trusted(peer):
        return _display(peer)
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not trusted(hop):
            return _display(hop)
    return _display(hops[0]) if hops else _display(peer)


def _display(value: str) -> str:
    try:
        return str(parse_address(value))
    except ValueError:
        return value


# --- Roles and principals -------------------------------------------------------------------


class RoleSpec(Wire):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=10_000)
    scopes: list[str] = Field(default_factory=list)

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        return sorted({check_scope(s) for s in value})


class RolePatch(Wire):
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    description: str | None = Field(default=None, max_length=10_000)
    scopes: list[str] | None = None

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else sorted({check_scope(s) for s in value})


@dataclass(frozen=True)
class Grant:
    """One role membership: its scopes, and the project it covers (None: every project)."""

    role: str
    project_id: str | None
    scopes: frozenset[str]


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user or an API key, with the grants of its role memberships."""

    kind: Literal["user", "apiKey", "local"]
    id: str
    name: str
    grants: tuple[Grant, ...] = ()
    token_scopes: frozenset[str] | None = None  # an OAuth token asked for fewer scopes
    address: str = "unknown"
    via: str = "key"  # key | token | session | local
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        """How the principal appears in the audit log and on executions."""
        return f"{self.kind}:{self.name}"

    def _narrowed(self, scope: str) -> bool:
        return self.token_scopes is None or covered(self.token_scopes, scope)

    def allows(self, scope: str, project_id: str | None = None) -> bool:
        """Whether the scope is held for the project (None: application level only)."""
        if not self._narrowed(scope):
            return False
        return any(
            covered(g.scopes, scope) and (g.project_id is None or g.project_id == project_id)
            for g in self.grants
        )

    def denial(self, scope: str, project_id: str | None = None) -> str:
        """Why `allows` said no: `insufficient_scope` or `project_forbidden`.

        `project_forbidden` when the scope is held, but only in other projects; at the
        application level (project None) project roles never count, so the scope is missing.
        """
        if project_id is None:
            return "insufficient_scope"
        if self._narrowed(scope) and any(covered(g.scopes, scope) for g in self.grants):
            return "project_forbidden"
        return "insufficient_scope"

    def project_ids(self, scope: str) -> set[str] | None:
        """Projects where the scope is held; None means every project."""
        if not self._narrowed(scope):
            return set()
        ids: set[str] = set()
        for g in self.grants:
            if covered(g.scopes, scope):
                if g.project_id is None:
                    return None
                ids.add(g.project_id)
        return ids

    def effective_scopes(self) -> dict[str, list[str]]:
        """Scopes by level: `application` and each project id (for GET /me)."""
        out: dict[str, set[str]] = {}
        for g in self.grants:
            scopes = set(g.scopes)
            if self.token_scopes is not None:
                scopes = {t for t in self.token_scopes if covered(g.scopes, t)}
            out.setdefault(g.project_id or "application", set()).update(scopes)
        return {level: sorted(scopes) for level, scopes in out.items()}


_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,199}$")


def is_valid_username(name: str) -> bool:
    return bool(_USERNAME.match(name))


# --- records: what the access services hand out ----------------------------------------------


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
