"""Access: users, API keys, roles and memberships, sessions, the audit log, server secrets.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from jobport.store.tables import Json, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("username", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("last_login_at", UTCDateTime, nullable=True),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "api_keys",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("secret_hash", sa.String(128), nullable=True),
        sa.Column("previous_secret_hash", sa.String(128), nullable=True),
        sa.Column("previous_valid_until", UTCDateTime, nullable=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("firewall_rules", Json, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("rotated_at", UTCDateTime, nullable=True),
        sa.Column("last_used_at", UTCDateTime, nullable=True),
        sa.Column("last_used_ip", sa.String(64), nullable=True),
        sa.Column("deleted_at", UTCDateTime, nullable=True),
    )
    op.create_table(
        "roles",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("project_key", sa.String(36), nullable=False),
        sa.Column(
            "project_id",
            sa.String(36),
            sa.ForeignKey("projects.id", ondelete="CASCADE", name="fk_roles_project_id_projects"),
            nullable=True,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("scopes", Json, nullable=False),
        sa.Column("builtin", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("project_key", "name", name="uq_roles_project_key_name"),
    )
    op.create_table(
        "role_members",
        sa.Column(
            "role_id",
            sa.String(36),
            sa.ForeignKey("roles.id", ondelete="CASCADE", name="fk_role_members_role_id_roles"),
            primary_key=True,
        ),
        sa.Column("project_key", sa.String(36), primary_key=True),
        sa.Column("member_type", sa.String(10), primary_key=True),
        sa.Column("member_id", sa.String(200), primary_key=True),
        sa.Column(
            "project_id",
            sa.String(36),
            sa.ForeignKey(
                "projects.id", ondelete="CASCADE", name="fk_role_members_project_id_projects"
            ),
            nullable=True,
        ),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "ix_role_members_member_type_member_id", "role_members", ["member_type", "member_id"]
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(128), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_sessions_user_id_users"),
            nullable=False,
        ),
        sa.Column("csrf_token", sa.String(128), nullable=False),
        sa.Column("address", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("principal", sa.String(300), nullable=True),
        sa.Column("address", sa.String(64), nullable=True),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("target", sa.String(500), nullable=True),
        sa.Column("project_id", sa.String(36), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("details", Json, nullable=True),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "server_secrets",
        "audit_log",
        "sessions",
        "role_members",
        "roles",
        "api_keys",
        "users",
    ):
        op.drop_table(table)
