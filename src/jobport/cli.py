"""The `jobport` command: serve, db, and (over HTTP, or --local) jobs, runs, keys, roles, users."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from jobport import boot
from jobport.client import (
    FINAL_STATUSES,
    APIError,
    BadRequest,
    Client,
    JobportError,
    TransportError,
    ValidationFailed,
    definition_of,
)
from jobport.domain.executions import Mode

app = typer.Typer(no_args_is_help=True, add_completion=False, help="jobport: a job server.")
db_app = typer.Typer(no_args_is_help=True, help="Database maintenance.")
app.add_typer(db_app, name="db")
jobs_app = typer.Typer(no_args_is_help=True, help="Define jobs from files; list and show them.")
app.add_typer(jobs_app, name="jobs")
executions_app = typer.Typer(no_args_is_help=True, help="List, show, follow and cancel runs.")
app.add_typer(executions_app, name="executions")
keys_app = typer.Typer(no_args_is_help=True, help="API keys: create, list, rotate, delete.")
app.add_typer(keys_app, name="keys")
firewall_app = typer.Typer(no_args_is_help=True, help="The addresses a key may be used from.")
keys_app.add_typer(firewall_app, name="firewall")
roles_app = typer.Typer(no_args_is_help=True, help="Roles (sets of scopes) and their members.")
app.add_typer(roles_app, name="roles")
users_app = typer.Typer(no_args_is_help=True, help="Console users (on the database: --local).")
app.add_typer(users_app, name="users")

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
    host: str = typer.Option(
        None,
        help="Address to bind (default from settings: 127.0.0.1; 0.0.0.0 for every interface, "
        "with a TLS proxy in front).",
    ),
    port: int = typer.Option(None, help="Port (default from settings: 8080)."),
    workers: int = typer.Option(None, help="Worker processes (default: CPU count)."),
    demo: bool = typer.Option(False, help="Seed the demo project."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Run the API, the dispatcher and the worker pool."""
    from jobport.settings import Settings

    overrides = {k: v for k, v in {"host": host, "port": port, "workers": workers}.items() if v}
    settings = Settings(**overrides)
    if not _is_loopback(settings.host):
        typer.echo(
            f"jobport: listening on {settings.host}, reachable from other machines; keys, "
            "tokens and passwords cross the network in clear unless a TLS proxy is in front "
            "(then set JOBPORT_TRUSTED_PROXIES and JOBPORT_SECURE_COOKIES)",
            err=True,
        )
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    if demo:
        url = f"http://{settings.host}:{settings.port}"
        typer.echo(
            f"jobport on {url}  (API docs: {url}/docs, database: {settings.database_url})\n"
            "an API key:  jobport keys create --local --role Administrator\n"
            f'try:  curl -s -X POST -H "Authorization: Bearer $KEY" '
            f"'{url}/api/v1/projects/demo/jobs/hello/execute?wait=10'"
        )
    boot.run_server(settings, demo=demo, log_level=log_level)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations to JOBPORT_DATABASE_URL."""
    from jobport.settings import Settings

    settings = Settings()
    boot.upgrade_database(settings)
    typer.echo(f"database at {settings.database_url} is up to date")


# -- the HTTP commands: plumbing -------------------------------------------------------------


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _api_message(exc: JobportError) -> str:
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
def _session(ctx: typer.Context, url: str | None) -> Iterator[Client]:
    """A client of the chosen server; API and connection errors end the command with 2."""
    url = url or (ctx.obj or {}).get("url")
    try:
        client = Client(url)  # credentials: $JOBPORT_KEY, $JOBPORT_CLIENT_ID/SECRET, profile
    except ValueError as exc:
        _fail(f"error: {exc}")
    try:
        with client:
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
    mode: Annotated[Mode, typer.Option("--mode")] = Mode.FULL,
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


# -- access: plumbing for --local ------------------------------------------------------------

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


@contextlib.contextmanager
def _local() -> Iterator[Any]:
    """A Runtime over the configured database, migrated and bootstrapped; domain errors exit 2.

    Whoever can open the database already holds every right, so --local asks for no
    credential; what it changes goes to the audit log as `local:<os user>`.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from jobport.settings import Settings

    settings = Settings()
    try:
        with boot.local_runtime(settings) as rt:
            yield rt
    except JobportError as exc:
        _fail(_api_message(exc))
    except SQLAlchemyError as exc:
        _fail(f"error: database_error: {settings.database_url}: {exc}")


def _local_who() -> Any:
    import getpass

    from jobport.services import access

    try:
        name = getpass.getuser()
    except (OSError, KeyError):
        name = "local"
    return access.local_principal(name)


