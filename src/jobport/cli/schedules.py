"""`jobport schedules ...`: define, preview and trigger a job's cron schedules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from jobport.cli._output import local_zone, print_json_or, print_page, print_rows, when, when_in
from jobport.cli._shared import (
    CursorOption,
    JsonOption,
    LimitOption,
    TargetArgument,
    UrlOption,
    session,
    split_target,
)

schedules_app = typer.Typer(
    no_args_is_help=True, help="Define, preview and trigger a job's cron schedules."
)
NameArgument = Annotated[str, typer.Argument(metavar="NAME")]


def _schedule_row(schedule: dict[str, Any]) -> list[str]:
    crons = schedule.get("crons") or [f"at {schedule.get('runAt')}"]
    return [
        schedule["name"],
        schedule["state"],
        ", ".join(crons),
        schedule.get("timeZone") or "UTC",
        when(schedule.get("nextFireAt")),
        when(schedule.get("lastFireAt")),
    ]


def _next_fire(schedule: dict[str, Any]) -> str:
    # The API gives the fire time in UTC: shown in the zone it is labelled with.
    zone = schedule["timeZoneIana"]
    return (
        f"{schedule['name']}: {schedule['state']}, next fire "
        f"{when_in(schedule.get('nextFireAt'), zone)} ({zone})"
    )


def _fire_row(fire: dict[str, Any]) -> list[str]:
    outcome = fire.get("executionId") or fire.get("reason") or ""
    return [fire["fireAt"], fire["kind"], fire["outcome"], outcome]


@schedules_app.command("list")
def schedules_list(
    ctx: typer.Context,
    target: TargetArgument,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """A job's schedules and when each fires next."""
    project, job = split_target(target)
    with session(ctx, url) as client:
        schedules = client.list_schedules(project, job)
    # NEXT and LAST are this machine's time, whatever zone each schedule fires in: say which.
    zone = local_zone()
    columns = ["NAME", "STATE", "WHEN", "TIME ZONE", f"NEXT ({zone})", f"LAST ({zone})"]
    print_rows(schedules, as_json, columns, _schedule_row)


@schedules_app.command("set")
def schedules_set(
    ctx: typer.Context,
    target: TargetArgument,
    name: NameArgument,
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
    project, job = split_target(target)
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
    with session(ctx, url) as client:
        schedule = client.put_schedule(project, job, name, body)
    print_json_or(schedule, as_json, _next_fire)


@schedules_app.command("delete")
def schedules_delete(
    ctx: typer.Context,
    target: TargetArgument,
    name: NameArgument,
    url: UrlOption = None,
) -> None:
    """Remove a schedule and its fire history."""
    project, job = split_target(target)
    with session(ctx, url) as client:
        client.delete_schedule(project, job, name)
    typer.echo(f"deleted schedule {name}")


@schedules_app.command("preview")
def schedules_preview(
    ctx: typer.Context,
    target: TargetArgument,
    name: NameArgument,
    count: Annotated[int, typer.Option("--count", min=1, max=1000)] = 10,
    start: Annotated[
        str | None, typer.Option("--from", help="Start after this date-time (default now).")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """The next fire times, in UTC and in the schedule's time zone."""
    project, job = split_target(target)
    with session(ctx, url) as client:
        fires = client.preview_schedule(project, job, name, count=count, start=start)
    print_rows(
        fires,
        as_json,
        ["UTC", "LOCAL", "DST"],
        lambda f: [f["utc"], f["local"], f.get("dst") or ""],
    )


@schedules_app.command("fires")
def schedules_fires(
    ctx: typer.Context,
    target: TargetArgument,
    name: NameArgument,
    limit: LimitOption = 20,
    cursor: CursorOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """What each fire did, newest first: the run it started, or why it did not."""
    project, job = split_target(target)
    with session(ctx, url) as client:
        page = client.schedule_fires(project, job, name, limit=limit, cursor=cursor)
    print_page(page, as_json, ["FIRE AT", "KIND", "OUTCOME", "EXECUTION / REASON"], _fire_row)


@schedules_app.command("trigger")
def schedules_trigger(
    ctx: typer.Context,
    target: TargetArgument,
    name: NameArgument,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Run the schedule's job now, recorded as one of its fires."""
    project, job = split_target(target)
    with session(ctx, url) as client:
        answer = client.trigger_schedule(project, job, name)
    run = answer["execution"]
    print_json_or(answer, as_json, lambda _: f"queued: {run['jobName']} {run['id']}")
