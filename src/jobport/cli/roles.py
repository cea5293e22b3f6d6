"""`jobport roles ...`: roles (named sets of scopes) and who holds them."""

from __future__ import annotations

from typing import Annotated

import typer

from jobport.cli._output import print_json, print_table
from jobport.cli._shared import JsonOption, LocalOption, ProjectOption, UrlOption, session

roles_app = typer.Typer(no_args_is_help=True, help="Roles (sets of scopes) and their members.")

KeyMemberOption = Annotated[
    str | None, typer.Option("--key", metavar="CLIENT_ID", help="An API key, by client id.")
]
UserMemberOption = Annotated[str | None, typer.Option("--user", help="A user, by username.")]


def _member(key: str | None, user: str | None) -> tuple[str, str]:
    if bool(key) == bool(user):
        raise typer.BadParameter("give --key CLIENT_ID or --user USERNAME")
    return ("apiKey", key) if key else ("user", user)  # type: ignore[return-value]


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
    if as_json:
        print_json(roles)
        return
    rows = [
        [
            role["name"],
            role["level"],
            " ".join(role["scopes"]),
            ", ".join(f"{m['type']}:{m['id']}" for m in role["members"]) or "-",
        ]
        for role in roles
    ]
    print_table(["ROLE", "LEVEL", "SCOPES", "MEMBERS"], rows)


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
    if as_json:
        print_json(role)
        return
    where = f" in project {project}" if project else ""
    typer.echo(f"created role {role['name']}{where}: {' '.join(role['scopes'])}")


@roles_app.command("add-member")
def roles_add_member(
    ctx: typer.Context,
    role: Annotated[str, typer.Argument(metavar="ROLE")],
    key: KeyMemberOption = None,
    user: UserMemberOption = None,
    project: ProjectOption = None,
    as_json: JsonOption = False,
    local: LocalOption = False,
    url: UrlOption = None,
) -> None:
    """Give a role to an API key or a user (in --project only, if given)."""
    member_type, member_id = _member(key, user)
    with session(ctx, url, local=local) as client:
        answer = client.add_role_member(role, member_type, member_id, project)
    if as_json:
        print_json(answer)
        return
    where = f" in project {project}" if project else ""
    typer.echo(f"{member_type} {member_id} has role {role}{where}")


@roles_app.command("remove-member")
def roles_remove_member(
    ctx: typer.Context,
    role: Annotated[str, typer.Argument(metavar="ROLE")],
    key: KeyMemberOption = None,
    user: UserMemberOption = None,
    project: ProjectOption = None,
    local: LocalOption = False,
    url: UrlOption = None,
) -> None:
    """Take a role away from an API key or a user."""
    member_type, member_id = _member(key, user)
    with session(ctx, url, local=local) as client:
        client.remove_role_member(role, member_type, member_id, project)
    where = f" in project {project}" if project else ""
    typer.echo(f"{member_type} {member_id} no longer has role {role}{where}")
