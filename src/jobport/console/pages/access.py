"""Remote Access: API keys (add, edit, rotate, delete, their firewall rules) and roles (both
levels, their members), on the services and rights of `api/v1/keys.py` and `roles.py`.

A new or rotated secret is shown once, in the answer to the POST that made it (no-store,
never in a URL; console.js replaces the history entry with the key's page, so a reload
shows the key without its secret).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from jobport.api.auth import address_of
from jobport.api.v1 import keys as key_api
from jobport.api.v1 import roles as role_api
from jobport.console.web import PREFIX, Viewer, form_errors, page, redirect, viewer
from jobport.domain.access import (
    MEMBER_TYPES,
    FirewallRule,
    address_allowed,
    looks_like_client_id,
)
from jobport.errors import Conflict, Invalid, JobportError, error_details
from jobport.services import projects as project_service
from jobport.services.access import keys as key_service
from jobport.services.access import roles as role_service
from jobport.services.access import users as user_service

router = APIRouter()

BASE = PREFIX + "/remote-access"
MEMBER_LABELS = {"user": "Users", "apiKey": "API Keys"}
_MAX_RULES = 500  # rows a networking form may post (the form shows what the key has)


# --- helpers -----------------------------------------------------------------------------


def _key_url(client_id: str, tail: str = "") -> str:
    return f"{BASE}/keys/{client_id}{tail}"


def _role_url(role: str, project: str | None, tail: str = "") -> str:
    query = f"?{urlencode({'project': project})}" if project else ""
    return f"{BASE}/roles/{quote(role, safe='')}{tail}{query}"


def _all_keys(who: Viewer) -> list[Any]:
    """Every key (for a picker), page after page, as the API lists them."""
    found: list[Any] = []
    cursor: str | None = None
    while True:
        chunk = key_service.list_keys(who.rt, cursor=cursor, limit=500)
        found.extend(chunk.items)
        cursor = chunk.next_cursor
        if not cursor:
            return found


def _model_errors(exc: ValidationError) -> dict[str, str]:
    details = error_details(exc.errors(include_url=False))
    found = {"_": f"{details[0]['field']}: {details[0]['reason']}"} if details else {}
    for detail in details:
        found.setdefault(detail["field"], detail["reason"])
    return found


def _expiry(value: str) -> dt.datetime | None:
    """A key's expiry from a date field: the end of that day in UTC ("no longer works after
    this date"); empty: never. ValueError if it is not a date."""
    value = value.strip()
    if not value:
        return None
    day = dt.date.fromisoformat(value)
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC)


