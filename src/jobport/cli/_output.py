"""How commands print: tables, JSON, times, durations and log lines."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

import typer

# rich is imported where it is used: with yaml it cost every call 0.15 s.


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


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


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
