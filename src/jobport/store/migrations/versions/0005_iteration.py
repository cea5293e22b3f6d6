"""Foreach runs: their items, each log line's item, the run's template context and summary;
and the 24-hex object ids vendor faces show for projects, jobs and executions.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

import hashlib

import sqlalchemy as sa
from alembic import op

from jobport.store.tables import Json, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_WITH_OBJECT_IDS = ("projects", "jobs", "executions")


def _object_id(native_id: str) -> str:
    # domain/ids.object_id, repeated: a migration never changes with the code after it.
    return hashlib.sha256(native_id.encode()).hexdigest()[:24]


def upgrade() -> None:
    for table in _WITH_OBJECT_IDS:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("object_id", sa.String(24), nullable=True))
        conn = op.get_bind()
        ids = [row[0] for row in conn.execute(sa.text(f"SELECT id FROM {table}"))]
        if ids:
            conn.execute(
                sa.text(f"UPDATE {table} SET object_id = :oid WHERE id = :id"),
                [{"oid": _object_id(i), "id": i} for i in ids],
            )
        op.create_index(f"ix_{table}_object_id", table, ["object_id"], unique=True)
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("context", Json, nullable=True))
        batch.add_column(sa.Column("iteration", Json, nullable=True))
    with op.batch_alter_table("execution_logs") as batch:
        batch.add_column(sa.Column("iteration", sa.Integer, nullable=True))
    op.create_table(
        "execution_items",
        sa.Column("execution_id", sa.String(200), nullable=False),
        sa.Column("idx", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("item", Json, nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("execution_id", "idx", name="pk_execution_items"),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name="fk_execution_items_execution_id_executions",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_execution_items_execution_id_status", "execution_items", ["execution_id", "status"]
    )


def downgrade() -> None:
    op.drop_index("ix_execution_items_execution_id_status", "execution_items")
    op.drop_table("execution_items")
    with op.batch_alter_table("execution_logs") as batch:
        batch.drop_column("iteration")
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("iteration")
        batch.drop_column("context")
    for table in reversed(_WITH_OBJECT_IDS):
        op.drop_index(f"ix_{table}_object_id", table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("object_id")