def _utc(value: dt.datetime) -> dt.datetime:
    """A time from a form: without an offset it is UTC (the form says so)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _expiry_day(key: dict[str, Any]) -> str:
    expires = key.get("expiresAt")
    return expires[:10] if expires else ""


def _soon_days(who: Viewer) -> int:
    return int(who.rt.settings.key_expiry_warning_days)


def _secret_page(
    request: Request, who: Viewer, key: Any, secret: str, *, rotated: bool, status: int
) -> Response:
    shown = key_api.with_secret(key, secret, who.rt)
    return page(
        request,
        "access/secret.html",
        who,
        status=status,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        key=shown,
        secret=shown["clientSecret"],
        key_string=shown["key"],
        rotated=rotated,
        server_url=str(request.base_url).rstrip("/"),
    )


# --- keys --------------------------------------------------------------------------------


@router.get(BASE)
@router.get(BASE + "/")
@router.get(BASE + "/keys")
async def keys_page(
    request: Request, cursor: str | None = None, who: Viewer = Depends(viewer)
) -> Response:
    if not who.can("keys:read") and who.can_somewhere("roles:read"):
        return redirect(BASE + "/roles")
    who.authorize("keys:read", None)
    found = key_service.list_keys(who.rt, cursor=cursor, limit=100)
    deleted = request.query_params.get("deleted", "")
    return page(
        request,
        "access/keys.html",
        who,
        deleted=deleted if looks_like_client_id(deleted) else None,
        keys=[key_api.render(k, who.rt) for k in found.items],
        next_cursor=found.next_cursor,
        soon_days=_soon_days(who),
        section="keys",
    )


def _new_key_form(
    request: Request,
    who: Viewer,
    *,
    status: int = 200,
    errors: dict[str, str],
    form: dict[str, Any],
) -> Response:
    roles = role_service.list_roles(who.rt, None) if who.can("roles:write") else []
    return page(
        request,
        "access/key_new.html",
        who,
        status=status,
        errors=errors,
        form=form,
        roles=roles,
        section="keys",
    )


@router.get(BASE + "/keys/new")
async def new_key(request: Request, who: Viewer = Depends(viewer)) -> Response:
    who.authorize("keys:write", None)
    days = who.rt.settings.key_default_days
    default = (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).date().isoformat()
    form = {"description": "", "expires": default, "role": ""}
    return _new_key_form(request, who, errors={}, form=form)


@router.post(BASE + "/keys")
async def create_key(
    request: Request,
    description: Annotated[str, Form()] = "",
    expires: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    who: Viewer = Depends(viewer),
) -> Response:
    who.authorize("keys:write", None)
    form = {"description": description, "expires": expires, "role": role}
    try:
        expires_at = _expiry(expires)
    except ValueError:
        errors = {"_": "the expiry is not a date", "expiresAt": "not a date (YYYY-MM-DD)"}
        return _new_key_form(request, who, status=422, errors=errors, form=form)
    data: dict[str, Any] = {"description": description, "expiresAt": expires_at}
    if role:
        data["roles"] = [{"role": role}]
    try:
        body = key_api.KeyCreate.model_validate(data)
    except ValidationError as exc:
        return _new_key_form(request, who, status=422, errors=_model_errors(exc), form=form)
    try:
        grants = key_api.checked_grants(who.rt, who.principal, body.roles)
        key, secret = key_service.create_key(
            who.rt,
            description=body.description,
            expires_at=body.expires_at,
            firewall_rules=[],
            created_by=who.principal.label,
            roles=grants,
        )
    except JobportError as exc:
        if exc.status == 403:
            raise
        errors = form_errors(exc)
        if exc.code == "role_not_found":
            errors["roles"] = exc.message
        return _new_key_form(request, who, status=exc.status, errors=errors, form=form)
    return _secret_page(request, who, key, secret, rotated=False, status=201)


def _key_page(
    request: Request,
    who: Viewer,
    key: Any,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    shown = key_api.render(key, who.rt)
    form = form or {
        "description": shown["description"],
        "expires": _expiry_day(shown),
        "expires_was": _expiry_day(shown),
        "enabled": shown["enabled"],
    }
    return page(
        request,
        "access/key.html",
        who,
        status=status,
        key=shown,
        errors=errors or {},
        form=form,
        soon_days=_soon_days(who),
        secret=None,
        key_string=None,
        server_url=str(request.base_url).rstrip("/"),
        tab="details",
        section="keys",
    )


@router.get(BASE + "/keys/{client_id}")
async def key_page(request: Request, client_id: str, who: Viewer = Depends(viewer)) -> Response:
    who.authorize("keys:read", None)
    return _key_page(request, who, key_service.get_key(who.rt, client_id))


@router.post(BASE + "/keys/{client_id}")
async def edit_key(
    request: Request,
    client_id: str,
    description: Annotated[str, Form()] = "",
    expires: Annotated[str, Form()] = "",
    expires_was: Annotated[str, Form()] = "",
    enabled: Annotated[str, Form()] = "",
    who: Viewer = Depends(viewer),
) -> Response:
    who.authorize("keys:write", None)
    key = key_service.get_key(who.rt, client_id)
    form = {
        "description": description,
        "expires": expires,
        "expires_was": expires_was,
        "enabled": bool(enabled),
    }
    data: dict[str, Any] = {"description": description, "enabled": bool(enabled)}
    if expires.strip() != expires_was.strip():  # an unchanged date keeps the exact expiry
        try:
            data["expiresAt"] = _expiry(expires)
        except ValueError:
            errors = {"_": "the expiry is not a date", "expiresAt": "not a date (YYYY-MM-DD)"}
            return _key_page(request, who, key, status=422, errors=errors, form=form)
    try:
        body = key_api.KeyPatch.model_validate(data)
    except ValidationError as exc:
        return _key_page(request, who, key, status=422, errors=_model_errors(exc), form=form)
    changes = body.model_dump(exclude_unset=True)
    try:
        key_service.patch_key(who.rt, client_id, changes, caller=who.principal)
    except JobportError as exc:
        if exc.status in (403, 404):
            raise
        return _key_page(request, who, key, status=exc.status, errors=form_errors(exc), form=form)
    return redirect(_key_url(client_id) + "?saved=1", request)


# --- networking --------------------------------------------------------------------------


def _rules_form(key: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**rule, "remove": False} for rule in key["firewallRules"]]


def _networking_page(
    request: Request,
    who: Viewer,
    key: Any,
    *,
    status: int = 200,
    rows: list[dict[str, Any]] | None = None,
    new: dict[str, str] | None = None,
    row_errors: dict[int | str, dict[str, str]] | None = None,
    errors: dict[str, str] | None = None,
    lock_out: str | None = None,
) -> Response:
    shown = key_api.render(key, who.rt)
    return page(
        request,
        "access/networking.html",
        who,
        status=status,
        key=shown,
        rows=_rules_form(shown) if rows is None else rows,
        new=new or {"name": "", "startIp": "", "endIp": ""},
        row_errors=row_errors or {},
        errors=errors or {},
        lock_out=lock_out,
        address=address_of(request),
        tab="networking",
        section="keys",
    )


@router.get(BASE + "/keys/{client_id}/networking")
async def networking(request: Request, client_id: str, who: Viewer = Depends(viewer)) -> Response:
    who.authorize("keys:read", None)
    return _networking_page(request, who, key_service.get_key(who.rt, client_id))


def _posted_rules(form: Any) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The rule rows as typed (`name-0`, `start-0`, `end-0`, `enabled-0`, `remove-0`...) and
    the new rule's row."""
    try:
        count = min(int(str(form.get("rows", "0"))), _MAX_RULES)
    except ValueError:
        count = 0
    rows = []
    for i in range(max(count, 0)):
        rows.append(
            {
                "name": str(form.get(f"name-{i}", "")).strip(),
                "startIp": str(form.get(f"start-{i}", "")).strip(),
                "endIp": str(form.get(f"end-{i}", "")).strip(),
                "enabled": bool(form.get(f"enabled-{i}")),
                "remove": bool(form.get(f"remove-{i}")),
            }
        )
    new = {
        "name": str(form.get("name-new", "")).strip(),
        "startIp": str(form.get("start-new", "")).strip(),
        "endIp": str(form.get("end-new", "")).strip(),
    }
    return rows, new


