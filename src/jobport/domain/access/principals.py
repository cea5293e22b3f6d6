"""Who calls: a principal and its grants (role memberships), the role definitions a caller
writes, and usernames."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, field_validator

from jobport.domain.access.scopes import check_scope, covered
from jobport.domain.jobs import NAME_PATTERN
from jobport.domain.wire import Wire


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
