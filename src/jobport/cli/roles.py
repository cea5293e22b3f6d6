"""`jobport roles ...`: roles (named sets of scopes) and who holds them."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from jobport.cli._output import print_json_or, print_rows
from jobport.cli._shared import JsonOption, LocalOption, ProjectOption, UrlOption, session

roles_app = typer.Typer(no_args_is_help=True, help="Roles (sets of scopes) and their members.")

KeyMemberOption = Annotated[
    str | None, typer.Option("--key", metavar="CLIENT_ID", help="An API key, by client id.")
]
UserMemberOption = Annotated[str | None, typer.Option("--user", help="A user, by username.")]
RoleArgument = Annotated[str, typer.Argument(metavar="ROLE")]


def _member(key: str | None, user: str | None) -> tuple[str, str]:
    if bool(key) == bool(user):
        raise typer.BadParameter("give --key CLIENT_ID or --user USERNAME")
    return ("apiKey", key) if key else ("user", user)  # type: ignore[return-value]


def _where(project: str | None) -> str:
    return f" in project {project}" if project else ""


def _role_row(role: dict[str, Any]) -> list[str]:
    members = ", ".join(f"{m['type']}:{m['id']}" for m in role["members"])
    return [role["name"], role["level"], " ".join(role["scopes"]), members or "-"]


def _change_member(
    ctx: typer.Context,
    role: str,
    key: str | None,
    user: str | None,
    project: str | None,
    *,
    add: bool,
    as_json: bool = False,
    local: bool,
    url: str | None,
) -> None:
    """add-member (`add`) and remove-member: the --key or --user gains or loses ROLE."""
    member_type, member_id = _member(key, user)
    with session(ctx, url, local=local) as client:
        change = client.add_role_member if add else client.remove_role_member
        answer = change(role, member_type, member_id, project)
    has = "has" if add else "no longer has"
    print_json_or(
        answer, as_json, lambda _: f"{member_type} {member_id} {has} role {role}{_where(project)}"
    )


@roles_app.command("list")
def roles_list(
    ctx: typer.Context,
    project: ProjectOption = None,
    as_json: JsonOption = False,
    local: LocalOption = False,
    url: UrlOption = None,
) -> None:
    """The roles, built-in ones first, with their scopes and members."""
    with session(ctx, url, local=local) as client:
        roles = client.list_roles(project)
    print_rows(roles, as_json, ["ROLE", "LEVEL", "SCOPES", "MEMBERS"], _role_row)


@roles_app.command("create")
def roles_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", help="A scope it grants (repeatable): jobs:read, jobs:*, *, ..."),
    ],
    description: Annotated[str, typer.Option("--description")] = "",
    project: ProjectOption = None,
    as_json: JsonOption = False,
    local: LocalOption = False,
    url: UrlOption = None,
) -> None:
    """A role of your own: a named set of scopes, for every project or for one."""
    with session(ctx, url, local=local) as client:
        role = client.create_role(name, scope, description, project)
    print_json_or(
        role,
        as_json,
        lambda r: f"created role {r['name']}{_where(project)}: {' '.join(r['scopes'])}",
    )


@roles_app.command("add-member")
def roles_add_member(
    ctx: typer.Context,
    role: RoleArgument,
    key: KeyMemberOption = None,
    user: UserMemberOption = None,
    project: ProjectOption = None,
    as_json: JsonOption = False,
    local: LocalOption = False,
    url: UrlOption = None,
) -> None:
    """Give a role to an API key or a user (in --project only, if given)."""
    _change_member(ctx, role, key, user, project, add=True, as_json=as_json, local=local, url=url)


@roles_app.command("remove-member")
def roles_remove_member(
    ctx: typer.Context,
    role: RoleArgument,
    key: KeyMemberOption = None,
    user: UserMemberOption = None,
    project: ProjectOption = None,
    local: LocalOption = False,
    url: UrlOption = None,
) -> None:
    """Take a role away from an API key or a user."""
    _change_member(ctx, role, key, user, project, add=False, local=local, url=url)
