"""`jobport keys ...` and `jobport keys firewall ...`: API keys and the addresses they work from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from jobport.cli._output import print_fields, print_json_or, print_rows, print_table, when
from jobport.cli._shared import (
    GrantProjectOption,
    JsonOption,
    LocalOption,
    UrlOption,
    fail,
    grants,
    parse_time,
    session,
)

keys_app = typer.Typer(no_args_is_help=True, help="API keys: create, list, rotate, delete.")
firewall_app = typer.Typer(no_args_is_help=True, help="The addresses a key may be used from.")
keys_app.add_typer(firewall_app, name="firewall")

Rules = list[dict[str, Any]]
ClientIdArgument = Annotated[str, typer.Argument(metavar="CLIENT_ID")]


def _roles_text(grants: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{g['role']} in {g['project']}" if g.get("project") else g["role"] for g in grants
    )


def _expiry_text(key: dict[str, Any]) -> str:
    if not key.get("expiresAt"):
        return "never"
    note = " (expired)" if key.get("expired") else " (soon)" if key.get("expiresSoon") else ""
    return when(key["expiresAt"]) + note


def _print_rules(rules: Rules) -> None:
    if not rules:
        typer.echo("firewall    none: every address may use the key")
        return
    typer.echo("")
    print_table(
        ["RULE", "FROM", "TO", "ENABLED"],
        [
            [r["name"], r["startIp"], r["endIp"], "yes" if r.get("enabled", True) else "no"]
            for r in rules
        ],
    )


def _key_row(key: dict[str, Any]) -> list[str]:
    return [
        key["clientId"],
        _roles_text(key.get("roles") or []) or "-",
        _expiry_text(key) if key["enabled"] else "disabled",
        when(key.get("lastUsedAt")) if key.get("lastUsedAt") else "never",
        key.get("description") or "",
    ]


def _print_key(key: dict[str, Any]) -> None:
    used = key.get("lastUsedAt")
    fields = {
        "client id": key["clientId"],
        "description": key.get("description") or "-",
        "roles": _roles_text(key.get("roles") or []) or "none",
        "enabled": "yes" if key["enabled"] else "no",
        "expires": _expiry_text(key),
        "created": f"{when(key['createdAt'])} by {key.get('createdBy') or '-'}",
        "rotated": when(key.get("rotatedAt")),
        "last used": f"{when(used)} from {key.get('lastUsedIp')}" if used else "never",
    }
    if key.get("previousSecretValidUntil"):
        fields["old secret"] = f"valid until {when(key['previousSecretValidUntil'])}"
    print_fields(fields)
    _print_rules(key.get("firewallRules") or [])


def _print_new_secret(key: dict[str, Any], verb: str) -> None:
    typer.echo(f"{verb} API key {key['clientId']}")
    typer.echo(f"key            {key['key']}")
    typer.echo(f"client id      {key['clientId']}")
    typer.echo(f"client secret  {key['clientSecret']}")
    typer.echo(f"roles          {_roles_text(key.get('roles') or []) or 'none'}")
    typer.echo(f"expires        {_expiry_text(key)}")
    typer.echo(
        "the secret is shown this once: keep it now (e.g. as JOBPORT_KEY, or with "
        "`jobport login --client-id ... --client-secret ...`)",
        err=True,
    )


def _print_rotated(key: dict[str, Any]) -> None:
    _print_new_secret(key, "rotated")
    if key.get("previousSecretValidUntil"):
        typer.echo(f"the old secret works until {when(key['previousSecretValidUntil'])}", err=True)


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    description: Annotated[str, typer.Option("--description", help="What it is for.")] = "",
    role: Annotated[
        list[str] | None,
        typer.Option("--role", help="Give it this role (repeatable): Administrator, Operator, ..."),
    ] = None,
    project: GrantProjectOption = None,
    expires_at: Annotated[
        str | None,
        typer.Option("--expires-at", help="ISO 8601 date-time (default: in 90 days)."),
    ] = None,
    never_expires: Annotated[
        bool, typer.Option("--never-expires", help="A key without an expiry.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON of the API's create answer.")
    ] = False,
    local: LocalOption = False,
    url: UrlOption = None,
) -> None:
    """A new API key, holding the given roles. Its secret is printed this once."""
    if expires_at and never_expires:
        raise typer.BadParameter("give --expires-at or --never-expires, not both")
    if project and not role:
        raise typer.BadParameter("--project says where the --role applies; give a --role")
    expiry: dict[str, Any] = {}
    if never_expires:
        expiry["expires_at"] = None
    elif expires_at:
        expiry["expires_at"] = parse_time(expires_at, "--expires-at")
    # One call: the key and its roles are made together, or (a role missing) not at all.
    with session(ctx, url, local=local) as client:
        key = client.create_key(description, roles=grants(role, project), **expiry)
    print_json_or(key, as_json, lambda new: _print_new_secret(new, "created"))


@keys_app.command("list")
def keys_list(
    ctx: typer.Context,
    as_json: JsonOption = False,
    local: LocalOption = False,
    url: UrlOption = None,
) -> None:
    """Every API key, newest first (never their secrets)."""
    with session(ctx, url, local=local) as client:
        keys = client.list_keys()
    print_rows(
        keys, as_json, ["CLIENT ID", "ROLES", "EXPIRES", "LAST USED", "DESCRIPTION"], _key_row
    )


@keys_app.command("show")
def keys_show(
    ctx: typer.Context,
    client_id: ClientIdArgument,
    as_json: JsonOption = False,
    local: LocalOption = False,
    url: UrlOption = None,
) -> None:
    """One key: roles, expiry, last use, firewall rules."""
    with session(ctx, url, local=local) as client:
        key = client.get_key(client_id)
    print_json_or(key, as_json, _print_key)


@keys_app.command("rotate")
def keys_rotate(
    ctx: typer.Context,
    client_id: ClientIdArgument,
    old_secret_valid_until: Annotated[
        str | None,
        typer.Option(
            "--old-secret-valid-until",
            help="Until when the old secret keeps working (ISO 8601; default: in 24 hours).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON of the API's rotate answer.")
    ] = False,
    local: LocalOption = False,
    url: UrlOption = None,
) -> None:
    """A new secret for the key; the old one keeps working for a while, then stops."""
    until = (
        parse_time(old_secret_valid_until, "--old-secret-valid-until")
        if old_secret_valid_until
        else None
    )
    with session(ctx, url, local=local) as client:
        key = client.rotate_key(client_id, until)
    print_json_or(key, as_json, _print_rotated)


@keys_app.command("delete")
def keys_delete(
    ctx: typer.Context,
    client_id: ClientIdArgument,
    local: LocalOption = False,
    url: UrlOption = None,
) -> None:
    """Delete a key: it stops working at once, and its client id is never issued again."""
    with session(ctx, url, local=local) as client:
        client.delete_key(client_id)
    typer.echo(f"deleted API key {client_id}")


# -- firewall ----------------------------------------------------------------------------------


def _set_rules(
    ctx: typer.Context,
    client_id: str,
    change: Callable[[Rules], Rules],
    *,
    force: bool,
    local: bool,
    url: str | None,
) -> dict[str, Any]:
    """Apply `change(rules) -> rules` to the key's firewall rules; the key afterwards."""
    with session(ctx, url, local=local) as client:
        current = client.get_key(client_id)["firewallRules"]
        return client.update_key(client_id, firewall_rules=change(current), force=force)


