"""Authorisation: whether a principal holds a scope at a level, the Forbidden answers that say
why not, the --local principal, and what a principal may do (GET /me)."""

from __future__ import annotations

from jobport import metrics
from jobport.domain.access import Grant, Identity, Principal
from jobport.errors import Forbidden
from jobport.services.access.roles import held, project_names
from jobport.services.runtime import Runtime
from jobport.store import projects as project_store


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
    """The refusal to raise (every 403 for a missing right is made here, and counted)."""
    code = principal.denial(scope, project)
    metrics.auth_failure(code)  # insufficient_scope or project_forbidden
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


def local_principal(name: str = "local") -> Principal:
    """Whoever runs the CLI with --local: direct database access is already full power."""
    return Principal(
        kind="local",
        id=name,
        name=name,
        grants=(Grant("Administrator", None, frozenset({"*"})),),
        via="local",
    )


def describe(rt: Runtime, principal: Principal) -> Identity:
    """The principal, its roles and effective scopes by level (GET /me)."""
    with rt.db.read() as conn:
        names = project_names(conn)
    scopes = {
        (names.get(level, level) if level != "application" else level): s
        for level, s in principal.effective_scopes().items()
    }
    roles = tuple(held(names, g.role, g.project_id) for g in principal.grants)
    return Identity(principal, roles, scopes)
