"""`jobport executions ...`: list, show, follow and cancel runs, and how a command watches one."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer

from jobport.cli._output import (
    print_fields,
    print_json,
    print_json_or,
    print_line,
    print_page,
    print_table,
    took,
    when,
)
from jobport.cli._shared import (
    EXIT_RUN_FAILED,
    CursorOption,
    JsonOption,
    LimitOption,
    TimeoutOption,
    UrlOption,
    session,
)
from jobport.client import FINAL_STATUSES, Client

executions_app = typer.Typer(no_args_is_help=True, help="List, show, follow and cancel runs.")
IdArgument = Annotated[str, typer.Argument(metavar="ID")]


def await_with_spinner(
    client: Client, execution: dict[str, Any], timeout: float | None, verb: str = "running"
) -> dict[str, Any]:
    """The execution once it has ended (or `timeout` passed), with a spinner on stderr."""
    from rich.console import Console
    from rich.text import Text

    label = f"{verb} {execution['jobName']} {execution['id']}"
    with Console(stderr=True).status(Text(label)):
        return client.wait(execution["id"], timeout)


def follow_run(
    client: Client,
    execution_id: str,
    timeout: float | None,
    after: int = 0,
    out: Any = None,
    emit: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Print the run's log lines (or hand each to `emit`) until it ends (or `timeout`
    passes); return the execution."""
    failure: list[BaseException] = []

    def pump() -> None:
        try:
            for line in client.follow_logs(execution_id, after=after):
                if emit is not None:
                    emit(line)
                else:
                    print_line(line, out)
        except BaseException as exc:  # handed to the main thread
            failure.append(exc)

    # A thread, so that --timeout holds even while a silent step keeps the stream idle.
    reader = threading.Thread(target=pump, name="jobport-follow", daemon=True)
    reader.start()
    reader.join(timeout)
    if failure:
        raise failure[0]
    return client.get_execution(execution_id)


def _execution_row(execution: dict[str, Any]) -> list[str]:
    return [
        execution["id"],
        execution["jobName"],
        execution["status"],
        execution["trigger"],
        when(execution["createdAt"]),
        took(execution),
    ]


def _print_execution(execution: dict[str, Any]) -> None:
    """A run's fields, a table of its steps, and its result."""
    error = execution.get("error")
    fields = {
        "id": execution["id"],
        "job": execution["jobName"],
        "status": execution["status"],
        "trigger": execution["trigger"],
        "mode": execution["mode"],
        "attempt": str(execution["attempt"]),
        "parameters": json.dumps(execution["parameters"], ensure_ascii=False),
        "created": when(execution["createdAt"]),
        "started": when(execution["startedAt"]),
        "finished": f"{when(execution['finishedAt'])} (took {took(execution)})",
        "error": f"{error['code']}: {error['message']}" if error else "-",
        "log lines": str(execution["logLines"]),
    }
    print_fields(fields)
    steps = [
        [
            step["name"],
            step["status"],
            when(step.get("startedAt")),
            when(step.get("finishedAt")),
            str(step.get("error") or ""),
        ]
        for step in execution["steps"]
    ]
    typer.echo("")
    print_table(["STEP", "STATUS", "STARTED", "FINISHED", "ERROR"], steps)
    if execution.get("result") is not None:
        typer.echo("result:")
        print_json(execution["result"])


