"""`jobport connections ...`: a project's named databases and HTTP services, which steps use.

A connection's password and header values are stored encrypted on the server and never come
back: every command shows the URL with its password masked (`***`) and the headers by name.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from jobport.cli._output import print_fields, print_json_or, print_rows, when
from jobport.cli._shared import (
    EXIT_OK,
    EXIT_RUN_FAILED,
    JsonOption,
    UrlOption,
    fail,
    session,
    split_target,
)

connections_app = typer.Typer(
    no_args_is_help=True,
    help="A project's connections (databases, HTTP services): create, list, test, delete.",
)

ConnectionArgument = Annotated[str, typer.Argument(metavar="PROJECT/NAME")]
# In create and update, --url is the connection's: the server is the global `jobport --url`.
ConnectionUrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="The connection's URL (the server's: `jobport --url URL connections ...`): "
        "a SQLAlchemy database URL (postgresql://user:pw@host/db, sqlite:///file.db, "
        "mysql+pymysql://...) or an http(s) base URL. On a command line a password is seen "
        "by `ps` and kept in the shell's history: prefer --url-stdin.",
        show_default=False,
    ),
]
UrlStdinOption = Annotated[
    bool,
    typer.Option(
        "--url-stdin",
        help="Read the URL from the first line of standard input (at a terminal: asked for, "
        "not echoed), so that its password is never on the command line (`ps`, shell history).",
    ),
]
DescriptionOption = Annotated[
    str | None, typer.Option("--description", help="What it is.", show_default=False)
]
HeaderOption = Annotated[
    list[str] | None,
    typer.Option(
        "--header",
        help="'Name: value', sent with every request of an http connection (repeatable).",
        show_default=False,
    ),
]


def _target(target: str) -> tuple[str, str]:
    try:
        return split_target(target)
    except typer.BadParameter:
        raise typer.BadParameter(f"{target!r} is not PROJECT/NAME") from None


def _url(url: str | None, from_stdin: bool) -> str | None:
    """The URL of --url, or of the first line of stdin with --url-stdin; None if neither."""
    if url is not None and from_stdin:
        raise typer.BadParameter("give --url or --url-stdin, not both")
    if not from_stdin:
        return url
    if sys.stdin.isatty():  # typed: not echoed either (asked on stderr: stdout is the answer)
        return str(typer.prompt("Connection URL", hide_input=True, err=True)).strip()
    line = sys.stdin.readline().strip()
    if not line:
        fail("error: no URL on standard input")
    return line


def _headers(pairs: list[str]) -> dict[str, str]:
    """--header 'Name: value' options as a mapping; the server checks the names."""
    headers: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition(":")
        if not sep or not name.strip():
            raise typer.BadParameter(f"{pair!r} is not 'Name: value'", param_hint="--header")
        headers[name.strip()] = value.strip()
    return headers


def _header_names(connection: dict[str, Any]) -> str:
    return ", ".join(connection.get("headers") or {})


def _row(connection: dict[str, Any]) -> list[str]:
    return [
        connection["name"],
        connection["kind"],
        connection["url"],
        _header_names(connection) or "-",
        connection.get("description") or "",
    ]


def _print_connection(connection: dict[str, Any]) -> None:
    print_fields(
        {
            "name": connection["name"],
            "kind": connection["kind"],
            "url": connection["url"],
            "headers": _header_names(connection) or "none",
            "description": connection.get("description") or "-",
            "created": when(connection.get("createdAt")),
            "updated": when(connection.get("updatedAt")),
            "id": connection["id"],
        }
    )


def _verdict(name: str, probe: dict[str, Any]) -> str:
    """`ok: sql connection dw in 12 ms` or `failed: ...: why`."""
    verdict = "ok" if probe.get("ok") else "failed"
    elapsed = probe.get("elapsedMs")
    took = f" in {elapsed:g} ms" if isinstance(elapsed, int | float) else ""
    message = f": {probe['message']}" if probe.get("message") else ""
    return f"{verdict}: {probe.get('kind', '?')} connection {name}{took}{message}"


def _saved(verb: str) -> Callable[[dict[str, Any]], str]:
    """`created connection dw (sql): postgresql://etl:***@db/dw`, for `verb`."""
    return lambda c: f"{verb} connection {c['name']} ({c['kind']}): {c['url']}"


@connections_app.command("list")
def connections_list(
    ctx: typer.Context,
    project: Annotated[str, typer.Argument(help="Project name or id.")],
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """The project's connections, their URLs masked and their headers by name."""
    with session(ctx, url) as client:
        connections = client.list_connections(project)
    print_rows(connections, as_json, ["NAME", "KIND", "URL", "HEADERS", "DESCRIPTION"], _row)


