"""Retention: when a run's log was pruned, and the indexes that keep pruning's selections
cheap with millions of runs (partial: active runs and pruned logs are not in them).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from jobport.store.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ENDED = "finished_at IS NOT NULL"
_LOGS_KEPT = "finished_at IS NOT NULL AND logs_pruned_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("logs_pruned_at", UTCDateTime, nullable=True))
    op.create_index(
        "ix_executions_job_id_finished_at",
        "executions",
        ["job_id", "finished_at"],
        sqlite_where=sa.text(_ENDED),
        postgresql_where=sa.text(_ENDED),
    )
    op.create_index(
        "ix_executions_logs_kept",
        "executions",
        ["job_id", "finished_at"],
        sqlite_where=sa.text(_LOGS_KEPT),
        postgresql_where=sa.text(_LOGS_KEPT),
    )


def downgrade() -> None:
    op.drop_index("ix_executions_logs_kept", "executions")
    op.drop_index("ix_executions_job_id_finished_at", "executions")
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("logs_pruned_at")
