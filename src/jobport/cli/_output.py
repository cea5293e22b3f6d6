"""How commands print: tables, JSON, times, durations and log lines."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

# rich is imported where it is used: with yaml it cost every call 0.15 s.

T = TypeVar("T")
Row = Callable[[dict[str, Any]], list[str]]


def print_table(columns: list[str], rows: list[list[str]]) -> None:
    """Rows of plain text (never read as Rich markup) in aligned columns on stdout."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None)
    for index, column in enumerate(columns):
        table.add_column(column, no_wrap=index < len(columns) - 1)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console = Console(highlight=False)
    if not console.is_terminal:  # piped: keep rows whole for grep and friends
        console.width = max(console.width, 200)
    console.print(table)


def print_fields(fields: dict[str, str]) -> None:
    """One object for people: a line a field, the names in a column."""
    for name, value in fields.items():
        typer.echo(f"{name:<11} {value}")


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def print_json_or(value: T, as_json: bool, render: Callable[[T], str | None]) -> None:
    """What a command prints of the server's answer: with --json the answer as it came, else
    `render(value)`, which prints it for people or returns the one line to print."""
    if as_json:
        print_json(value)
        return
    line = render(value)
    if line is not None:
        typer.echo(line)


def print_rows(items: list[dict[str, Any]], as_json: bool, columns: list[str], row: Row) -> None:
    """A list the server returned: with --json as it came, else a table of `row(item)`s."""
    print_json_or(items, as_json, lambda _: print_table(columns, [row(item) for item in items]))


def print_page(page: dict[str, Any], as_json: bool, columns: list[str], row: Row) -> None:
    """One page of a list, as `print_rows`; for people, then how to ask for the next page."""

    def render(page: dict[str, Any]) -> None:
        print_table(columns, [row(item) for item in page["items"]])
        if page.get("nextCursor"):
            typer.echo(f"more: --cursor {page['nextCursor']}", err=True)

    print_json_or(page, as_json, render)


def _moment(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def when(stamp: str | None) -> str:
    """A wire timestamp in local time, to the second."""
    if not stamp:
        return "-"
    return _moment(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def when_in(stamp: str | None, zone: str) -> str:
    """A wire timestamp (UTC) in the IANA time zone `zone`, to the second."""
    from zoneinfo import ZoneInfo

    if not stamp:
        return "-"
    return _moment(stamp).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


def local_zone() -> str:
    """The name of this machine's time zone, the one `when` prints in."""
    try:
        import tzlocal

        return str(tzlocal.get_localzone_name())
    except Exception:  # no zone configured: the offset's abbreviation still says it
        return dt.datetime.now().astimezone().tzname() or "local time"


def took(execution: dict[str, Any]) -> str:
    started, finished = execution.get("startedAt"), execution.get("finishedAt")
    if not started or not finished:
        return "-"
    return f"{(_moment(finished) - _moment(started)).total_seconds():.1f}s"


def print_line(line: dict[str, Any], out: Any = None) -> None:
    """A log line: a step's own output as it was written, jobport's notes on stderr."""
    text = line.get("text", "")
    if line.get("stream") == "system":
        print(f"· {text}", file=sys.stderr, flush=True)
    elif line.get("stream") == "stderr":
        print(text, file=sys.stderr, flush=True)
    else:
        print(text, file=out or sys.stdout, flush=True)


def summary(execution: dict[str, Any]) -> str:
    return f"{execution['status']}: {execution['jobName']} {execution['id']} ({took(execution)})"
