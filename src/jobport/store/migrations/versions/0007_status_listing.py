"""Listing a project's runs by status: an index on (project_id, status, created_at).

Without it, a status filter walks the project's runs newest first and skips those of other
statuses: a status that few or no runs have read every run of the project (513 ms a page at
1,000,000 stored runs on SQLite, bench/README.md "the stored-runs curve").

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_executions_project_id_status_created_at",
        "executions",
        ["project_id", "status", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_executions_project_id_status_created_at", "executions")
