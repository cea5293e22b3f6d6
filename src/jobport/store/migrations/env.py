"""Alembic environment: runs on the engine the Database hands over (or the URL)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from jobport.store.tables import metadata

config = context.config
engine = config.attributes.get("engine") or create_engine(config.get_main_option("sqlalchemy.url"))

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
