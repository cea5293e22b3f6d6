"""`jobport serve`, `jobport db upgrade|prune` and `jobport scheduler`: running jobport here."""

from __future__ import annotations

import ipaddress
import logging

import typer

from jobport.cli._shared import command_name, fail
from jobport.errors import JobportError

db_app = typer.Typer(no_args_is_help=True, help="Database maintenance.")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    from jobport import metrics
    from jobport.settings import Settings

    # Before anything counts: the worker processes (forked later) count into this directory.
    metrics.prepare_process_dir()
    overrides = {k: v for k, v in {"host": host, "port": port, "workers": workers}.items() if v}
    settings = Settings(**overrides)
    _check_metrics_bind(settings.metrics_bind)
    if not _is_loopback(settings.host):
        typer.echo(
            f"jobport: listening on {settings.host}, reachable from other machines; keys, "
            "tokens and passwords cross the network in clear unless a TLS proxy is in front "
            "(then set JOBPORT_TRUSTED_PROXIES and JOBPORT_SECURE_COOKIES)",
            err=True,
        )
    _configure_logging(log_level)
    if demo:
        url = f"http://{settings.host}:{settings.port}"
        # The command as it can be typed here: `jobport` is often not on PATH (make run).
        typer.echo(
            f"jobport on {url}  (API docs: {url}/docs, database: {settings.database_url})\n"
            f"an API key:  {command_name()} keys create --local --role Administrator\n"
            f'try:  curl -s -X POST -H "Authorization: Bearer $KEY" '
            f"'{url}/api/v1/projects/demo/jobs/hello/execute?wait=10'\n"
            f'data:  curl -s -X POST -H "Authorization: Bearer $KEY" '
            "-H 'content-type: application/json' -d '{\"mode\": \"full\"}' "
            f"'{url}/api/v1/projects/demo/jobs/orders-to-warehouse/execute?wait=60'"
            '  (then {"mode": "delta"}: README "Data jobs")'
        )
    from jobport import boot  # here: the server's layers cost every other command a second

    try:
        boot.run_server(settings, demo=demo, log_level=log_level)
    except JobportError as exc:  # a setting that cannot work: one line, not a traceback
        fail(f"jobport: {exc.message}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations to JOBPORT_DATABASE_URL."""
    from jobport import boot
    from jobport.settings import Settings

    settings = Settings()
    boot.upgrade_database(settings)
    typer.echo(f"database at {settings.database_url} is up to date")


@db_app.command("prune")
def db_prune(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Say what would be removed; remove nothing."
    ),
) -> None:
    """Remove ended runs and logs past their retention (README "Retention") now.

    `jobport serve` does this in the background every JOBPORT_PRUNE_INTERVAL_SECONDS; this
    runs one whole pass, in the same small transactions, safe beside running servers.
    """
    from jobport import boot
    from jobport.settings import Settings

    pruned = boot.prune(Settings(), dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    typer.echo(f"{verb}: {pruned.runs} runs, {pruned.log_lines} log lines, {pruned.items} items")
    typer.echo(f"{verb} the logs (the runs stay): {pruned.logs} runs")


def scheduler_command(
    log_level: str = typer.Option("info", help="Log level."),
) -> None:
    """Run the scheduler alone: it records fires and queues their runs in the database.

    A `jobport serve` on the same database runs them (start it with
    JOBPORT_SCHEDULER_ENABLED=false to leave the firing to this process). Any number of
    schedulers may share a database: each fire happens once.
    """
    from jobport import boot, metrics
    from jobport.settings import Settings

    metrics.prepare_process_dir()
    _configure_logging(log_level)
    settings = Settings()
    if settings.metrics_bind:  # its fires and lag; the queue gauges come from the API nodes
        _check_metrics_bind(settings.metrics_bind)
        try:
            metrics.serve(settings.metrics_bind)
        except OSError as exc:
            fail(f"jobport: JOBPORT_METRICS_BIND: {exc}")
    try:
        boot.preflight(settings)
        boot.run_scheduler(
            settings,
            on_start=lambda _: typer.echo(
                f"jobport scheduler on {settings.database_url}", err=True
            ),
        )
    except JobportError as exc:  # a setting that cannot work: one line, not a traceback
        fail(f"jobport: {exc.message}")


def _check_metrics_bind(bind: str) -> None:
    from jobport import metrics

    if bind:
        try:
            metrics.parse_bind(bind)
        except ValueError as exc:
            fail(f"jobport: JOBPORT_METRICS_BIND: {exc}")


def _configure_logging(log_level: str) -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    # Alembic announces each of its plugins at INFO on every start: noise, unless debugging.
    plugins = logging.getLogger("alembic.runtime.plugins")
    plugins.setLevel(max(logging.WARNING, logging.getLogger().level))
