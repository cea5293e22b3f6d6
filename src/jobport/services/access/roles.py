"""Roles and their members: application and project roles, who holds which role where, and
the memberships that keys and users get when they are made."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ValidationError

from jobport.domain import access as rules
from jobport.domain.access import BUILTIN_ROLES, Role, RoleHeld, RoleSpec
from jobport.domain.clock import utcnow
from jobport.domain.ids import new_id
from jobport.errors import Conflict, Invalid, NotFound, error_details, invalid
from jobport.services.access.state import write
from jobport.services.runtime import Runtime
from jobport.store import access as access_store
from jobport.store import projects as project_store


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


def _with_members(conn: Any, role: dict[str, Any], key: str) -> Role:
    return Role.from_row(role, access_store.members_of(conn, role["id"], key))


def list_roles(rt: Runtime, project_ref: str | None) -> list[Role]:
    with rt.db.read() as conn:
        key, _ = _level(conn, project_ref)
        return [_with_members(conn, r, key) for r in access_store.list_roles(conn, key)]


def get_role(rt: Runtime, project_ref: str | None, name: str) -> Role:
    with rt.db.read() as conn:
        role, key, _ = _role(conn, project_ref, name)
        return _with_members(conn, role, key)


def _parse_role(model: Any, data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = error_details(exc.errors(include_url=False))
        raise invalid(details, what="invalid role", code="invalid_role") from None


def _new_role(
    key: str,
    project_id: str | None,
    name: str,
    description: str,
    scopes: list[str],
    *,
    builtin: bool,
    now: dt.datetime,
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "project_key": key,
        "project_id": project_id,
        "name": name,
        "description": description,
        "scopes": scopes,
        "builtin": builtin,
        "created_at": now,
        "updated_at": now,
    }


def create_builtin_roles(conn: Any, now: dt.datetime) -> None:
    """The built-in application roles that are not there yet."""
    existing = {
        r["name"] for r in access_store.list_roles(conn, access_store.APPLICATION) if r["builtin"]
    }
    for name, (description, scopes) in BUILTIN_ROLES.items():
        if name not in existing:
            row = _new_role(
                access_store.APPLICATION,
                None,
                name,
                description,
                list(scopes),
                builtin=True,
                now=now,
            )
            access_store.insert_role(conn, row)


def create_role(rt: Runtime, project_ref: str | None, data: dict[str, Any]) -> Role:
    spec = _parse_role(RoleSpec, data)
    if spec.name in BUILTIN_ROLES:
        raise Conflict(f"{spec.name!r} is a built-in role", code="already_exists")
    now = utcnow()
    with write(rt) as conn:
        key, project_id = _level(conn, project_ref)
        row = _new_role(
            key, project_id, spec.name, spec.description, spec.scopes, builtin=False, now=now
        )
        access_store.insert_role(conn, row)
        return _with_members(conn, row, key)


def patch_role(rt: Runtime, project_ref: str | None, name: str, data: dict[str, Any]) -> Role:
    changes = _parse_role(rules.RolePatch, data).model_dump(exclude_unset=True)
    with write(rt) as conn:
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
    with write(rt) as conn:
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


def add_membership(
    conn: Any,
    role_name: str,
    project_id: str | None,
    member_type: str,
    member_id: str,
    now: dt.datetime,
) -> bool:
    """Give a member a role, inside the caller's transaction; False if it had the role."""
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


def add_memberships(
    conn: Any,
    roles: list[tuple[str, str | None]],
    member_type: str,
    member_id: str,
    now: dt.datetime,
) -> None:
    """Give a new key or user its roles, as (role, project name or id or None)."""
    for role, project in roles:
        project_id = project_store.get(conn, project)["id"] if project else None
        add_membership(conn, role, project_id, member_type, member_id, now)


def add_member(
    rt: Runtime, project_ref: str | None, role_name: str, member_type: str, member_id: str
) -> tuple[Role, bool]:
    """Give a key or user a role; True if it is a new member, False if it was one."""
    with write(rt) as conn:
        role, key, project_id = _role(conn, project_ref, role_name)
        created = add_membership(conn, role["name"], project_id, member_type, member_id, utcnow())
        return _with_members(conn, role, key), created


def remove_member(
    rt: Runtime, project_ref: str | None, role_name: str, member_type: str, member_id: str
) -> None:
    with write(rt) as conn:
        role, key, _ = _role(conn, project_ref, role_name)
        if not access_store.remove_member(conn, role["id"], key, member_type, member_id):
            raise NotFound(
                f"{member_type} {member_id!r} is not a member of role {role_name!r}",
                code="member_not_found",
            )


def project_names(conn: Any) -> dict[str, str]:
    """Every project's name by its id (to show where a role is held)."""
    items = project_store.list_page(conn, cursor=None, limit=100_000).items
    return {p["id"]: p["name"] for p in items}


def held(names: dict[str, str], role: str, project_id: str | None) -> RoleHeld:
    """A role held at a level, named by `names` (project_names)."""
    return RoleHeld(role, names.get(project_id) if project_id else None)


def roles_of(conn: Any, member_type: str, member_id: str) -> list[RoleHeld]:
    """The roles a key or user holds, and where."""
    names = project_names(conn)
    return [
        held(names, g["name"], g["project_id"])
        for g in access_store.grants_of(conn, member_type, member_id)
    ]
