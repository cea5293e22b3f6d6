"""`jobport jobs ...` and `jobport run`: define jobs from files, list and show them, run one."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from jobport.cli._output import print_json_or, print_rows, summary, when
from jobport.cli._shared import (
    EXIT_OK,
    EXIT_RUN_FAILED,
    JsonOption,
    TargetArgument,
    TimeoutOption,
    UrlOption,
    api_message,
    fail,
    session,
    split_target,
)
from jobport.cli.executions import await_with_spinner, follow_run
from jobport.client import FINAL_STATUSES, BadRequest, Invalid, definition_of
from jobport.domain.executions import Mode

jobs_app = typer.Typer(no_args_is_help=True, help="Define jobs from files; list and show them.")


def _load_job_file(path: Path, project: str | None) -> tuple[str, str, list[dict[str, Any]]]:
    """(project, project description, definitions) from a YAML or JSON job file."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"error: cannot read {path}: {exc.strerror or exc}")
    import yaml

    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        fail(f"error: {path} is not valid {kind}: {exc}", 1)
    description = ""
    if isinstance(data, dict) and "jobs" in data:
        unknown = sorted(set(data) - {"project", "description", "jobs"})
        if unknown:
            fail(
                f"error: {path}: unknown top-level keys {unknown} "
                "(allowed: project, description, jobs)",
                1,
            )
        named = data.get("project")
        if project and named and project != named:
            fail(f"error: {path} is for project {named!r}, but --project says {project!r}")
        project = project or named
        description = str(data.get("description") or "")
        definitions = data["jobs"] or []
    elif isinstance(data, dict):
        definitions = [data]
    elif isinstance(data, list):
        definitions = data
    else:
        fail(f"error: {path} must hold a job, a list of jobs, or {{project, jobs}}", 1)
    if not project:
        fail(f"error: {path} names no project; add `project:` to it or pass --project")
    if not isinstance(definitions, list):
        fail(f"error: {path}: `jobs` must be a list", 1)
    for index, definition in enumerate(definitions):
        if not isinstance(definition, dict):
            fail(f"error: {path}: job #{index + 1} is not a mapping", 1)
    names = [d.get("name") for d in definitions]
    twice = sorted({n for n in names if isinstance(n, str) and names.count(n) > 1})
    if twice:
        fail(f"error: {path}: job names used twice: {', '.join(twice)}", 1)
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
    with session(ctx, url) as client:
        client.ensure_project(project_name, description)
        for definition in definitions:
            ref = f"{project_name}/{definition.get('name', '?')}"
            try:
                verdict, _ = client.apply_job(project_name, definition)
            except (Invalid, BadRequest) as exc:
                failed = True
                typer.echo(f"{ref}: {api_message(exc)}", err=True)
                continue
            typer.echo(f"{verdict:<9} {ref}")
    if failed:
        raise typer.Exit(EXIT_RUN_FAILED)


def _job_row(job: dict[str, Any]) -> list[str]:
    last = job.get("lastExecution") or {}
    return [
        job["name"],
        str(len(job["steps"])),
        f"{last['status']} {when(last.get('createdAt'))}" if last else "-",
        when(job.get("updatedAt")),
        job.get("description") or "",
    ]


def _print_job(job: dict[str, Any]) -> None:
    """The definition as YAML, ready for `jobs apply`, and the last run as a comment."""
    import yaml

    typer.echo(yaml.safe_dump(definition_of(job), sort_keys=False, allow_unicode=True).rstrip())
    last = job.get("lastExecution") or {}
    typer.echo(f"# last run: {summary(last) if last else 'never'}")


@jobs_app.command("list")
def jobs_list(
    ctx: typer.Context,
    project: Annotated[str, typer.Argument(help="Project name or id.")],
    q: Annotated[str | None, typer.Option("--q", help="Name contains.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """The jobs of a project, with their last run."""
    with session(ctx, url) as client:
        jobs = client.list_jobs(project, q=q)
    print_rows(jobs, as_json, ["NAME", "STEPS", "LAST RUN", "UPDATED", "DESCRIPTION"], _job_row)


@jobs_app.command("show")
def jobs_show(
    ctx: typer.Context,
    target: TargetArgument,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """A job's definition (as YAML, ready for `jobs apply`) and its last run."""
    project, name = split_target(target)
    with session(ctx, url) as client:
        job = client.get_job(project, name)
    print_json_or(job, as_json, _print_job)


# -- run -------------------------------------------------------------------------------------


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


def _keeps_running(execution: dict[str, Any]) -> str:
    ident = execution["id"]
    return f"execution {ident} keeps running (stop it: jobport executions cancel {ident})"


def _end(execution: dict[str, Any], as_json: bool, waited: float | None) -> NoReturn:
    """Report a run that was waited for and exit 0 (succeeded) or 1 (anything else)."""
    status = execution["status"]
    print_json_or(execution, as_json, summary)
    if status == "succeeded":
        raise typer.Exit(EXIT_OK)
    if status not in FINAL_STATUSES:
        fail(f"still {status} after {waited or 0:g}s; {_keeps_running(execution)}", EXIT_RUN_FAILED)
    error = execution.get("error") or {}
    if error and not as_json:
        typer.echo(f"error: {error.get('code')}: {error.get('message')}", err=True)
    raise typer.Exit(EXIT_RUN_FAILED)


def _parse_context(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"error: --context is not JSON: {exc}", 2)
    if not isinstance(value, dict):
        fail("error: --context must be a JSON object", 2)
    return value  # type: ignore[no-any-return]


def run(
    ctx: typer.Context,
    target: TargetArgument,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="k=v; v is read as JSON when it parses (n=3 is a number)."),
    ] = None,
    params_json: Annotated[
        str | None, typer.Option("--params-json", help="All parameters as one JSON object.")
    ] = None,
    mode: Annotated[Mode, typer.Option("--mode")] = Mode.FULL,
    context_json: Annotated[
        str | None,
        typer.Option("--context", help="The template context ({{ context.x }}), a JSON object."),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the end (spinner).")] = False,
    follow: Annotated[
        bool, typer.Option("--follow", help="Print the log lines until the end.")
    ] = False,
    timeout: TimeoutOption = None,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="Replays return the same run.")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Run a job. Exit 0 if it succeeded, 1 if not, 2 on a usage or API error.

    Without --wait or --follow, print the execution id and exit 0 at once.
    """
    project, job = split_target(target)
    parameters = _parse_parameters(param or [], params_json)
    context = _parse_context(context_json)
    with session(ctx, url) as client:
        execution = client.execute(
            project,
            job,
            parameters,
            mode=mode.value,
            idempotency_key=idempotency_key,
            context=context,
        )
        if not (wait or follow):
            print_json_or(execution, as_json, lambda started: started["id"])
            return
        try:
            if follow:
                out = sys.stderr if as_json else sys.stdout
                execution = follow_run(client, execution["id"], timeout, out=out)
            else:
                execution = await_with_spinner(client, execution, timeout)
        except KeyboardInterrupt:
            fail(f"interrupted; {_keeps_running(execution)}", 130)
    _end(execution, as_json, timeout)
