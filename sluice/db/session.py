"""Tenant-bound database access.

``tenant_session(tenant_id)`` yields a session whose every table resolves to the
tenant's schema (SQLAlchemy ``schema_translate_map``), inside one transaction.
``tenant_connection`` does the same for raw asyncpg work on the hot path (COPY),
with ``search_path`` set *locally* to the transaction so pooled connections
never carry one tenant's path to the next user.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from sluice.db.engine import get_engine
from sluice.db.models import TENANT_SCHEMA
from sluice.tenancy import quoted_schema, schema_for


def tenant_execution_options(tenant_id: str) -> dict[str, Any]:
    return {"schema_translate_map": {TENANT_SCHEMA: schema_for(tenant_id)}}


@asynccontextmanager
async def tenant_session(tenant_id: str) -> AsyncIterator[AsyncSession]:
    """A session bound to ``tenant_id``'s schema, committed on success, rolled back on error."""
    options = tenant_execution_options(tenant_id)
    engine = get_engine()
    async with engine.begin() as conn:
        conn = await conn.execution_options(**options)
        await conn.execute(text(f"SET LOCAL search_path TO {quoted_schema(tenant_id)}, public"))
        # The session joins the connection's transaction, which commits when the block
        # ends without an error and rolls back otherwise.
        session = AsyncSession(
            bind=conn, expire_on_commit=False, join_transaction_mode="rollback_only"
        )
        try:
            yield session
            await session.flush()
        finally:
            await session.close()


@asynccontextmanager
async def tenant_connection(tenant_id: str) -> AsyncIterator[tuple[AsyncConnection, Any]]:
    """(SQLAlchemy connection, raw asyncpg connection) in one tenant-scoped transaction."""
    options = tenant_execution_options(tenant_id)
    engine = get_engine()
    async with engine.begin() as conn:
        conn = await conn.execution_options(**options)
        await conn.execute(text(f"SET LOCAL search_path TO {quoted_schema(tenant_id)}, public"))
        raw = await conn.get_raw_connection()
        yield conn, raw.driver_connection