def _audit_local(rt: Any, ctx: typer.Context, action: str, subject: str) -> None:
    """Record a --local change in the audit log, named like the API route that does it."""
    from jobport.services import audit

    audit.record(
        rt,
        audit.entry(
            action=action,
            outcome="ok",
            principal=_local_who().label,
            address="local",
            target=f"{ctx.command_path} --local {subject}",
        ),
    )


def _parse_time(value: str, option: str) -> dt.datetime:
    """An ISO 8601 date-time; one without a zone is local time."""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 date-time (e.g. 2027-01-31T18:00:00Z)",
            param_hint=option,
        ) from None
    return moment if moment.tzinfo else moment.astimezone()


def _roles_text(grants: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{g['role']} in {g['project']}" if g.get("project") else g["role"] for g in grants
    )


def _expiry_text(key: dict[str, Any]) -> str:
    if not key.get("expiresAt"):
        return "never"
    note = " (expired)" if key.get("expired") else " (soon)" if key.get("expiresSoon") else ""
    return _when(key["expiresAt"]) + note


def _print_rules(rules: list[dict[str, Any]]) -> None:
    if not rules:
        typer.echo("firewall    none: every address may use the key")
        return
    typer.echo("")
    _print_table(
        ["RULE", "FROM", "TO", "ENABLED"],
        [
            [r["name"], r["startIp"], r["endIp"], "yes" if r.get("enabled", True) else "no"]
            for r in rules
        ],
    )


def _print_key(key: dict[str, Any]) -> None:
    used = key.get("lastUsedAt")
    fields = {
        "client id": key["clientId"],
        "description": key.get("description") or "-",
        "roles": _roles_text(key.get("roles") or []) or "none",
        "enabled": "yes" if key["enabled"] else "no",
        "expires": _expiry_text(key),
        "created": f"{_when(key['createdAt'])} by {key.get('createdBy') or '-'}",
        "rotated": _when(key.get("rotatedAt")),
        "last used": f"{_when(used)} from {key.get('lastUsedIp')}" if used else "never",
    }
    if key.get("previousSecretValidUntil"):
        fields["old secret"] = f"valid until {_when(key['previousSecretValidUntil'])}"
    for name, value in fields.items():
        typer.echo(f"{name:<11} {value}")
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


# -- keys ------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    description: Annotated[str, typer.Option("--description", help="What it is for.")] = "",
    role: Annotated[
        list[str] | None,
        typer.Option("--role", help="Give it this role (repeatable): Administrator, Operator, ..."),
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", help="Give the roles in this project only.")
    ] = None,
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
        expiry["expires_at"] = _parse_time(expires_at, "--expires-at")
    roles = role or []
    if local:
        from jobport.api.v1 import keys as keys_wire
        from jobport.services import access

        with _local() as rt:
            row, secret = access.create_key(
                rt,
                description=description,
                created_by=_local_who().label,
                roles=[(r, project) for r in roles],
                **expiry,
            )
            # The API's own renderer: the JSON is the same as POST /api/v1/keys answers.
            key = keys_wire.with_secret(access.get_key(rt, row["client_id"]), secret, rt)
            _audit_local(rt, ctx, "create_key", row["client_id"])
    else:
        with _session(ctx, url) as client:
            for name in roles:  # a missing role fails here, before a key exists
                client.get_role(name, project)
            key = client.create_key(description, **expiry)
            for name in roles:
                client.add_role_member(name, "apiKey", key["clientId"], project)
            if roles:
                key = {**key, **client.get_key(key["clientId"])}
    if as_json:
        _print_json(key)
    else:
        _print_new_secret(key, "created")


@keys_app.command("list")
def keys_list(
    ctx: typer.Context,
    as_json: JsonOption = False,
    local: LocalOption = False,
    url: UrlOption = None,
) -> None:
    """Every API key, newest first (never their secrets)."""
    if local:
        from jobport.api.v1 import keys as keys_wire
        from jobport.services import access

        keys: list[dict[str, Any]] = []
        with _local() as rt:
            cursor = None
            while True:
                page = access.list_keys(rt, cursor=cursor, limit=500)
                keys += [keys_wire.render(row, rt) for row in page.items]
                cursor = page.next_cursor
                if not cursor:
                    break
    else:
        with _session(ctx, url) as client:
            keys = client.list_keys()
    if as_json:
        _print_json(keys)
        return
    rows = [
        [
            key["clientId"],
            _roles_text(key.get("roles") or []) or "-",
            _expiry_text(key) if key["enabled"] else "disabled",
            _when(key.get("lastUsedAt")) if key.get("lastUsedAt") else "never",
            key.get("description") or "",
        ]
        for key in keys
    ]
    _print_table(["CLIENT ID", "ROLES", "EXPIRES", "LAST USED", "DESCRIPTION"], rows)


