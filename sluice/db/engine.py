"""One async engine per process, with pgvector's binary codec on every connection."""

from __future__ import annotations

from typing import Any

from pgvector.asyncpg import register_vector
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from sluice.config import Settings, get_settings
from sluice.db.limits import APPLICATION_NAME, COMMAND_TIMEOUT_SECONDS, CONNECT_TIMEOUT_SECONDS

_engines: dict[str, AsyncEngine] = {}

POOL_TIMEOUT_SECONDS = 30


def _install_vector_codec(engine: AsyncEngine) -> None:
    """Register pgvector's asyncpg codec so vectors travel as binary, not text.

    The extension is created by the first migration. A connection opened before that
    (a worker starting while ``sluice dev`` migrates a fresh database) cannot register
    it, so it is tried again each time such a connection is checked out, until it works:
    otherwise the pool would keep a connection that fails every vector write.
    """

    def _register(dbapi_connection: Any, record: Any) -> None:
        try:
            dbapi_connection.run_async(register_vector)
        except ValueError:
            return  # no extension yet: try again at the next checkout
        record.info["vector_codec"] = True

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        _register(dbapi_connection, record)

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if not record.info.get("vector_codec"):
            _register(dbapi_connection, record)


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