def _row_problems(rule: dict[str, Any]) -> dict[str, str]:
    """The domain's own reasons for one rule (FirewallRule), by field; "row" for a reason
    about the rule as a whole (a range that runs backwards, mixed versions)."""
    try:
        FirewallRule.model_validate(rule)
    except ValidationError as exc:
        found: dict[str, str] = {}
        for detail in error_details(exc.errors(include_url=False)):
            field = detail["field"] if detail["field"] in ("name", "startIp", "endIp") else "row"
            found.setdefault(field, detail["reason"])
        return found
    return {}


def _lock_out_message(before: list[Any], after: list[dict[str, Any]], address: str) -> str | None:
    """The service's lock-out guard, for the address this browser calls from: None unless
    the rules allowed it before this edit and would not after it. The guard's own words
    (`services/access/keys.guard_lock_out`) are what the page shows."""
    if not address_allowed(before, address) or address_allowed(after, address):
        return None
    try:
        key_service.guard_lock_out({"firewall_rules": after, "enabled": True}, address)
    except Conflict as exc:
        return exc.message
    return None


@router.post(BASE + "/keys/{client_id}/networking")
async def save_networking(
    request: Request, client_id: str, who: Viewer = Depends(viewer)
) -> Response:
    who.authorize("keys:write", None)
    key = key_service.get_key(who.rt, client_id)
    form = await request.form()
    rows, new = _posted_rules(form)
    rules = []
    row_errors: dict[int | str, dict[str, str]] = {}
    for i, row in enumerate(rows):
        if row["remove"]:
            continue
        rule = {k: row[k] for k in ("name", "startIp", "endIp", "enabled")}
        if problems := _row_problems(rule):
            row_errors[i] = problems
        rules.append(rule)
    if any(new.values()):
        rule = {**new, "enabled": True}
        if problems := _row_problems(rule):
            row_errors["new"] = problems
        rules.append(rule)
    if row_errors:
        errors = {"_": "a firewall rule is not valid; see the rule marked below"}
        return _networking_page(
            request, who, key, status=422, rows=rows, new=new, row_errors=row_errors, errors=errors
        )
    address = address_of(request)
    if not form.get("force"):
        message = _lock_out_message(list(key.firewall_rules), rules, address)
        if message:
            return _networking_page(
                request, who, key, status=409, rows=rows, new=new, lock_out=message
            )
    try:
        body = key_api.KeyPatch.model_validate({"firewallRules": rules})
        key_service.patch_key(
            who.rt,
            client_id,
            body.model_dump(exclude_unset=True),
            caller=who.principal,
            force=bool(form.get("force")),
        )
    except ValidationError as exc:
        return _networking_page(
            request, who, key, status=422, rows=rows, new=new, errors=_model_errors(exc)
        )
    except JobportError as exc:
        if exc.status in (403, 404):
            raise
        return _networking_page(
            request, who, key, status=exc.status, rows=rows, new=new, errors=form_errors(exc)
        )
    return redirect(_key_url(client_id, "/networking") + "?saved=1", request)