@executions_app.command("list")
def executions_list(
    ctx: typer.Context,
    project: Annotated[str, typer.Argument(help="Project name or id.")],
    job: Annotated[str | None, typer.Option("--job", help="Only this job's runs.")] = None,
    status: Annotated[
        list[str] | None, typer.Option("--status", help="Only runs in this status (repeatable).")
    ] = None,
    limit: LimitOption = 20,
    cursor: CursorOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """A project's runs, newest first."""
    with session(ctx, url) as client:
        page = client.list_executions(project, job=job, status=status, limit=limit, cursor=cursor)
    print_page(page, as_json, ["ID", "JOB", "STATUS", "TRIGGER", "CREATED", "TOOK"], _execution_row)


@executions_app.command("show")
def executions_show(
    ctx: typer.Context,
    execution_id: IdArgument,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """One run: status, parameters, steps, error and result."""
    with session(ctx, url) as client:
        execution = client.get_execution(execution_id)
    print_json_or(execution, as_json, _print_execution)


# Said on stderr (the command still exits 0) when retention removed the run's log lines.
LOGS_PRUNED = (
    "· the log lines of this run were removed by the retention policy (how long they are "
    "kept: JOBPORT_LOG_RETENTION_DAYS on the server, or the job's retention.logDays)"
)


def _json_line(value: dict[str, Any]) -> None:
    print(json.dumps(value, ensure_ascii=False, separators=(",", ":")), flush=True)


@executions_app.command("logs")
def executions_logs(
    ctx: typer.Context,
    execution_id: IdArgument,
    follow: Annotated[bool, typer.Option("--follow", help="Keep printing until the end.")] = False,
    after: Annotated[int, typer.Option("--after", min=0, help="Start after this seq.")] = 0,
    iteration: Annotated[
        int | None, typer.Option("--item", min=0, help="Only this foreach item's lines.")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="JSON Lines: each log line as the server gave it, then one object with "
            "nextAfter, status, finished and logsPruned.",
        ),
    ] = False,
    url: UrlOption = None,
) -> None:
    """A run's log lines: its steps' output on stdout/stderr, jobport's notes as '· '.

    When retention removed the run's log lines, a note on stderr says so (exit 0)."""
    seen = after

    def emit(line: dict[str, Any]) -> None:
        nonlocal seen
        seen = max(seen, int(line.get("seq", seen)))
        if as_json:
            _json_line(line)
        else:
            print_line(line)

    with session(ctx, url) as client:
        if follow and iteration is None:
            try:
                follow_run(client, execution_id, None, after=after, emit=emit)
            except KeyboardInterrupt:
                raise typer.Exit(130) from None
            # The stream has ended; one page after it says how (and whether the lines
            # were pruned, which the stream's end does not hand over).
            after, follow = seen, False
        while True:
            page = client.logs(execution_id, after=after, limit=1000, iteration=iteration)
            for line in page["items"]:
                emit(line)
            if page["finished"] or (not page["items"] and not follow):
                break
            if not page["items"]:
                time.sleep(0.5)
            after = page["nextAfter"]
    if as_json:
        _json_line({k: v for k, v in page.items() if k != "items"})
    if page.get("logsPruned"):
        typer.echo(LOGS_PRUNED, err=True)


def _item_row(item: dict[str, Any]) -> list[str]:
    value = json.dumps(item["item"], ensure_ascii=False)
    return [
        str(item["index"]),
        item["status"],
        str(item["attempts"]),
        when(item.get("finishedAt")),
        value if len(value) <= 60 else value[:57] + "...",
        str(item.get("error") or ""),
    ]


@executions_app.command("items")
def executions_items(
    ctx: typer.Context,
    execution_id: IdArgument,
    status: Annotated[
        str | None,
        typer.Option("--status", help="pending, succeeded, failed, timed_out, ..."),
    ] = None,
    after: Annotated[int, typer.Option("--after", min=-1, help="Start after this index.")] = -1,
    limit: LimitOption = 100,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """A foreach run's items: each one's status, attempts and error, in index order."""
    with session(ctx, url) as client:
        page = client.items(execution_id, after=after, limit=limit, status=status)
    if as_json:
        print_json(page)
        return
    rows = [_item_row(i) for i in page["items"]]
    print_table(["INDEX", "STATUS", "TRIES", "FINISHED", "ITEM", "ERROR"], rows)
    if page.get("nextAfter") is not None:
        typer.echo(f"more: --after {page['nextAfter']}", err=True)


@executions_app.command("cancel")
def executions_cancel(
    ctx: typer.Context,
    execution_id: IdArgument,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until it has stopped.")] = False,
    timeout: TimeoutOption = None,
    url: UrlOption = None,
) -> None:
    """Stop a run. With --wait, exit 0 once it is cancelled, 1 if it ended otherwise."""
    with session(ctx, url) as client:
        execution = client.cancel(execution_id)
        if wait and execution["status"] not in FINAL_STATUSES:
            execution = await_with_spinner(client, execution, timeout, verb="cancelling")
    typer.echo(f"{execution['status']}: {execution['jobName']} {execution['id']}")
    if wait and execution["status"] != "cancelled":
        raise typer.Exit(EXIT_RUN_FAILED)
