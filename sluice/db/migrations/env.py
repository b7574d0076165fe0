"""Alembic environment: migrates one tenant schema per run.

The tenant schema arrives in ``config.attributes["tenant_schema"]`` (set by
:func:`sluice.db.migrate.migrate_tenant`); migrations are written without schema
names and run with ``search_path`` set to the tenant schema, and Alembic's version
table lives in that schema too, so each tenant is versioned on its own.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

config = context.config


def run_migrations(connection: Connection) -> None:
    schema = config.attributes["tenant_schema"]
    connection.execute(text(f'SET search_path TO "{schema}", public'))
    context.configure(
        connection=connection,
        target_metadata=None,
        version_table_schema=schema,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `sluice migrate`, which passes a connection")
run_migrations(connection)
