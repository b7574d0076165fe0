"""One async engine per process, with pgvector's binary codec on every connection."""

from __future__ import annotations

from typing import Any

from pgvector.asyncpg import register_vector
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from sluice.config import Settings, get_settings
from sluice.db.raw import APPLICATION_NAME, COMMAND_TIMEOUT_SECONDS, CONNECT_TIMEOUT_SECONDS

_engines: dict[str, AsyncEngine] = {}

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
                "server_settings": {"application_name": APPLICATION_NAME},
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
