"""Connections of a project (secrets encrypted), and the watermarks of delta transfers.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from jobport.store.tables import Json, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("header_names", Json, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_connections"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name="fk_connections_project_id_projects",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("project_id", "name", name="uq_connections_project_id_name"),
    )
    op.create_table(
        "step_watermarks",
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("step", sa.String(200), nullable=False),
        sa.Column("value", Json, nullable=True),
        sa.Column("execution_id", sa.String(200), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("job_id", "step", name="pk_step_watermarks"),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name="fk_step_watermarks_job_id_jobs", ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    op.drop_table("step_watermarks")
    op.drop_table("connections")
