"""What every command shares: exit codes, options, errors, and the one client factory."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from jobport.client import Client, JobportError, TransportError

# Exit codes of the commands that talk to a server.
EXIT_OK, EXIT_RUN_FAILED, EXIT_ERROR = 0, 1, 2

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="Server URL (default: the global --url, $JOBPORT_URL, or http://127.0.0.1:8080).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the JSON the server returned.")]
LocalOption = Annotated[
    bool,
    typer.Option(
        "--local",
        help="Work on this machine's database ($JOBPORT_DATABASE_URL) instead of a server: "
        "for the first key, and to recover when locked out.",
    ),
]
ProjectOption = Annotated[
    str | None,
    typer.Option("--project", help="A project's roles (name or id); default: application level."),
]
GrantProjectOption = Annotated[
    str | None, typer.Option("--project", help="Give the roles in this project only.")
]
TargetArgument = Annotated[str, typer.Argument(metavar="PROJECT/JOB")]  # then split_target
LimitOption = Annotated[int, typer.Option("--limit", min=1, max=500)]
CursorOption = Annotated[str | None, typer.Option("--cursor", help="Next page, as printed.")]
TimeoutOption = Annotated[
    float | None, typer.Option("--timeout", min=0, help="Stop waiting after this many seconds.")
]


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def api_message(exc: JobportError) -> str:
    """`error: <code>: <message>`, and each field of a multi-field refusal."""
    lines = [f"error: {exc.code}: {exc.message}"]
    if exc.code == "missing_credentials":
        lines.append("  (set JOBPORT_KEY to an API key, or run `jobport login`)")
    if isinstance(exc.details, list) and len(exc.details) > 1:
        lines += [
            f"  {d.get('field', '?')}: {d.get('reason', '')}"
            for d in exc.details
            if isinstance(d, dict)
        ]
    return "\n".join(lines)


@contextlib.contextmanager
def session(
    ctx: typer.Context, url: str | None, *, local: bool = False, **credentials: str
) -> Iterator[Client]:
    """The one client every command talks to; its errors end the command with 2.

    Over HTTP: a `Client` of the chosen server, with `credentials` (`Client`'s keywords, for
    `login`) or else those of the environment or the profile. With --local: the same
    `Client`, of the same API app run in this process on this machine's database, as the
    local principal (boot.local_client).
    """
    try:
        if local:
            # Imported here: the server's layers cost every HTTP command a second to import.
            from jobport import boot

            client = boot.local_client()
        else:
            # Credentials: these, or $JOBPORT_KEY, $JOBPORT_CLIENT_ID/SECRET, the profile.
            client = Client(url or (ctx.obj or {}).get("url"), **credentials)
    except ValueError as exc:
        fail(f"error: {exc}")
    except JobportError as exc:  # --local: the database could not be opened
        fail(api_message(exc))
    try:
        with client:
            yield client
    except TransportError as exc:
        fail(f"error: {exc.message}")
    except JobportError as exc:
        fail(api_message(exc))


def grants(roles: list[str] | None, project: str | None) -> list[dict[str, str | None]]:
    """--role (repeatable) and --project as the roles a new key or user is given."""
    return [{"role": name, "project": project} for name in roles or []]


def split_target(target: str) -> tuple[str, str]:
    project, sep, job = target.partition("/")
    if not sep or not project or not job:
        raise typer.BadParameter(f"{target!r} is not PROJECT/JOB")
    return project, job


def parse_time(value: str, option: str) -> dt.datetime:
    """An ISO 8601 date-time; one without a zone is local time."""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 date-time (e.g. 2027-01-31T18:00:00Z)",
            param_hint=option,
        ) from None
    return moment if moment.tzinfo else moment.astimezone()


def command_name() -> str:
    """How to run this `jobport` from here: `jobport` when that is the one on PATH, else
    the path of this installation's script (e.g. `.venv/bin/jobport`, which `make` makes and
    does not put on PATH)."""
    script = Path(sys.executable).parent / "jobport"  # beside the interpreter: a venv's bin
    if not script.exists():
        called = Path(sys.argv[0])
        if called.name != "jobport":
            return f"{sys.executable} -m jobport.cli"
        script = called
    found = shutil.which("jobport")
    if found and Path(found).resolve() == script.resolve():
        return "jobport"
    relative = os.path.relpath(script)
    return relative if not relative.startswith("..") else str(script)
