"""A raw asyncpg connection bound to a tenant, without SQLAlchemy when there is no pool.

``raw_tenant_connection(tenant_id)`` yields an asyncpg connection inside one transaction
whose ``search_path`` is set *locally* to the tenant's schema (as
:func:`sluice.db.session.tenant_connection` does), committed on success, rolled back on
error. Where it comes from depends on the process:

* a process that has loaded :mod:`sluice.db.engine` (a worker, the tests) already holds
  SQLAlchemy's pool: the connection is borrowed from it;
* otherwise (a one-shot CLI command such as ``sluice connector list`` or ``sluice
  search``) it is a direct ``asyncpg.connect``, closed at the end. Loading SQLAlchemy's
  async engine and ORM costs about a second on a slow box; one connection costs a few
  milliseconds.

Both behave the same for callers: ``json``/``jsonb`` values decode to Python objects (the
codecs SQLAlchemy's asyncpg dialect installs), and with ``vectors=True`` pgvector's binary
codec is registered (pooled connections always have it), so vectors travel in pgvector's
binary format. Only plain SQL goes through it: read paths that must stay light.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sluice.db.limits import APPLICATION_NAME, COMMAND_TIMEOUT_SECONDS, CONNECT_TIMEOUT_SECONDS
from sluice.tenancy import quoted_schema


@asynccontextmanager
async def raw_tenant_connection(tenant_id: str, *, vectors: bool = False) -> AsyncIterator[Any]:
    """An asyncpg connection in a transaction scoped to ``tenant_id``'s schema.

    From SQLAlchemy's pool when this process has one, else a connection of its own.
    ``vectors``: the caller reads or writes ``vector`` values (pgvector's codec needed).
    """
    quoted_schema(tenant_id)  # an invalid tenant fails before any connection is opened
    if "sluice.db.engine" in sys.modules:
        from sluice.db.session import tenant_connection

        async with tenant_connection(tenant_id) as (_, raw):
            yield raw
        return
    async with direct_tenant_connection(tenant_id, vectors=vectors) as raw:
        yield raw


@asynccontextmanager
async def direct_tenant_connection(tenant_id: str, *, vectors: bool = False) -> AsyncIterator[Any]:
    """A new asyncpg connection (no pool, no SQLAlchemy), closed when the block ends."""
    import asyncpg

    from sluice.config import get_settings

    schema = quoted_schema(tenant_id)
    conn = await asyncpg.connect(
        get_settings().asyncpg_dsn,
        timeout=CONNECT_TIMEOUT_SECONDS,
        command_timeout=COMMAND_TIMEOUT_SECONDS,
        server_settings={"application_name": APPLICATION_NAME},
    )
    try:
        await _install_codecs(conn, vectors=vectors)
        async with conn.transaction():
            await conn.execute(f"SET LOCAL search_path TO {schema}, public")
            yield conn
    finally:
        await conn.close()


async def _install_codecs(conn: Any, *, vectors: bool) -> None:
    """The codecs pooled connections have: JSON decoded as SQLAlchemy's dialect does
    (parameters stay JSON text), pgvector's binary format when asked for."""
    await conn.set_type_codec(
        "json", encoder=str.encode, decoder=_json_decoder, schema="pg_catalog", format="binary"
    )
    await conn.set_type_codec(
        "jsonb",
        encoder=_jsonb_encoder,
        decoder=_jsonb_decoder,
        schema="pg_catalog",
        format="binary",
    )
    if vectors:
        from pgvector.asyncpg import register_vector

        try:
            await register_vector(conn)
        except ValueError:
            pass  # no vector extension yet (tenant never migrated): the query will say so


def _json_decoder(value: bytes) -> Any:
    return json.loads(value.decode())


def _jsonb_encoder(value: str) -> bytes:
    return b"\x01" + value.encode()  # jsonb's binary format: version byte, then the text


def _jsonb_decoder(value: bytes) -> Any:
    return json.loads(value[1:].decode())