@router.post(BASE + "/keys/{client_id}/networking/my-address")
async def add_my_address(
    request: Request, client_id: str, who: Viewer = Depends(viewer)
) -> Response:
    who.authorize("keys:write", None)
    key_service.add_current_address(who.rt, client_id, address_of(request), None)
    return redirect(_key_url(client_id, "/networking") + "?added=1", request)


# --- rotate and delete -------------------------------------------------------------------


def _rotate_form(
    request: Request,
    who: Viewer,
    key: Any,
    *,
    status: int = 200,
    errors: dict[str, str],
    until: str,
) -> Response:
    return page(
        request,
        "access/rotate.html",
        who,
        status=status,
        key=key_api.render(key, who.rt),
        errors=errors,
        until=until,
        overlap_hours=who.rt.settings.key_rotation_overlap_hours,
        section="keys",
    )


@router.get(BASE + "/keys/{client_id}/rotate")
async def rotate_form(request: Request, client_id: str, who: Viewer = Depends(viewer)) -> Response:
    who.authorize("keys:write", None)
    key = key_service.get_key(who.rt, client_id)
    hours = who.rt.settings.key_rotation_overlap_hours
    until = dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)
    return _rotate_form(request, who, key, errors={}, until=until.strftime("%Y-%m-%dT%H:%M"))