def _get_key(ctx: typer.Context, client_id: str, local: bool, url: str | None) -> dict[str, Any]:
    if local:
        from jobport.api.v1 import keys as keys_wire
        from jobport.services import access

        with _local() as rt:
            return keys_wire.render(access.get_key(rt, client_id), rt)
    with _session(ctx, url) as client:
        return client.get_key(client_id)


@keys_app.command("show")
def keys_show(
    ctx: typer.Context,
    client_id: Annotated[str, typer.Argument(metavar="CLIENT_ID")],
    as_json: JsonOption = False,
    local: LocalOption = False,
    url: UrlOption = None,
) -> None:
    """One key: roles, expiry, last use, firewall rules."""
    key = _get_key(ctx, client_id, local, url)
    if as_json:
        _print_json(key)
    else:
        _print_key(key)


@keys_app.command("rotate")
def keys_rotate(
    ctx: typer.Context,
    client_id: Annotated[str, typer.Argument(metavar="CLIENT_ID")],
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
        _parse_time(old_secret_valid_until, "--old-secret-valid-until")
        if old_secret_valid_until
        else None
    )
    if local:
        from jobport.api.v1 import keys as keys_wire
        from jobport.services import access

        with _local() as rt:
            row, secret = access.rotate_key(rt, client_id, old_valid_until=until)
            key = keys_wire.with_secret(row, secret, rt)
            _audit_local(rt, ctx, "rotate_key", client_id)
    else:
        with _session(ctx, url) as client:
            key = client.rotate_key(client_id, until)
    if as_json:
        _print_json(key)
        return
    _print_new_secret(key, "rotated")
    if key.get("previousSecretValidUntil"):
        typer.echo(f"the old secret works until {_when(key['previousSecretValidUntil'])}", err=True)


@keys_app.command("delete")
def keys_delete(
    ctx: typer.Context,
    client_id: Annotated[str, typer.Argument(metavar="CLIENT_ID")],
    local: LocalOption = False,
    url: UrlOption = None,
) -> None:
    """Delete a key: it stops working at once, and its client id is never issued again."""
    if local:
        from jobport.services import access

        with _local() as rt:
            access.delete_key(rt, client_id)
            _audit_local(rt, ctx, "delete_key", client_id)
    else:
        with _session(ctx, url) as client:
            client.delete_key(client_id)
    typer.echo(f"deleted API key {client_id}")


def _set_rules(
    ctx: typer.Context,
    client_id: str,
    change: Any,
    *,
    force: bool,
    local: bool,
    url: str | None,
) -> dict[str, Any]:
    """Apply `change(rules) -> rules` to the key's firewall rules; the key afterwards."""
    if local:
        from jobport.api.v1 import keys as keys_wire
        from jobport.services import access

        with _local() as rt:
            current = keys_wire.render(access.get_key(rt, client_id), rt)["firewallRules"]
            row = access.patch_key(rt, client_id, {"firewall_rules": change(current)})
            _audit_local(rt, ctx, "patch_key", client_id)
            return keys_wire.render(row, rt)
    with _session(ctx, url) as client:
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
    client_id: Annotated[str, typer.Argument(metavar="CLIENT_ID")],
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
        with _session(ctx, url) as client:
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
    client_id: Annotated[str, typer.Argument(metavar="CLIENT_ID")],
    name: Annotated[str, typer.Option("--name", help="The rule to remove.")],
    force: ForceOption = False,
    local: LocalOption = False,
    url: UrlOption = None,
) -> None:
    """Remove the key's firewall rules of that name. With none left, every address may use it."""

    def without(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = [r for r in rules if r["name"] != name]
        if len(kept) == len(rules):
            _fail(f"error: rule_not_found: key {client_id} has no firewall rule named {name!r}")
        return kept

    key = _set_rules(ctx, client_id, without, force=force, local=local, url=url)
    _print_rules(key["firewallRules"])


# -- roles -----------------------------------------------------------------------------------


def _member(key: str | None, user: str | None) -> tuple[str, str]:
    if bool(key) == bool(user):
        raise typer.BadParameter("give --key CLIENT_ID or --user USERNAME")
    return ("apiKey", key) if key else ("user", user)  # type: ignore[return-value]


KeyMemberOption = Annotated[
    str | None, typer.Option("--key", metavar="CLIENT_ID", help="An API key, by client id.")
]
UserMemberOption = Annotated[str | None, typer.Option("--user", help="A user, by username.")]


@roles_app.command("list")
def roles_list(
    ctx: typer.Context,
    project: ProjectOption = None,
    as_json: JsonOption = False,
    local: LocalOption = False,
    url: UrlOption = None,
) -> None:
    """The roles, built-in ones first, with their scopes and members."""
    if local:
        from jobport.api.v1 import roles as roles_wire
        from jobport.services import access

        with _local() as rt:
            roles = [roles_wire.render(r) for r in access.list_roles(rt, project)]
    else:
        with _session(ctx, url) as client:
            roles = client.list_roles(project)
    if as_json:
        _print_json(roles)
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
    _print_table(["ROLE", "LEVEL", "SCOPES", "MEMBERS"], rows)


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
    if local:
        from jobport.api.v1 import roles as roles_wire
        from jobport.services import access

        body = {"name": name, "description": description, "scopes": scope}
        with _local() as rt:
            role = roles_wire.render(access.create_role(rt, project, body))
            _audit_local(rt, ctx, "create_role", name)
    else:
        with _session(ctx, url) as client:
            role = client.create_role(name, scope, description, project)
    if as_json:
        _print_json(role)
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
    if local:
        from jobport.api.v1 import roles as roles_wire
        from jobport.services import access

        with _local() as rt:
            row, _ = access.add_member(rt, project, role, member_type, member_id)
            answer = roles_wire.render(row)
            _audit_local(rt, ctx, "add_role_member", f"{role} {member_type}:{member_id}")
    else:
        with _session(ctx, url) as client:
            answer = client.add_role_member(role, member_type, member_id, project)
    if as_json:
        _print_json(answer)
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
    if local:
        from jobport.services import access

        with _local() as rt:
            access.remove_member(rt, project, role, member_type, member_id)
            _audit_local(rt, ctx, "remove_role_member", f"{role} {member_type}:{member_id}")
    else:
        with _session(ctx, url) as client:
            client.remove_role_member(role, member_type, member_id, project)
    where = f" in project {project}" if project else ""
    typer.echo(f"{member_type} {member_id} no longer has role {role}{where}")


# -- users -----------------------------------------------------------------------------------

PasswordStdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from the first line of standard input."
    ),
]


