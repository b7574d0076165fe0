"""The fault-injection harness (tests/pgfaults.py) does what it says, and what the
engine does meanwhile: a killed Postgres refuses connections at once, a restarted one
has every committed row and the pool recovers by itself (``pool_pre_ping``), a frozen
one leaves queries hanging until it is thawed. The session's Postgres is untouched."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
import sqlalchemy.exc

from sluice.config import get_settings
from sluice.db.engine import get_engine
from sluice.db.session import tenant_connection
from tests.pgfaults import PrivatePostgres, private_db, private_tenant  # noqa: F401
from tests.support import fetchval

pytestmark = [pytest.mark.faults, pytest.mark.timeout(60)]


async def warm_pool(tenant: str, connections: int = 3) -> None:
    """Leave ``connections`` idle connections in the pool (they go stale in a fault)."""
    await asyncio.gather(*(fetchval(tenant, "SELECT pg_sleep(0.05)") for _ in range(connections)))
    assert get_engine().pool.checkedin() >= connections  # type: ignore[attr-defined]


async def write_probe(tenant: str, note: str) -> None:
    async with tenant_connection(tenant) as (_, raw):
        await raw.execute("CREATE TABLE IF NOT EXISTS fault_probe (note text)")
        await raw.execute("INSERT INTO fault_probe VALUES ($1)", note)


async def test_the_process_talks_to_the_private_server_only(
    services: dict[str, str],
    private_db: PrivatePostgres,
) -> None:
    assert get_settings().database_url == private_db.url != services["DATABASE_URL"]
    assert private_db.running and not private_db.is_frozen


async def test_kill_refuses_connections_and_restart_keeps_committed_rows(
    services: dict[str, str],
    private_db: PrivatePostgres,
    private_tenant: str,
) -> None:
    tenant = private_tenant
    await write_probe(tenant, "before the crash")
    await warm_pool(tenant)
    tree = [private_db.pid, *private_db.backend_pids()]

    private_db.kill()

    assert not private_db.running and private_db.backend_pids() == []
    assert not any(_alive(pid) for pid in tree)
    # Pre-ping finds the pooled connections dead and the reconnect is refused: at once,
    # as a bare OSError (SQLAlchemy does not wrap connect failures in a DBAPIError).
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        await fetchval(tenant, "SELECT 1")
    assert time.monotonic() - started < 2
    # The session's Postgres never noticed.
    main = await asyncpg.connect(services["DATABASE_URL"].replace("+asyncpg", ""))
    assert await main.fetchval("SELECT 1") == 1
    await main.close()

    await private_db.restart_async()

    # Every stale pooled connection is replaced on checkout; nothing fails any more.
    notes = await asyncio.gather(
        *(fetchval(tenant, "SELECT note FROM fault_probe") for _ in range(5))
    )
    assert notes == ["before the crash"] * 5
    await write_probe(tenant, "after the restart")
    assert await fetchval(tenant, "SELECT count(*) FROM fault_probe") == 2


async def test_kill_breaks_a_connection_in_use(
    private_db: PrivatePostgres,
    private_tenant: str,
) -> None:
    async def long_query() -> None:
        async with tenant_connection(private_tenant) as (_, raw):
            await raw.execute("SELECT pg_sleep(10)")

    query = asyncio.create_task(long_query())
    await asyncio.sleep(0.5)
    started = time.monotonic()
    private_db.kill()
    # asyncpg's ConnectionDoesNotExistError, then the rollback on the way out fails too.
    with pytest.raises(sqlalchemy.exc.InterfaceError, match="connection is closed"):
        await asyncio.wait_for(query, 5)
    assert time.monotonic() - started < 2

    await private_db.outage(0.2)  # already down: just a pause and a restart
    assert await fetchval(private_tenant, "SELECT 1") == 1


async def test_outage_is_down_meanwhile_and_up_afterwards(
    private_db: PrivatePostgres,
    private_tenant: str,
) -> None:
    outcomes: list[str] = []

    async def probe() -> None:
        while True:
            try:
                await fetchval(private_tenant, "SELECT 1")
                outcomes.append("ok")
            except Exception as exc:
                outcomes.append(_kind(exc))
            await asyncio.sleep(0.02)

    prober = asyncio.create_task(probe())
    await asyncio.sleep(0.3)
    await private_db.outage(1)
    await asyncio.sleep(0.3)
    prober.cancel()
    await asyncio.gather(prober, return_exceptions=True)

    # Up, then down for one stretch, then up again for good.
    failed = [i for i, outcome in enumerate(outcomes) if outcome != "ok"]
    assert failed and outcomes[0] == outcomes[-1] == "ok", outcomes
    assert failed == list(range(failed[0], failed[-1] + 1)), outcomes
    assert outcomes.count("refused") >= 10, outcomes
    assert set(outcomes) <= {"ok", "refused", "closed", "starting"}, outcomes


def _kind(exc: Exception) -> str:
    """What a caller sees while Postgres is down: ``refused`` (ConnectionRefusedError, a
    bare OSError), ``closed`` (the kill broke a query in flight: InterfaceError), or
    ``starting`` (the restart is replaying WAL: DBAPIError around asyncpg's
    CannotConnectNowError "the database system is not yet accepting connections" or "is
    starting up")."""
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, sqlalchemy.exc.InterfaceError) and "closed" in str(exc):
        return "closed"
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and "connection was closed" in str(exc):
        return "closed"  # the kill landed while the session was being set up
    starting = ("not yet accepting", "is starting up")
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and any(s in str(exc) for s in starting):
        return "starting"
    return f"{type(exc).__name__}: {exc}"


async def test_freeze_hangs_queries_until_thawed(
    private_db: PrivatePostgres,
    private_tenant: str,
) -> None:
    tenant = private_tenant
    await write_probe(tenant, "frozen in time")
    await warm_pool(tenant)

    with private_db.frozen():
        states = {_state(pid) for pid in [private_db.pid, *private_db.backend_pids()]}
        assert states == {"T"}  # the postmaster and every backend are stopped
        # A query neither answers nor fails: it hangs (until the engine's timeouts: 10 s
        # to connect, 120 s per statement; see sluice/db/engine.py).
        query = asyncio.create_task(fetchval(tenant, "SELECT note FROM fault_probe"))
        done, _ = await asyncio.wait({query}, timeout=2)
        assert not done
        # Giving up on a query: the pool drops the connection (a 2 s graceful close,
        # then a hard one), so the caller gets its TimeoutError within seconds.
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(fetchval(tenant, "SELECT 1"), 2)
        assert time.monotonic() - started < 8

    # Thawed: the waiting query answers, and new ones work.
    assert await asyncio.wait_for(query, 10) == "frozen in time"
    assert await asyncio.wait_for(fetchval(tenant, "SELECT count(*) FROM fault_probe"), 10) == 1


def _state(pid: int | None) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def _alive(pid: int | None) -> bool:
    try:
        return _state(pid) != "Z"
    except FileNotFoundError:
        return False
