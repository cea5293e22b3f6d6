"""Settings: JOBPORT_* environment variables, then ./jobport.toml, then defaults."""

from __future__ import annotations

import ipaddress
import os
import re
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="JOBPORT_", toml_file="jobport.toml", extra="ignore"
    )

    database_url: str = "sqlite:///./jobport.db"
    host: str = "127.0.0.1"
    port: int = 8080

    # Engine
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    cancel_grace_seconds: float = Field(default=10.0, ge=0)
    heartbeat_interval: float = Field(default=1.0, gt=0)
    heartbeat_timeout: float = Field(default=30.0, gt=0)
    sweep_interval: float = Field(default=5.0, gt=0)
    log_flush_interval: float = Field(default=0.2, gt=0)
    log_batch_lines: int = Field(default=2000, ge=1)
    log_max_bytes: int = Field(default=50_000_000, ge=1024)
    # Command steps run as this user (a name or a uid; empty: the worker's own user). The
    # server must be root or hold CAP_SETUID and CAP_SETGID; Python steps never switch.
    step_user: str = ""
    # Variables of the server's environment that command steps get too, besides PATH, HOME,
    # LANG, LC_ALL, TZ and TMPDIR: names or `*` patterns (AWS_*), comma or space separated.
    # The server's own JOBPORT_* variables never pass.
    step_env_passthrough: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Where runs go: `local` (this server's worker pool) or `celery` (a Celery queue per job's
    # `queue`, taken by `jobport worker` processes on any machine that reaches the database
    # and the broker). The database stays the truth either way (ARCHITECTURE.md).
    executor: Literal["local", "celery"] = "local"
    broker_url: str = ""  # celery: redis://host:6379/0 or amqp://user:password@host:5672//
    # A queued, due run that nobody claimed this long after it was handed out is handed out
    # again (a message the broker lost, a worker that died holding it). A duplicate costs one
    # failed claim: claims are compare-and-set.
    republish_seconds: float = Field(default=30.0, gt=0)
    # A sync wait (`?wait=`) is woken when its run ends (by this server's workers, or by
    # PostgreSQL's NOTIFY from any node); it also re-reads the database this often.
    wait_poll_seconds: float = Field(default=1.0, gt=0)

    # API
    max_wait_seconds: float = Field(default=300.0, ge=0)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    page_size_max: int = Field(default=500, ge=1)

    # Scheduler
    scheduler_enabled: bool = True  # inside `jobport serve`; off when `jobport scheduler` runs
    scheduler_poll_seconds: float = Field(default=5.0, gt=0)  # sees other processes' changes
    scheduler_misfire_grace_seconds: float = Field(default=60.0, ge=0)
    scheduler_batch_size: int = Field(default=500, ge=1)  # due schedules per transaction
    scheduler_missed_record_cap: int = Field(default=1000, ge=1)
    schedule_backfill_max_fires: int = Field(default=1000, ge=1)

    # Connections: their passwords and header values are encrypted with this Fernet key (32
    # url-safe base64 bytes). Unset: the key in `encryption_key_file`, made on first start
    # with mode 0600. Every node of one database needs the same key.
    encryption_key: str = ""
    encryption_key_file: str = ".jobport/encryption.key"

    # Access
    admin_username: str = "admin"
    admin_password: str | None = None  # first start only; generated and printed when unset
    key_pepper: str = ""  # HMAC key for API key secrets; changing it invalidates every key
    key_default_days: int = Field(default=90, ge=1)
    key_expiry_warning_days: int = Field(default=14, ge=0)
    key_rotation_overlap_hours: float = Field(default=24.0, ge=0)
    key_last_used_resolution_seconds: float = Field(default=60.0, ge=0)
    # API keys with their grants are kept this long per process; changes made elsewhere (another
    # node, `--local`) take effect within it. Changes through this process: at once.
    auth_cache_seconds: float = Field(default=1.0, ge=0)
    token_secret: str | None = None  # HS256 key; generated once and kept in the database
    token_lifetime_seconds: int = Field(default=3600, ge=60)
    token_issuer: str = "jobport"
    token_audience: str = "jobport-api"
    session_lifetime_seconds: int = Field(default=12 * 3600, ge=60)
    # Secure cookies behind a TLS proxy too (a request that came over HTTPS gets them anyway)
    secure_cookies: bool = False
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Failed authentications allowed per window ("10/minute", limits syntax), counted per
    # client id (from any address) and per address. Past either, a failing attempt gets 429
    # instead of 401; a valid key or token is served whatever the counts. For password
    # logins the client count is per username from one address, and once it is over, that
    # username is refused from there before the password is checked (see access.login).
    auth_failures_per_client: str = "10/minute"
    auth_failures_per_address: str = "30/minute"
    # Where those counts live (limits' storage URL): memory:// counts per process; with
    # several API nodes use a shared one, e.g. redis://host:6379/1.
    rate_limit_storage_url: str = "memory://"

    # Retention (README "Retention"; a job's `retention` overrides each): ended runs are
    # removed this many days after they ended (0: kept forever), and beyond the newest N
    # ended runs of each job (0: no limit); their log lines may go sooner, the run staying
    # (0: with the run). Pruned every interval (0: never in the background; `jobport db
    # prune` does it on demand), `prune_batch` rows per transaction.
    retention_days: int = Field(default=90, ge=0, le=36_500)
    retention_runs_per_job: int = Field(default=0, ge=0, le=100_000_000)
    log_retention_days: int = Field(default=30, ge=0, le=36_500)
    prune_interval_seconds: float = Field(default=300.0, ge=0)
    prune_batch: int = Field(default=200, ge=1, le=100_000)

    # Metrics: /metrics needs the `metrics:read` scope; with metrics_bind ("host:port") they
    # are also served there, without authentication, for a scraper on a private network.
    metrics_bind: str = ""

    @field_validator("trusted_proxies", "step_env_passthrough", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [p.strip() for p in value.replace(",", " ").split() if p.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for proxy in value:
            ipaddress.ip_network(proxy, strict=False)
        return value

    @field_validator("auth_failures_per_client", "auth_failures_per_address")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        # Refused at start, not at the first failed attempt (where it would be a 500).
        from limits import parse  # here: it takes a quarter of a second to import

        parse(value)
        return value

    @field_validator("step_env_passthrough")
    @classmethod
    def _check_passthrough(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not re.fullmatch(r"[A-Za-z_*][A-Za-z0-9_*]*", pattern):
                raise ValueError(
                    f"{pattern!r} is not a variable name or a pattern like AWS_* "
                    "(letters, digits, _ and *)"
                )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