@router.post(BASE + "/keys/{client_id}/rotate")
async def rotate(
    request: Request,
    client_id: str,
    until: Annotated[str, Form()] = "",
    who: Viewer = Depends(viewer),
) -> Response:
    who.authorize("keys:write", None)
    key = key_service.get_key(who.rt, client_id)
    old_valid_until = None
    if until.strip():
        try:
            old_valid_until = _utc(dt.datetime.fromisoformat(until.strip()))
        except ValueError:
            errors = {"_": "not a time", "oldSecretValidUntil": "not a time (YYYY-MM-DDTHH:MM)"}
            return _rotate_form(request, who, key, status=422, errors=errors, until=until)
    try:
        rotated, secret = key_service.rotate_key(who.rt, client_id, old_valid_until=old_valid_until)
    except JobportError as exc:
        if exc.status in (403, 404):
            raise
        return _rotate_form(
            request, who, key, status=exc.status, errors=form_errors(exc), until=until
        )
    return _secret_page(request, who, rotated, secret, rotated=True, status=200)


@router.get(BASE + "/keys/{client_id}/delete")
async def delete_form(request: Request, client_id: str, who: Viewer = Depends(viewer)) -> Response:
    who.authorize("keys:write", None)
    key = key_api.render(key_service.get_key(who.rt, client_id), who.rt)
    return page(
        request,
        "access/confirm.html",
        who,
        title=f"Delete API key {key['clientId']}?",
        lines=[
            f"Description: {key['description'] or '(none)'}",
            "Whoever calls with it is refused from now on. A deleted key's client id is "
            "never issued again, so it cannot be added back.",
        ],
        action=_key_url(client_id, "/delete"),
        confirm="Delete key",
        back=_key_url(client_id),
        section="keys",
    )


@router.post(BASE + "/keys/{client_id}/delete")
async def delete(request: Request, client_id: str, who: Viewer = Depends(viewer)) -> Response:
    who.authorize("keys:write", None)
    key_service.delete_key(who.rt, client_id)
    return redirect(f"{BASE}/keys?deleted={quote(client_id, safe='')}", request)


# --- roles -------------------------------------------------------------------------------


def _levels(who: Viewer) -> list[str]:
    """The projects whose roles the viewer may read (the application level comes first)."""
    only = who.principal.project_ids("roles:read")
    found = project_service.list_page(who.rt, cursor=None, limit=500, only=only)
    return [p.name for p in found.items]


def _may_write_roles(who: Viewer, project: str | None) -> bool:
    """Whether to offer adding and removing members (the service checks it again)."""
    if project is None or who.can("roles:write"):
        return who.can("roles:write")
    return who.can("roles:write", project_service.get(who.rt, project).id)


def _key_names(who: Viewer) -> dict[str, str]:
    if not who.can("keys:read"):
        return {}
    return {k.client_id: k.description for k in _all_keys(who)}


@router.get(BASE + "/roles")
async def roles_page(
    request: Request, project: str | None = None, who: Viewer = Depends(viewer)
) -> Response:
    project = project or None
    levels = _levels(who)
    if project is None and not who.can("roles:read") and levels:
        project = levels[0]  # roles only in some projects: the first of them
    who.authorize("roles:read", project)
    roles = role_service.list_roles(who.rt, project)
    return page(
        request,
        "access/roles.html",
        who,
        roles=[role_api.render(r) for r in roles],
        project=project,
        projects=levels,
        can_app=who.can("roles:read"),
        role_url=_role_url,
        section="roles",
    )


@router.get(BASE + "/roles/{role}")
async def role_page(
    request: Request, role: str, project: str | None = None, who: Viewer = Depends(viewer)
) -> Response:
    project = project or None
    who.authorize("roles:read", project)
    found = role_api.render(role_service.get_role(who.rt, project, role))
    siblings = [r.name for r in role_service.list_roles(who.rt, project)]
    return page(
        request,
        "access/role.html",
        who,
        role=found,
        siblings=siblings,
        project=project,
        key_names=_key_names(who),
        can_write=_may_write_roles(who, project),
        member_labels=MEMBER_LABELS,
        role_url=_role_url,
        section="roles",
    )


