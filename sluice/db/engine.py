"""One async engine per process, with pgvector's binary codec on every connection."""

from __future__ import annotations

from typing import Any

from pgvector.asyncpg import register_vector
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from sluice.config import Settings, get_settings

_engines: dict[str, AsyncEngine] = {}

CONNECT_TIMEOUT_SECONDS = 10
"""A Postgres that is down refuses at once; one that is frozen would hang forever."""

COMMAND_TIMEOUT_SECONDS = 60
"""No statement Sluice runs takes this long (a COPY is 1,000 rows); a frozen server fails
instead of hanging, so the activity's retry (with a fresh connection) takes over. A stuck
query costs up to twice this: the rollback's cancel request also waits for the server
(measured in tests/test_pgfaults.py). A migration that builds a large index needs its
own, longer timeout."""

POOL_TIMEOUT_SECONDS = 30


def _install_vector_codec(engine: AsyncEngine) -> None:
    """Register pgvector's asyncpg codec so vectors travel as binary, not text."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        try:
            dbapi_connection.run_async(register_vector)
        except ValueError:
            # The extension is created by the first migration; before that, no codec.
            pass


def get_engine(settings: Settings | None = None, *, pool_size: int = 10) -> AsyncEngine:
    """The process's engine for ``settings.database_url`` (created on first use)."""
    settings = settings or get_settings()
    url = settings.sqlalchemy_url
    engine = _engines.get(url)
    if engine is None:
        engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            pool_timeout=POOL_TIMEOUT_SECONDS,
            connect_args={
                "server_settings": {"application_name": "sluice"},
                "timeout": CONNECT_TIMEOUT_SECONDS,
                "command_timeout": COMMAND_TIMEOUT_SECONDS,
            },
        )
        _install_vector_codec(engine)
        _engines[url] = engine
    return engine


async def dispose_engines() -> None:
    """Close every pool (worker shutdown, end of tests)."""
    for engine in list(_engines.values()):
        await engine.dispose()
    _engines.clear()