def _only_local(local: bool) -> None:
    if not local:
        raise typer.BadParameter(
            "users are managed on the server's database: run this where it can be opened, "
            "with --local"
        )


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            _fail("error: no password on standard input")
        return password
    return str(typer.prompt("New password", hide_input=True, confirmation_prompt=True))


@users_app.command("create")
def users_create(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(metavar="USERNAME")],
    role: Annotated[
        list[str] | None, typer.Option("--role", help="Give the user this role (repeatable).")
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", help="Give the roles in this project only.")
    ] = None,
    password_stdin: PasswordStdinOption = False,
    local: LocalOption = False,
) -> None:
    """A console user with a password (at least 8 characters) and the given roles."""
    _only_local(local)
    password = _read_password(password_stdin)
    from jobport.services import access

    with _local() as rt:
        access.create_user(rt, username, password, [(r, project) for r in role or []])
        _audit_local(rt, ctx, "create_user", username)
    typer.echo(f"created user {username}")


@users_app.command("passwd")
def users_passwd(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(metavar="USERNAME")],
    password_stdin: PasswordStdinOption = False,
    local: LocalOption = False,
) -> None:
    """Set a user's password (for instance the admin's, when it is lost)."""
    _only_local(local)
    password = _read_password(password_stdin)
    from jobport.services import access

    with _local() as rt:
        access.set_password(rt, username, password)
        _audit_local(rt, ctx, "set_password", username)
    typer.echo(f"password of {username} changed")


# -- login -----------------------------------------------------------------------------------


@app.command()
def login(
    ctx: typer.Context,
    client_id: Annotated[str, typer.Option("--client-id", help="The key's client id.")],
    client_secret: Annotated[
        str | None,
        typer.Option("--client-secret", help="The key's client secret (asked for if left out)."),
    ] = None,
    url: UrlOption = None,
) -> None:
    """Check a key's client credentials and keep them for the next commands (a profile)."""
    from jobport.client import save_profile

    secret = client_secret or str(typer.prompt("Client secret", hide_input=True))
    url = url or (ctx.obj or {}).get("url")
    try:
        client = Client(url, client_id=client_id, client_secret=secret)
    except ValueError as exc:
        _fail(f"error: {exc}")
    try:
        with client:
            granted = client.token(client_id, secret)
    except APIError as exc:
        _fail(_api_message(exc))
    except TransportError as exc:
        _fail(f"error: {exc.message}")
    path = save_profile(client.url, client_id, secret)
    typer.echo(f"logged in to {client.url} as API key {client_id}")
    typer.echo(f"scopes: {granted.get('scope') or '-'}; profile: {path}", err=True)


@app.command()
def logout() -> None:
    """Forget the credentials `jobport login` kept."""
    from jobport.client import remove_profile

    path = remove_profile()
    typer.echo(f"logged out (removed {path})" if path else "not logged in")


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
    from jobport.settings import Settings

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    settings = Settings()
    boot.run_scheduler(
        settings,
        on_start=lambda _: typer.echo(f"jobport scheduler on {settings.database_url}", err=True),
    )


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
