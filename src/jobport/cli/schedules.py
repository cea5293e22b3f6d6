"""`jobport schedules ...`: define, preview and trigger a job's cron schedules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from jobport.cli._output import local_zone, print_json, print_table, when, when_in
from jobport.cli._shared import JsonOption, UrlOption, session, split_target

schedules_app = typer.Typer(
    no_args_is_help=True, help="Define, preview and trigger a job's cron schedules."
)


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


@schedules_app.command("list")
def schedules_list(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="PROJECT/JOB")],
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """A job's schedules and when each fires next."""
    project, job = split_target(target)
    with session(ctx, url) as client:
        schedules = client.list_schedules(project, job)
    if as_json:
        print_json(schedules)
        return
    # NEXT and LAST are this machine's time, whatever zone each schedule fires in: say which.
    zone = local_zone()
    print_table(
        ["NAME", "STATE", "WHEN", "TIME ZONE", f"NEXT ({zone})", f"LAST ({zone})"],
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
    if as_json:
        print_json(schedule)
        return
    # The API gives the fire time in UTC: shown in the zone it is labelled with.
    zone = schedule["timeZoneIana"]
    typer.echo(
        f"{schedule['name']}: {schedule['state']}, next fire "
        f"{when_in(schedule.get('nextFireAt'), zone)} ({zone})"
    )


@schedules_app.command("delete")
def schedules_delete(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="PROJECT/JOB")],
    name: Annotated[str, typer.Argument(metavar="NAME")],
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
    project, job = split_target(target)
    with session(ctx, url) as client:
        fires = client.preview_schedule(project, job, name, count=count, start=start)
    if as_json:
        print_json(fires)
        return
    print_table(
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
    project, job = split_target(target)
    with session(ctx, url) as client:
        page = client.schedule_fires(project, job, name, limit=limit, cursor=cursor)
    if as_json:
        print_json(page)
        return
    rows = [
        [f["fireAt"], f["kind"], f["outcome"], f.get("executionId") or f.get("reason") or ""]
        for f in page["items"]
    ]
    print_table(["FIRE AT", "KIND", "OUTCOME", "EXECUTION / REASON"], rows)
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
    project, job = split_target(target)
    with session(ctx, url) as client:
        answer = client.trigger_schedule(project, job, name)
    if as_json:
        print_json(answer)
        return
    typer.echo(f"queued: {answer['execution']['jobName']} {answer['execution']['id']}")
