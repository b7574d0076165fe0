"""Create a tenant's schema and bring it to the newest migration (idempotent)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from sluice.db.engine import get_engine
from sluice.tenancy import quoted_schema, schema_for

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _upgrade(connection: Connection, schema: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["tenant_schema"] = schema
    command.upgrade(config, "head")


async def migrate_tenant(tenant_id: str) -> None:
    """Ensure pgvector, the tenant's schema and its tables exist at the newest revision."""
    schema = schema_for(tenant_id)
    engine = get_engine()
    async with engine.begin() as conn:
        # Serialise concurrent migrators (several workers starting at once).
        await conn.execute(text("SELECT pg_advisory_xact_lock(7301)"))
        await conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted_schema(tenant_id)}"))
        await conn.run_sync(_upgrade, schema)
    # Connections opened before the extension existed lack the vector codec.
    await engine.dispose()


async def list_tenants() -> list[str]:
    """Tenants that have been migrated (schemas holding Sluice's version table)."""
    engine = get_engine()
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT table_schema FROM information_schema.tables "
                "WHERE table_name = 'alembic_version' ORDER BY table_schema"
            )
        )
        return [r[0] for r in rows]
