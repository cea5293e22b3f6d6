"""The `jobport` command: serve, db, and (over HTTP) jobs, run, executions."""

from __future__ import annotations

import ipaddress
import logging
import sys

import typer

from jobport.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="jobport: a job server.")
db_app = typer.Typer(no_args_is_help=True, help="Database maintenance.")
app.add_typer(db_app, name="db")


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
    from jobport.store.db import Database

    settings = Settings()
    db = Database(settings.database_url)
    db.upgrade()
    typer.echo(f"database at {settings.database_url} is up to date")


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
