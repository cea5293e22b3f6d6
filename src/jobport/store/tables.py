"""The schema, as SQLAlchemy Core tables (migrations live in store/migrations)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stored as naive UTC everywhere, handed back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


Json = JSON().with_variant(JSONB(), "postgresql")
Id = String(36)
ObjectId = String(24)  # a vendor face's id: 24 hex digits (domain/ids.object_id)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

projects = Table(
    "projects",
    metadata,
    Column("id", Id, primary_key=True),
    Column("object_id", ObjectId, nullable=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_projects_object_id", "object_id", unique=True),
)

# --- Access: users, API keys, roles, memberships, sessions, audit (migration 0003) ---------

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("username", String(200), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_login_at", UTCDateTime, nullable=True),
)

# A deleted key keeps its row (deleted_at set, hashes cleared) so its client id is never reused.
api_keys = Table(
    "api_keys",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("secret_hash", String(128), nullable=True),
    Column("previous_secret_hash", String(128), nullable=True),
    Column("previous_valid_until", UTCDateTime, nullable=True),
    Column("description", Text, nullable=False, default=""),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("firewall_rules", Json, nullable=False),
    Column("created_by", String(200), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("rotated_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("last_used_ip", String(64), nullable=True),
    Column("deleted_at", UTCDateTime, nullable=True),
)

# project_key is "" for application roles (and the built-ins), else the project id: a unique
# key that works the same on SQLite and PostgreSQL, where NULLs never collide.
roles = Table(
    "roles",
    metadata,
    Column("id", Id, primary_key=True),
    Column("project_key", String(36), nullable=False),
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("scopes", Json, nullable=False),
    Column("builtin", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("project_key", "name"),
)

# A membership holds a role at one level: application (project_key "") or one project.
role_members = Table(
    "role_members",
    metadata,
    Column("role_id", Id, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
    Column("project_key", String(36), primary_key=True),
    Column("member_type", String(10), primary_key=True),
    Column("member_id", String(200), primary_key=True),
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_role_members_member_type_member_id", "member_type", "member_id"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(128), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(128), nullable=False),
    Column("address", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("principal", String(300), nullable=True),
    Column("address", String(64), nullable=True),
    Column("action", String(100), nullable=False),
    Column("target", String(500), nullable=True),
    Column("project_id", String(36), nullable=True),
    Column("outcome", String(20), nullable=False),
    Column("status", Integer, nullable=True),
    Column("details", Json, nullable=True),
    Index("ix_audit_log_at", "at"),
)

# Server-wide secrets generated on first start (token signing key), shared by every node.
server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("object_id", ObjectId, nullable=True),
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("spec", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("project_id", "name"),
    Index("ix_jobs_object_id", "object_id", unique=True),
)

executions = Table(
    "executions",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("job_id", Id, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("job_name", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("trigger", String(20), nullable=False),
    Column("parameters", Json, nullable=False),
    Column("mode", String(10), nullable=False),
    Column("principal", String(200), nullable=True),
    Column("idempotency_key", String(200), nullable=True),
    Column("attempt", Integer, nullable=False, default=1),
    Column("retry_of", String(200), nullable=True),
    Column("spec", Json, nullable=False),
    Column("steps", Json, nullable=False),
    Column("result", Json, nullable=True),
    Column("error_code", String(50), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("worker", String(200), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("not_before", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("heartbeat_at", UTCDateTime, nullable=True),
    Column("log_lines", BigInteger, nullable=False, default=0),
    Column("log_bytes", BigInteger, nullable=False, default=0),
    # The schedule that started the run (migration 0002); no foreign key, so a run keeps
    # saying where it came from after its schedule is deleted.
    Column("schedule_id", Id, nullable=True),
    Column("schedule_name", String(200), nullable=True),
    Column("schedule_fire_at", UTCDateTime, nullable=True),
    # Migration 0005: the 24-hex id vendor faces show (domain/ids.object_id), the template
    # context given at start, and a foreach run's summary (counts, accumulator, resumes).
    Column("object_id", ObjectId, nullable=True),
    Column("context", Json, nullable=True),
    Column("iteration", Json, nullable=True),
    # Migration 0006: when retention removed the run's log lines (the run stays; log_lines
    # still says how many it had).
    Column("logs_pruned_at", UTCDateTime, nullable=True),
    UniqueConstraint("project_id", "idempotency_key"),
    Index("ix_executions_job_id_created_at", "job_id", "created_at"),
    Index("ix_executions_project_id_created_at", "project_id", "created_at"),
    Index("ix_executions_project_id_status_created_at", "project_id", "status", "created_at"),
    Index("ix_executions_status_not_before", "status", "not_before"),
    Index("ix_executions_job_id_status", "job_id", "status"),
    Index("ix_executions_schedule_id_status", "schedule_id", "status"),
    Index("ix_executions_object_id", "object_id", unique=True),
    # Retention's selections (store/retention.py), partial so that queued and running runs,
    # and runs whose log is gone, cost these indexes nothing.
    Index(
        "ix_executions_job_id_finished_at",
        "job_id",
        "finished_at",
        sqlite_where=text("finished_at IS NOT NULL"),
        postgresql_where=text("finished_at IS NOT NULL"),
    ),
    Index(
        "ix_executions_logs_kept",
        "job_id",
        "finished_at",
        sqlite_where=text("finished_at IS NOT NULL AND logs_pruned_at IS NULL"),
        postgresql_where=text("finished_at IS NOT NULL AND logs_pruned_at IS NULL"),
    ),
)

execution_logs = Table(
    "execution_logs",
    metadata,
    Column(
        "execution_id",
        String(200),
        ForeignKey("executions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("step", String(200), nullable=True),
    Column("stream", String(10), nullable=False),
    Column("level", String(10), nullable=False),
    Column("text", Text, nullable=False),
    Column("iteration", Integer, nullable=True),  # a foreach item's index (migration 0005)
)

# The items of a foreach run (migration 0005), written once when the run resolves its
# source; an item's final status is written as it ends, so a resumed run skips what ended.
execution_items = Table(
    "execution_items",
    metadata,
    Column(
        "execution_id",
        String(200),
        ForeignKey("executions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("idx", Integer, primary_key=True, autoincrement=False),
    Column("item", Json, nullable=True),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_execution_items_execution_id_status", "execution_id", "status"),
)

# --- Schedules: named cron schedules per job, and every fire they made (migration 0002) ---

# next_fire_at is NULL when nothing will fire (disabled, ended, one-time already fired);
# last_fire_at is the newest nominal time fired (any outcome): an update never fires it again.
schedules = Table(
    "schedules",
    metadata,
    Column("id", Id, primary_key=True),
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("job_id", Id, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("spec", Json, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("next_fire_at", UTCDateTime, nullable=True),
    Column("last_fire_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("job_id", "name"),
    Index("ix_schedules_enabled_next_fire_at", "enabled", "next_fire_at"),
)

# The unique (schedule_id, fire_at) key is what makes a fire happen at most once, whatever
# number of schedulers run. execution_id has no foreign key: the fire row is written first,
# in the same transaction as its execution.
schedule_fires = Table(
    "schedule_fires",
    metadata,
    Column("id", Id, primary_key=True),
    Column("schedule_id", Id, ForeignKey("schedules.id", ondelete="CASCADE"), nullable=False),
    Column("fire_at", UTCDateTime, nullable=False),
    Column("local", String(40), nullable=False),
    Column("dst", String(10), nullable=True),
    Column("kind", String(10), nullable=False),
    Column("outcome", String(10), nullable=False),
    Column("reason", String(300), nullable=True),
    Column("execution_id", String(200), nullable=True),
    Column("recorded_at", UTCDateTime, nullable=False),
    UniqueConstraint("schedule_id", "fire_at"),
    Index("ix_schedule_fires_outcome", "outcome"),
)

# --- Connections and step watermarks (migration 0004) --------------------------------------

# A project's named connection: a SQLAlchemy URL (kind "sql") or an http(s) base URL with
# headers (kind "http"). `url` is what anyone may read: the URL with its password masked;
# `secret` is the Fernet token of {"url": the whole URL, "headers": {name: value}}.
connections = Table(
    "connections",
    metadata,
    Column("id", Id, primary_key=True),
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("kind", String(10), nullable=False),
    Column("url", Text, nullable=False),
    Column("header_names", Json, nullable=False),
    Column("secret", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("project_id", "name"),
)

# The highest watermark the last successful run of a job's step saw (a `delta` transfer
# reads above it). Written in the transaction that records the run's success, never before.
step_watermarks = Table(
    "step_watermarks",
    metadata,
    Column("job_id", Id, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("step", String(200), primary_key=True),
    Column("value", Json, nullable=True),
    Column("execution_id", String(200), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
