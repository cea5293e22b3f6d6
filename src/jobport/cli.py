"""The `jobport` command: serve, db, and (over HTTP) jobs, run, executions."""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import ipaddress
import json
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from jobport.client import (
    FINAL_STATUSES,
    APIError,
    BadRequest,
    Client,
    TransportError,
    ValidationFailed,
    definition_of,
)

app = typer.Typer(no_args_is_help=True, add_completion=False, help="jobport: a job server.")
db_app = typer.Typer(no_args_is_help=True, help="Database maintenance.")
app.add_typer(db_app, name="db")
jobs_app = typer.Typer(no_args_is_help=True, help="Define jobs from files; list and show them.")
app.add_typer(jobs_app, name="jobs")
executions_app = typer.Typer(no_args_is_help=True, help="List, show, follow and cancel runs.")
app.add_typer(executions_app, name="executions")

# rich and yaml are imported where they are used: together they cost every call 0.15 s.

# Exit codes of the HTTP commands.
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


class Mode(enum.StrEnum):
    full = "full"
    delta = "delta"


@app.callback()
def main_options(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="JOBPORT_URL",
            help="Server URL for the HTTP commands (default: http://127.0.0.1:8080).",
        ),
    ] = None,
) -> None:
    ctx.obj = {"url": url}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    host: str = typer.Option(None, help="Address to bind (default from settings: 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default from settings: 8080)."),
    workers: int = typer.Option(None, help="Worker processes (default: CPU count)."),
    demo: bool = typer.Option(False, help="Seed the demo project."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Run the API, the dispatcher and the worker pool."""
    import uvicorn

    from jobport.api.app import create_app
    from jobport.settings import Settings

    overrides = {k: v for k, v in {"host": host, "port": port, "workers": workers}.items() if v}
    settings = Settings(**overrides)
    if not _is_loopback(settings.host):
        typer.echo(
            f"refusing to bind {settings.host}: until API authentication is in place, "
            "jobport serves on loopback addresses only",
            err=True,
        )
        raise typer.Exit(2)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    if demo:
        url = f"http://{settings.host}:{settings.port}"
        typer.echo(
            f"jobport on {url}  (API docs: {url}/docs, database: {settings.database_url})\n"
            f"try:  curl -s -X POST '{url}/api/v1/projects/demo/jobs/hello/execute?wait=10'"
        )
    uvicorn.run(
        create_app(settings, demo=demo),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=False,
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations to JOBPORT_DATABASE_URL."""
    from jobport.settings import Settings
    from jobport.store.db import Database

    settings = Settings()
    db = Database(settings.database_url)
    db.upgrade()
    typer.echo(f"database at {settings.database_url} is up to date")


# -- the HTTP commands: plumbing -------------------------------------------------------------


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _api_message(exc: APIError) -> str:
    lines = [f"error: {exc.code}: {exc.message}"]
    if isinstance(exc.details, list) and len(exc.details) > 1:
        lines += [
            f"  {d.get('field', '?')}: {d.get('reason', '')}"
            for d in exc.details
            if isinstance(d, dict)
        ]
    return "\n".join(lines)


@contextlib.contextmanager
def _session(ctx: typer.Context, url: str | None) -> Iterator[Client]:
    """A client of the chosen server; API and connection errors end the command with 2."""
    url = url or (ctx.obj or {}).get("url")
    try:
        with Client(url) as client:
            yield client
    except APIError as exc:
        _fail(_api_message(exc))
    except TransportError as exc:
        _fail(f"error: {exc.message}")


def _split_target(target: str) -> tuple[str, str]:
    project, sep, job = target.partition("/")
    if not sep or not project or not job:
        raise typer.BadParameter(f"{target!r} is not PROJECT/JOB")
    return project, job


def _print_table(columns: list[str], rows: list[list[str]]) -> None:
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


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _when(stamp: str | None) -> str:
    """A wire timestamp in local time, to the second."""
    if not stamp:
        return "-"
    moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _took(execution: dict[str, Any]) -> str:
    started, finished = execution.get("startedAt"), execution.get("finishedAt")
    if not started or not finished:
        return "-"
    start = dt.datetime.fromisoformat(started.replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(finished.replace("Z", "+00:00"))
    return f"{(end - start).total_seconds():.1f}s"


def _print_line(line: dict[str, Any], out: Any = None) -> None:
    """A log line: a step's own output as it was written, jobport's notes on stderr."""
    text = line.get("text", "")
    if line.get("stream") == "system":
        print(f"· {text}", file=sys.stderr, flush=True)
    elif line.get("stream") == "stderr":
        print(text, file=sys.stderr, flush=True)
    else:
        print(text, file=out or sys.stdout, flush=True)


def _summary(execution: dict[str, Any]) -> str:
    return f"{execution['status']}: {execution['jobName']} {execution['id']} ({_took(execution)})"


def _end(execution: dict[str, Any], as_json: bool, waited: float | None) -> NoReturn:
    """Report a run that was waited for and exit 0 (succeeded) or 1 (anything else)."""
    status = execution["status"]
    if as_json:
        _print_json(execution)
    else:
        typer.echo(_summary(execution))
    if status == "succeeded":
        raise typer.Exit(EXIT_OK)
    if status not in FINAL_STATUSES:
        _fail(
            f"still {status} after {waited or 0:g}s; execution {execution['id']} keeps running "
            f"(stop it: jobport executions cancel {execution['id']})",
            EXIT_RUN_FAILED,
        )
    error = execution.get("error") or {}
    if error and not as_json:
        typer.echo(f"error: {error.get('code')}: {error.get('message')}", err=True)
    raise typer.Exit(EXIT_RUN_FAILED)


def _interrupted(execution_id: str) -> NoReturn:
    _fail(
        f"interrupted; execution {execution_id} keeps running "
        f"(stop it: jobport executions cancel {execution_id})",
        130,
    )


def _await_with_spinner(
    client: Client, execution: dict[str, Any], timeout: float | None, verb: str = "running"
) -> dict[str, Any]:
    from rich.console import Console
    from rich.text import Text

    label = f"{verb} {execution['jobName']} {execution['id']}"
    with Console(stderr=True).status(Text(label)):
        return client.wait(execution["id"], timeout)


def _follow(
    client: Client, execution_id: str, timeout: float | None, after: int = 0, out: Any = None
) -> dict[str, Any]:
    """Print the run's log lines until it ends (or `timeout` passes); return the execution."""
    failure: list[BaseException] = []

    def pump() -> None:
        try:
            for line in client.follow_logs(execution_id, after=after):
                _print_line(line, out)
        except BaseException as exc:  # handed to the main thread
            failure.append(exc)

    # A thread, so that --timeout holds even while a silent step keeps the stream idle.
    reader = threading.Thread(target=pump, name="jobport-follow", daemon=True)
    reader.start()
    reader.join(timeout)
    if failure:
        raise failure[0]
    return client.get_execution(execution_id)


def _parse_parameters(pairs: list[str], params_json: str | None) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    if params_json is not None:
        try:
            parameters = json.loads(params_json)
        except ValueError as exc:
            raise typer.BadParameter(f"not JSON: {exc}", param_hint="--params-json") from None
        if not isinstance(parameters, dict):
            raise typer.BadParameter("must be a JSON object", param_hint="--params-json")
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not k=v", param_hint="--param")
        try:
            parameters[key] = json.loads(raw)
        except ValueError:
            parameters[key] = raw
    return parameters


# -- jobs ------------------------------------------------------------------------------------


def _load_job_file(path: Path, project: str | None) -> tuple[str, str, list[dict[str, Any]]]:
    """(project, project description, definitions) from a YAML or JSON job file."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"error: cannot read {path}: {exc.strerror or exc}")
    import yaml

    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        _fail(f"error: {path} is not valid {kind}: {exc}", 1)
    description = ""
    if isinstance(data, dict) and "jobs" in data:
        unknown = sorted(set(data) - {"project", "description", "jobs"})
        if unknown:
            _fail(
                f"error: {path}: unknown top-level keys {unknown} "
                "(allowed: project, description, jobs)",
                1,
            )
        named = data.get("project")
        if project and named and project != named:
            _fail(f"error: {path} is for project {named!r}, but --project says {project!r}")
        project = project or named
        description = str(data.get("description") or "")
        definitions = data["jobs"] or []
    elif isinstance(data, dict):
        definitions = [data]
    elif isinstance(data, list):
        definitions = data
    else:
        _fail(f"error: {path} must hold a job, a list of jobs, or {{project, jobs}}", 1)
    if not project:
        _fail(f"error: {path} names no project; add `project:` to it or pass --project")
    if not isinstance(definitions, list):
        _fail(f"error: {path}: `jobs` must be a list", 1)
    for index, definition in enumerate(definitions):
        if not isinstance(definition, dict):
            _fail(f"error: {path}: job #{index + 1} is not a mapping", 1)
    names = [d.get("name") for d in definitions]
    twice = sorted({n for n in names if isinstance(n, str) and names.count(n) > 1})
    if twice:
        _fail(f"error: {path}: job names used twice: {', '.join(twice)}", 1)
    return str(project), description, definitions


@jobs_app.command("apply")
def jobs_apply(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Option("--file", "-f", help="YAML or JSON job file ('-' reads stdin).")
    ],
    project: Annotated[
        str | None, typer.Option("--project", help="Project, when the file names none.")
    ] = None,
    url: UrlOption = None,
) -> None:
    """Create or update the jobs of FILE so the server matches it. Safe to repeat."""
    project_name, description, definitions = _load_job_file(file, project)
    failed = False
    with _session(ctx, url) as client:
        client.ensure_project(project_name, description)
        for definition in definitions:
            ref = f"{project_name}/{definition.get('name', '?')}"
            try:
                verdict, _ = client.apply_job(project_name, definition)
            except (ValidationFailed, BadRequest) as exc:
                failed = True
                typer.echo(f"{ref}: {_api_message(exc)}", err=True)
                continue
            typer.echo(f"{verdict:<9} {ref}")
    if failed:
        raise typer.Exit(EXIT_RUN_FAILED)


@jobs_app.command("list")
def jobs_list(
    ctx: typer.Context,
    project: Annotated[str, typer.Argument(help="Project name or id.")],
    q: Annotated[str | None, typer.Option("--q", help="Name contains.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """The jobs of a project, with their last run."""
    with _session(ctx, url) as client:
        jobs = client.list_jobs(project, q=q)
    if as_json:
        _print_json(jobs)
        return
    rows = []
    for job in jobs:
        last = job.get("lastExecution") or {}
        rows.append(
            [
                job["name"],
                str(len(job["steps"])),
                f"{last['status']} {_when(last.get('createdAt'))}" if last else "-",
                _when(job.get("updatedAt")),
                job.get("description") or "",
            ]
        )
    _print_table(["NAME", "STEPS", "LAST RUN", "UPDATED", "DESCRIPTION"], rows)


@jobs_app.command("show")
def jobs_show(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="PROJECT/JOB")],
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """A job's definition (as YAML, ready for `jobs apply`) and its last run."""
    project, name = _split_target(target)
    with _session(ctx, url) as client:
        job = client.get_job(project, name)
    if as_json:
        _print_json(job)
        return
    import yaml

    typer.echo(yaml.safe_dump(definition_of(job), sort_keys=False, allow_unicode=True).rstrip())
    last = job.get("lastExecution") or {}
    typer.echo(f"# last run: {_summary(last) if last else 'never'}")


# -- run -------------------------------------------------------------------------------------


@app.command("run")
def run(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="PROJECT/JOB")],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="k=v; v is read as JSON when it parses (n=3 is a number)."),
    ] = None,
    params_json: Annotated[
        str | None, typer.Option("--params-json", help="All parameters as one JSON object.")
    ] = None,
    mode: Annotated[Mode, typer.Option("--mode")] = Mode.full,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the end (spinner).")] = False,
    follow: Annotated[
        bool, typer.Option("--follow", help="Print the log lines until the end.")
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=0, help="Stop waiting after this many seconds."),
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="Replays return the same run.")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Run a job. Exit 0 if it succeeded, 1 if not, 2 on a usage or API error.

    Without --wait or --follow, print the execution id and exit 0 at once.
    """
    project, job = _split_target(target)
    parameters = _parse_parameters(param or [], params_json)
    with _session(ctx, url) as client:
        execution = client.execute(
            project, job, parameters, mode=mode.value, idempotency_key=idempotency_key
        )
        if not (wait or follow):
            _print_json(execution) if as_json else typer.echo(execution["id"])
            return
        try:
            if follow:
                out = sys.stderr if as_json else sys.stdout
                execution = _follow(client, execution["id"], timeout, out=out)
            else:
                execution = _await_with_spinner(client, execution, timeout)
        except KeyboardInterrupt:
            _interrupted(execution["id"])
    _end(execution, as_json, timeout)


# -- executions ------------------------------------------------------------------------------


@executions_app.command("list")
def executions_list(
    ctx: typer.Context,
    project: Annotated[str, typer.Argument(help="Project name or id.")],
    job: Annotated[str | None, typer.Option("--job", help="Only this job's runs.")] = None,
    status: Annotated[
        list[str] | None, typer.Option("--status", help="Only runs in this status (repeatable).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 20,
    cursor: Annotated[str | None, typer.Option("--cursor", help="Next page, as printed.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """A project's runs, newest first."""
    with _session(ctx, url) as client:
        page = client.list_executions(project, job=job, status=status, limit=limit, cursor=cursor)
    if as_json:
        _print_json(page)
        return
    rows = [
        [
            execution["id"],
            execution["jobName"],
            execution["status"],
            execution["trigger"],
            _when(execution["createdAt"]),
            _took(execution),
        ]
        for execution in page["items"]
    ]
    _print_table(["ID", "JOB", "STATUS", "TRIGGER", "CREATED", "TOOK"], rows)
    if page.get("nextCursor"):
        typer.echo(f"more: --cursor {page['nextCursor']}", err=True)


