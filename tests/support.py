"""Helpers the tests share: in-process workers on every queue, DB probes, tuned runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from temporalio.client import Client

from sluice.config import get_settings
from sluice.db.session import tenant_connection
from sluice.indexing.models import RunTuning
from workers.kinds import WORKER_KINDS
from workers.runner import build_workers

FAST = RunTuning(
    batch_size=10,
    batches_per_fetch=2,
    max_batches_in_flight=2,
    fetch_heartbeat_seconds=5,
    process_heartbeat_seconds=30,
)


@asynccontextmanager
async def running_workers(client: Client, kind: str = "background") -> AsyncIterator[None]:
    """Run the worker kind's queues in this process for the duration of the block."""
    workers = build_workers(client, WORKER_KINDS[kind], get_settings(), identity="test-worker")
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield
    finally:
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)


async def fetch(tenant_id: str, sql: str, *args: Any) -> list[Any]:
    async with tenant_connection(tenant_id) as (_, raw):
        return list(await raw.fetch(sql, *args))


async def fetchval(tenant_id: str, sql: str, *args: Any) -> Any:
    async with tenant_connection(tenant_id) as (_, raw):
        return await raw.fetchval(sql, *args)


async def eventually(check: Callable[[], Any], timeout: float = 30, interval: float = 0.1) -> Any:
    """Poll an async ``check`` until it returns a truthy value (bounded)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {value!r})")
        await asyncio.sleep(interval)
