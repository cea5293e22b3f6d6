"""Migrations: Alembic builds exactly the schema that store/tables.py describes."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select

from jobport.store import projects as project_store
from jobport.store.db import Database, alembic_config
from jobport.store.tables import metadata, projects

from .rows import add_project

SCHEMA = {"projects", "jobs", "executions", "execution_logs"}
SCHEMA |= {"schedules", "schedule_fires"}  # 0002
SCHEMA |= {"users", "api_keys", "roles", "role_members", "sessions", "audit_log"}  # 0003
SCHEMA |= {"server_secrets"}  # 0003
SCHEMA |= {"connections", "step_watermarks"}  # 0004
SCHEMA |= {"execution_items"}  # 0005


def tables(db: Database) -> set[str]:
    return set(inspect(db.engine).get_table_names())


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head(db: Database) -> str | None:
    return ScriptDirectory.from_config(alembic_config(db)).get_current_head()


def drift(db: Database) -> list[object]:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))


def test_upgrade_creates_the_schema_on_an_empty_database(empty_db: Database) -> None:
    assert tables(empty_db) == set()
    empty_db.upgrade()
    assert tables(empty_db) == SCHEMA | {"alembic_version"}
    assert current_revision(empty_db) == head(empty_db) is not None


def test_upgrading_twice_is_a_no_op(empty_db: Database) -> None:
    empty_db.upgrade()
    with empty_db.write() as conn:
        project = add_project(conn, "kept")
    empty_db.upgrade()
    assert current_revision(empty_db) == head(empty_db)
    with empty_db.read() as conn:
        assert project_store.get(conn, "kept")["id"] == project["id"]


def test_migrations_match_the_table_definitions(empty_db: Database) -> None:
    empty_db.upgrade()
    assert drift(empty_db) == []


def test_downgrade_to_base_then_upgrade_again(empty_db: Database) -> None:
    empty_db.upgrade()
    with empty_db.write() as conn:
        add_project(conn, "gone")
    command.downgrade(alembic_config(empty_db), "base")
    assert tables(empty_db) - {"alembic_version"} == set()
    assert current_revision(empty_db) is None

    empty_db.upgrade()
    assert tables(empty_db) == SCHEMA | {"alembic_version"}
    assert drift(empty_db) == []
    with empty_db.write() as conn:
        add_project(conn, "gone")
        assert conn.execute(select(projects.c.name)).scalars().all() == ["gone"]