@connections_app.command("show")
def connections_show(
    ctx: typer.Context,
    target: ConnectionArgument,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """One connection (never its secrets)."""
    project, name = _target(target)
    with session(ctx, url) as client:
        connection = client.get_connection(project, name)
    print_json_or(connection, as_json, _print_connection)


@connections_app.command("create")
def connections_create(
    ctx: typer.Context,
    target: ConnectionArgument,
    connection_url: ConnectionUrlOption = None,
    url_stdin: UrlStdinOption = False,
    description: DescriptionOption = None,
    header: HeaderOption = None,
    as_json: JsonOption = False,
) -> None:
    """A new connection: a database (SQLAlchemy URL) or an HTTP service (base URL, headers).

    Its password and header values are stored encrypted, and never shown again.

    --url-stdin keeps the password out of `ps` and the shell history:

    printf '%s\\n' "$DSN" | jobport connections create sales/dw --url-stdin
    """
    project, name = _target(target)
    address = _url(connection_url, url_stdin)
    if address is None:
        raise typer.BadParameter("give the connection's --url, or --url-stdin")
    headers = _headers(header or [])
    with session(ctx, None) as client:
        connection = client.create_connection(project, name, address, description or "", headers)
    print_json_or(connection, as_json, _saved("created"))


@connections_app.command("update")
def connections_update(
    ctx: typer.Context,
    target: ConnectionArgument,
    connection_url: ConnectionUrlOption = None,
    url_stdin: UrlStdinOption = False,
    description: DescriptionOption = None,
    header: HeaderOption = None,
    clear_headers: Annotated[
        bool, typer.Option("--clear-headers", help="Remove every header.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Change a connection's URL, description or headers.

    A URL whose password is *** keeps the stored password.

    --header replaces the set of headers; 'Name: ***' keeps that header's stored value.
    """
    project, name = _target(target)
    changes: dict[str, Any] = {}
    address = _url(connection_url, url_stdin)
    if address is not None:
        changes["url"] = address
    if description is not None:
        changes["description"] = description
    if header and clear_headers:
        raise typer.BadParameter("give --header or --clear-headers, not both")
    if header or clear_headers:
        changes["headers"] = _headers(header or [])
    if not changes:
        raise typer.BadParameter(
            "nothing to change: give --url, --url-stdin, --description, --header or --clear-headers"
        )
    with session(ctx, None) as client:
        connection = client.update_connection(project, name, **changes)
    print_json_or(connection, as_json, _saved("updated"))


@connections_app.command("delete")
def connections_delete(
    ctx: typer.Context,
    target: ConnectionArgument,
    url: UrlOption = None,
) -> None:
    """Remove a connection; the steps that name it fail from then on."""
    project, name = _target(target)
    with session(ctx, url) as client:
        client.delete_connection(project, name)
    typer.echo(f"deleted connection {name}")


@connections_app.command("test")
def connections_test(
    ctx: typer.Context,
    target: ConnectionArgument,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Try the connection from the server. Exit 0 if it works, 1 if not (and why)."""
    project, name = _target(target)
    with session(ctx, url) as client:
        probe = client.test_connection(project, name)
    print_json_or(probe, as_json, lambda p: _verdict(name, p))
    raise typer.Exit(EXIT_OK if probe.get("ok") else EXIT_RUN_FAILED)
