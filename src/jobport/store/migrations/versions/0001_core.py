"""Core: projects, jobs, executions and their logs.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from jobport.store.tables import Json, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_projects"),
        sa.UniqueConstraint("name", name="uq_projects_name"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("spec", Json, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_jobs_project_id_projects", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("project_id", "name", name="uq_jobs_project_id_name"),
    )
    op.create_table(
        "executions",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("job_name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("parameters", Json, nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("principal", sa.String(200), nullable=True),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("retry_of", sa.String(200), nullable=True),
        sa.Column("spec", Json, nullable=False),
        sa.Column("steps", Json, nullable=False),
        sa.Column("result", Json, nullable=True),
        sa.Column("error_code", sa.String(50), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("not_before", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.Column("heartbeat_at", UTCDateTime, nullable=True),
        sa.Column("log_lines", sa.BigInteger, nullable=False),
        sa.Column("log_bytes", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_executions"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name="fk_executions_project_id_projects",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name="fk_executions_job_id_jobs", ondelete="CASCADE"
        ),
        sa.UniqueConstraint(
            "project_id", "idempotency_key", name="uq_executions_project_id_idempotency_key"
        ),
    )
    op.create_index("ix_executions_job_id_created_at", "executions", ["job_id", "created_at"])
    op.create_index(
        "ix_executions_project_id_created_at", "executions", ["project_id", "created_at"]
    )
    op.create_index("ix_executions_status_not_before", "executions", ["status", "not_before"])
    op.create_index("ix_executions_job_id_status", "executions", ["job_id", "status"])
    op.create_table(
        "execution_logs",
        sa.Column("execution_id", sa.String(200), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("step", sa.String(200), nullable=True),
        sa.Column("stream", sa.String(10), nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("execution_id", "seq", name="pk_execution_logs"),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name="fk_execution_logs_execution_id_executions",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("execution_logs")
    op.drop_index("ix_executions_job_id_status", "executions")
    op.drop_index("ix_executions_status_not_before", "executions")
    op.drop_index("ix_executions_project_id_created_at", "executions")
    op.drop_index("ix_executions_job_id_created_at", "executions")
    op.drop_table("executions")
    op.drop_table("jobs")
    op.drop_table("projects")