ForceOption = Annotated[
    bool,
    typer.Option(
        "--force", help="Change the key you are calling with even if it would lock you out."
    ),
]


@firewall_app.command("add")
def firewall_add(
    ctx: typer.Context,
    client_id: ClientIdArgument,
    name: Annotated[str | None, typer.Option("--name", help="The rule's name.")] = None,
    start: Annotated[str | None, typer.Option("--start", help="First address allowed.")] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="Last address allowed (default: --start).")
    ] = None,
    my_address: Annotated[
        bool,
        typer.Option("--my-address", help="Allow the address the server sees this call from."),
    ] = False,
    force: ForceOption = False,
    local: LocalOption = False,
    url: UrlOption = None,
) -> None:
    """Allow an address range (IPv4 or IPv6) to use the key. No rules: every address may."""
    if my_address == bool(start):
        raise typer.BadParameter("give --start [--end] with --name, or --my-address")
    if my_address:
        if local:
            raise typer.BadParameter("--my-address needs a server: it is the address it sees")
        with session(ctx, url) as client:
            key = client.add_current_address(client_id, name)
    else:
        if not name:
            raise typer.BadParameter("a rule needs a --name", param_hint="--name")
        rule = {"name": name, "startIp": start, "endIp": end or start}
        key = _set_rules(
            ctx, client_id, lambda rules: [*rules, rule], force=force, local=local, url=url
        )
    _print_rules(key["firewallRules"])


@firewall_app.command("remove")
def firewall_remove(
    ctx: typer.Context,
    client_id: ClientIdArgument,
    name: Annotated[str, typer.Option("--name", help="The rule to remove.")],
    force: ForceOption = False,
    local: LocalOption = False,
    url: UrlOption = None,
) -> None:
    """Remove the key's firewall rules of that name. With none left, every address may use it."""

    def without(rules: Rules) -> Rules:
        kept = [r for r in rules if r["name"] != name]
        if len(kept) == len(rules):
            fail(f"error: rule_not_found: key {client_id} has no firewall rule named {name!r}")
        return kept

    key = _set_rules(ctx, client_id, without, force=force, local=local, url=url)
    _print_rules(key["firewallRules"])
