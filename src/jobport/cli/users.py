"""`jobport users ...`: console users and their passwords (with --local)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from jobport.cli._shared import GrantProjectOption, LocalOption, fail, grants, session

users_app = typer.Typer(no_args_is_help=True, help="Console users (on the database: --local).")

# Where `make run` keeps the admin's password, which it prints at every start (Makefile).
# Relative, like the default database (./jobport.db): both belong to the folder it runs in.
MAKE_RUN_PASSWORD = Path(".jobport") / "admin-password"

PasswordStdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from the first line of standard input."
    ),
]


def _new_password(local: bool, from_stdin: bool) -> str:
    """The password a --local command sets: from stdin's first line, or asked for twice."""
    if not local:
        raise typer.BadParameter(
            "users are managed on the server's database: run this where it can be opened, "
            "with --local"
        )
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            fail("error: no password on standard input")
        return password
    return str(typer.prompt("New password", hide_input=True, confirmation_prompt=True))


def _keep_make_run_password(username: str, password: str) -> None:
    """The admin's new password in MAKE_RUN_PASSWORD, when that file exists: else `make run`
    goes on printing the old one."""
    from jobport.settings import Settings

    if username != Settings().admin_username or not MAKE_RUN_PASSWORD.is_file():
        return
    partial = MAKE_RUN_PASSWORD.with_name(f".{MAKE_RUN_PASSWORD.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(password + "\n")
    os.replace(partial, MAKE_RUN_PASSWORD)  # never half a password for `make run` to print
    typer.echo(f"updated {MAKE_RUN_PASSWORD}, which `make run` prints", err=True)


@users_app.command("create")
def users_create(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(metavar="USERNAME")],
    role: Annotated[
        list[str] | None, typer.Option("--role", help="Give the user this role (repeatable).")
    ] = None,
    project: GrantProjectOption = None,
    password_stdin: PasswordStdinOption = False,
    local: LocalOption = False,
) -> None:
    """A console user with a password (at least 8 characters) and the given roles."""
    password = _new_password(local, password_stdin)
    with session(ctx, None, local=local) as client:
        client.create_user(username, password, grants(role, project))
    typer.echo(f"created user {username}")


@users_app.command("passwd")
def users_passwd(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(metavar="USERNAME")],
    password_stdin: PasswordStdinOption = False,
    local: LocalOption = False,
) -> None:
    """Set a user's password (for instance the admin's, when it is lost)."""
    password = _new_password(local, password_stdin)
    with session(ctx, None, local=local) as client:
        client.set_password(username, password)
    _keep_make_run_password(username, password)
    typer.echo(f"password of {username} changed")
