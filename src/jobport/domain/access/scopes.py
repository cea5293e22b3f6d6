"""Scopes: every `resource:action` an endpoint can ask for, wildcards, and the built-in
roles made of them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

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
    # Connections hold passwords and tokens: reading one shows its masked URL and header
    # names, never a secret; running a job that uses one needs neither scope.
    "connections:read",
    "connections:write",
    "keys:read",
    "keys:write",
    "roles:read",
    "roles:write",
    "users:read",
    "users:write",
    "audit:read",
    # GET /metrics (application level): counts by project and job name, queue depths.
    "metrics:read",
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