def _member_form(
    request: Request,
    who: Viewer,
    role: str,
    project: str | None,
    member_type: str,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    chosen: str = "",
) -> Response:
    found = role_api.render(role_service.get_role(who.rt, project, role))
    member_type = member_type if member_type in MEMBER_TYPES else "user"
    choices: list[tuple[str, str]] | None = None  # None: type the id (no right to list them)
    if member_type == "apiKey" and who.can("keys:read"):
        choices = [
            (k.client_id, f"{k.description or '(no description)'} ({k.client_id})")
            for k in _all_keys(who)
        ]
    elif member_type == "user" and who.can("users:read"):
        choices = [(u.username, u.username) for u in user_service.list_users(who.rt)]
    return page(
        request,
        "access/add_member.html",
        who,
        status=status,
        role=found,
        project=project,
        member_type=member_type,
        member_labels=MEMBER_LABELS,
        choices=choices,
        chosen=chosen,
        errors=errors or {},
        role_url=_role_url,
        section="roles",
    )


@router.get(BASE + "/roles/{role}/add-member")
async def add_member_form(
    request: Request,
    role: str,
    project: str | None = None,
    type: str = "user",
    who: Viewer = Depends(viewer),
) -> Response:
    project = project or None
    who.authorize("roles:write", project)
    return _member_form(request, who, role, project, type)


@router.post(BASE + "/roles/{role}/members")
async def add_member(
    request: Request,
    role: str,
    project: str | None = None,
    type: Annotated[str, Form()] = "",
    id: Annotated[str, Form()] = "",
    who: Viewer = Depends(viewer),
) -> Response:
    project = project or None
    who.authorize("roles:write", project)
    try:
        member = role_api.Member.model_validate({"type": type, "id": id.strip()})
        if not member.id:
            raise Invalid(
                "choose a member",
                code="invalid_member",
                details=[{"field": "id", "reason": "choose one"}],
            )
        role_service.add_member(who.rt, project, role, member.type, member.id)
    except ValidationError as exc:
        return _member_form(
            request, who, role, project, type, status=422, errors=_model_errors(exc), chosen=id
        )
    except JobportError as exc:
        if exc.status == 403 or exc.code == "role_not_found":
            raise
        errors = form_errors(exc)
        errors.setdefault("id", exc.message)
        status = exc.status if exc.status >= 400 else 422
        return _member_form(
            request, who, role, project, type, status=status, errors=errors, chosen=id
        )
    return redirect(_role_url(role, project), request)


@router.get(BASE + "/roles/{role}/members/{member_type}/{member_id}/remove")
async def remove_member_form(
    request: Request,
    role: str,
    member_type: str,
    member_id: str,
    project: str | None = None,
    who: Viewer = Depends(viewer),
) -> Response:
    project = project or None
    who.authorize("roles:write", project)
    found = role_service.get_role(who.rt, project, role)
    what = MEMBER_LABELS.get(member_type, member_type).removesuffix("s").lower()
    where = f"project {project}" if project else "the application"
    tail = f"/members/{quote(member_type, safe='')}/{quote(member_id, safe='')}/remove"
    return page(
        request,
        "access/confirm.html",
        who,
        title=f"Remove {what} {member_id} from role {found.name}?",
        lines=[f"It loses the scopes of role {found.name} in {where}."],
        action=_role_url(role, project, tail),
        confirm="Remove member",
        back=_role_url(role, project),
        section="roles",
    )


@router.post(BASE + "/roles/{role}/members/{member_type}/{member_id}/remove")
async def remove_member(
    request: Request,
    role: str,
    member_type: str,
    member_id: str,
    project: str | None = None,
    who: Viewer = Depends(viewer),
) -> Response:
    project = project or None
    who.authorize("roles:write", project)
    role_service.remove_member(who.rt, project, role, member_type, member_id)
    return redirect(_role_url(role, project), request)