@executions_app.command("show")
def executions_show(
    ctx: typer.Context,
    execution_id: Annotated[str, typer.Argument(metavar="ID")],
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """One run: status, parameters, steps, error and result."""
    with _session(ctx, url) as client:
        execution = client.get_execution(execution_id)
    if as_json:
        _print_json(execution)
        return
    error = execution.get("error")
    fields = {
        "id": execution["id"],
        "job": execution["jobName"],
        "status": execution["status"],
        "trigger": execution["trigger"],
        "mode": execution["mode"],
        "attempt": str(execution["attempt"]),
        "parameters": json.dumps(execution["parameters"], ensure_ascii=False),
        "created": _when(execution["createdAt"]),
        "started": _when(execution["startedAt"]),
        "finished": f"{_when(execution['finishedAt'])} (took {_took(execution)})",
        "error": f"{error['code']}: {error['message']}" if error else "-",
        "log lines": str(execution["logLines"]),
    }
    for key, value in fields.items():
        typer.echo(f"{key:<11} {value}")
    steps = [
        [
            step["name"],
            step["status"],
            _when(step.get("startedAt")),
            _when(step.get("finishedAt")),
            str(step.get("error") or ""),
        ]
        for step in execution["steps"]
    ]
    typer.echo("")
    _print_table(["STEP", "STATUS", "STARTED", "FINISHED", "ERROR"], steps)
    if execution.get("result") is not None:
        typer.echo("result:")
        _print_json(execution["result"])


@executions_app.command("logs")
def executions_logs(
    ctx: typer.Context,
    execution_id: Annotated[str, typer.Argument(metavar="ID")],
    follow: Annotated[bool, typer.Option("--follow", help="Keep printing until the end.")] = False,
    after: Annotated[int, typer.Option("--after", min=0, help="Start after this seq.")] = 0,
    url: UrlOption = None,
) -> None:
    """A run's log lines: its steps' output on stdout/stderr, jobport's notes as '· '."""
    with _session(ctx, url) as client:
        if follow:
            try:
                _follow(client, execution_id, None, after=after)
            except KeyboardInterrupt:
                raise typer.Exit(130) from None
            return
        while True:
            page = client.logs(execution_id, after=after, limit=1000)
            for line in page["items"]:
                _print_line(line)
            if not page["items"] or page["finished"]:
                return
            after = page["nextAfter"]


@executions_app.command("cancel")
def executions_cancel(
    ctx: typer.Context,
    execution_id: Annotated[str, typer.Argument(metavar="ID")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait until it has stopped.")] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0, help="Stop waiting after this many seconds.")
    ] = None,
    url: UrlOption = None,
) -> None:
    """Stop a run. With --wait, exit 0 once it is cancelled, 1 if it ended otherwise."""
    with _session(ctx, url) as client:
        execution = client.cancel(execution_id)
        if wait and execution["status"] not in FINAL_STATUSES:
            execution = _await_with_spinner(client, execution, timeout, verb="cancelling")
    typer.echo(f"{execution['status']}: {execution['jobName']} {execution['id']}")
    if wait and execution["status"] != "cancelled":
        raise typer.Exit(EXIT_RUN_FAILED)


# -- schedules -------------------------------------------------------------------------------

schedules_app = typer.Typer(
    no_args_is_help=True, help="Define, preview and trigger a job's cron schedules."
)
app.add_typer(schedules_app, name="schedules")


@app.command("scheduler")
def scheduler_command(
    log_level: str = typer.Option("info", help="Log level."),
) -> None:
    """Run the scheduler alone: it records fires and queues their runs in the database.

    A `jobport serve` on the same database runs them (start it with
    JOBPORT_SCHEDULER_ENABLED=false to leave the firing to this process). Any number of
    schedulers may share a database: each fire happens once.
    """
    import signal

    from jobport.scheduler import Scheduler
    from jobport.services.runtime import Runtime
    from jobport.settings import Settings
    from jobport.store.db import Database

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    settings = Settings()
    db = Database(settings.database_url)
    db.upgrade()
    scheduler = Scheduler(Runtime(settings, db))
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: scheduler.stop())
    typer.echo(f"jobport scheduler on {settings.database_url}", err=True)
    try:
        scheduler.run()
    finally:
        db.dispose()


