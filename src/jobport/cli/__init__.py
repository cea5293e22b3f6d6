"""The `jobport` command: one Typer app, one module per command group, one client for all.

Every command that reads or changes jobport talks to one `jobport.client.Client`
(_shared.session): of a server over HTTP, or with --local of the same API app run in this
process on this machine's database (boot.local_client). No module here opens the database
or calls the services itself.

    server.py      serve, db upgrade, scheduler     keys.py       keys, keys firewall
    jobs.py        jobs apply|list|show, run        roles.py      roles
    executions.py  executions                       users.py      users
    schedules.py   schedules                        login.py      login, logout
    connections.py connections                     postman.py    postman
    _shared.py     exit codes, options, errors, the client factory; _output.py printing
"""

from __future__ import annotations

from typing import Annotated

import typer

from jobport.cli import (
    connections,
    executions,
    jobs,
    keys,
    login,
    postman,
    roles,
    schedules,
    server,
    users,
    worker,
)

__all__ = ["app", "main"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help="jobport: a job server.")


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


# In this order: `jobport --help` lists the commands, then the groups, as they are added.
app.add_typer(server.db_app, name="db")
app.add_typer(jobs.jobs_app, name="jobs")
app.add_typer(executions.executions_app, name="executions")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(roles.roles_app, name="roles")
app.add_typer(users.users_app, name="users")
app.command()(server.serve)
app.command("run")(jobs.run)
app.command()(login.login)
app.command()(login.logout)
app.add_typer(schedules.schedules_app, name="schedules")
app.command("scheduler")(server.scheduler_command)
app.command("worker")(worker.worker_command)
app.add_typer(connections.connections_app, name="connections")
app.command()(postman.postman)


def main() -> None:
    app(prog_name="jobport")
