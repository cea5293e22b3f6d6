"""Schedules: named cron schedules per job, their fires, and the schedule that started a run.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from jobport.store.tables import Json, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("spec", Json, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("next_fire_at", UTCDateTime, nullable=True),
        sa.Column("last_fire_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_schedules"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name="fk_schedules_project_id_projects",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name="fk_schedules_job_id_jobs", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("job_id", "name", name="uq_schedules_job_id_name"),
    )
    op.create_index("ix_schedules_enabled_next_fire_at", "schedules", ["enabled", "next_fire_at"])
    op.create_table(
        "schedule_fires",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("schedule_id", sa.String(36), nullable=False),
        sa.Column("fire_at", UTCDateTime, nullable=False),
        sa.Column("local", sa.String(40), nullable=False),
        sa.Column("dst", sa.String(10), nullable=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("reason", sa.String(300), nullable=True),
        sa.Column("execution_id", sa.String(200), nullable=True),
        sa.Column("recorded_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_schedule_fires"),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name="fk_schedule_fires_schedule_id_schedules",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("schedule_id", "fire_at", name="uq_schedule_fires_schedule_id_fire_at"),
    )
    op.create_index("ix_schedule_fires_outcome", "schedule_fires", ["outcome"])
    # Nullable columns: SQLite adds them in place, without copying the executions table.
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("schedule_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("schedule_name", sa.String(200), nullable=True))
        batch.add_column(sa.Column("schedule_fire_at", UTCDateTime, nullable=True))
    op.create_index("ix_executions_schedule_id_status", "executions", ["schedule_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_executions_schedule_id_status", "executions")
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("schedule_fire_at")
        batch.drop_column("schedule_name")
        batch.drop_column("schedule_id")
    op.drop_index("ix_schedule_fires_outcome", "schedule_fires")
    op.drop_table("schedule_fires")
    op.drop_index("ix_schedules_enabled_next_fire_at", "schedules")
    op.drop_table("schedules")