def _schedule_row(schedule: dict[str, Any]) -> list[str]:
    when = schedule.get("crons") or [f"at {schedule.get('runAt')}"]
    return [
        schedule["name"],
        schedule["state"],
        ", ".join(when),
        schedule.get("timeZone") or "UTC",
        _when(schedule.get("nextFireAt")),
        _when(schedule.get("lastFireAt")),
    ]


@schedules_app.command("list")
def schedules_list(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="PROJECT/JOB")],
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """A job's schedules and when each fires next."""
    project, job = _split_target(target)
    with _session(ctx, url) as client:
        schedules = client.list_schedules(project, job)
    if as_json:
        _print_json(schedules)
        return
    _print_table(
        ["NAME", "STATE", "WHEN", "TIME ZONE", "NEXT", "LAST"],
        [_schedule_row(s) for s in schedules],
    )


@schedules_app.command("set")
def schedules_set(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="PROJECT/JOB")],
    name: Annotated[str, typer.Argument(metavar="NAME")],
    cron: Annotated[
        list[str] | None, typer.Option("--cron", help="A cron expression (repeatable).")
    ] = None,
    run_at: Annotated[
        str | None, typer.Option("--run-at", help="One run at this local date-time.")
    ] = None,
    time_zone: Annotated[
        str | None, typer.Option("--tz", help="IANA or Windows time zone name (default UTC).")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="The whole schedule as a JSON or YAML file.")
    ] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Define it, do not fire.")] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Add or update a schedule (an update keeps its fire history and never re-fires)."""
    project, job = _split_target(target)
    body: dict[str, Any] = {}
    if file is not None:
        import yaml

        loaded = yaml.safe_load(file.read_text())
        if not isinstance(loaded, dict):
            raise typer.BadParameter(f"{file} does not hold a schedule object")
        body.update(loaded)
    if cron:
        body["crons"] = cron
    if run_at:
        body["runAt"] = run_at
    if time_zone:
        body["timeZone"] = time_zone
    if disabled:
        body["enabled"] = False
    with _session(ctx, url) as client:
        schedule = client.put_schedule(project, job, name, body)
    if as_json:
        _print_json(schedule)
        return
    typer.echo(
        f"{schedule['name']}: {schedule['state']}, next fire "
        f"{_when(schedule.get('nextFireAt'))} ({schedule['timeZoneIana']})"
    )


@schedules_app.command("delete")
def schedules_delete(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="PROJECT/JOB")],
    name: Annotated[str, typer.Argument(metavar="NAME")],
    url: UrlOption = None,
) -> None:
    """Remove a schedule and its fire history."""
    project, job = _split_target(target)
    with _session(ctx, url) as client:
        client.delete_schedule(project, job, name)
    typer.echo(f"deleted schedule {name}")


@schedules_app.command("preview")
def schedules_preview(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="PROJECT/JOB")],
    name: Annotated[str, typer.Argument(metavar="NAME")],
    count: Annotated[int, typer.Option("--count", min=1, max=1000)] = 10,
    start: Annotated[
        str | None, typer.Option("--from", help="Start after this date-time (default now).")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """The next fire times, in UTC and in the schedule's time zone."""
    project, job = _split_target(target)
    with _session(ctx, url) as client:
        fires = client.preview_schedule(project, job, name, count=count, start=start)
    if as_json:
        _print_json(fires)
        return
    _print_table(
        ["UTC", "LOCAL", "DST"], [[f["utc"], f["local"], f.get("dst") or ""] for f in fires]
    )


@schedules_app.command("fires")
def schedules_fires(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="PROJECT/JOB")],
    name: Annotated[str, typer.Argument(metavar="NAME")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 20,
    cursor: Annotated[str | None, typer.Option("--cursor", help="Next page, as printed.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """What each fire did, newest first: the run it started, or why it did not."""
    project, job = _split_target(target)
    with _session(ctx, url) as client:
        page = client.schedule_fires(project, job, name, limit=limit, cursor=cursor)
    if as_json:
        _print_json(page)
        return
    rows = [
        [f["fireAt"], f["kind"], f["outcome"], f.get("executionId") or f.get("reason") or ""]
        for f in page["items"]
    ]
    _print_table(["FIRE AT", "KIND", "OUTCOME", "EXECUTION / REASON"], rows)
    if page.get("nextCursor"):
        typer.echo(f"more: --cursor {page['nextCursor']}", err=True)


@schedules_app.command("trigger")
def schedules_trigger(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="PROJECT/JOB")],
    name: Annotated[str, typer.Argument(metavar="NAME")],
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Run the schedule's job now, recorded as one of its fires."""
    project, job = _split_target(target)
    with _session(ctx, url) as client:
        answer = client.trigger_schedule(project, job, name)
    if as_json:
        _print_json(answer)
        return
    typer.echo(f"queued: {answer['execution']['jobName']} {answer['execution']['id']}")


def main() -> None:
    app(prog_name="jobport")


if __name__ == "__main__":
    sys.exit(main())
