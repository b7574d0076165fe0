"""Helpers the tests share: in-process workers on every queue, DB probes, tuned runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
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


async def activity_attempts(client: Client, workflow_id: str, activity_type: str) -> list[int]:
    """Attempt numbers of every start of ``activity_type`` across the workflow's runs."""
    found: list[int] = []
    async for wf in client.list_workflows(f'WorkflowId = "{workflow_id}"'):
        handle = client.get_workflow_handle(workflow_id, run_id=wf.run_id)
        scheduled: dict[int, str] = {}
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                attrs = event.activity_task_scheduled_event_attributes
                scheduled[event.event_id] = attrs.activity_type.name
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                attrs2 = event.activity_task_started_event_attributes
                if scheduled.get(attrs2.scheduled_event_id) == activity_type:
                    found.append(attrs2.attempt)
    return found


def only_line(stderr: str) -> str:
    """The single non-empty line a failing `sluice` command must print (asserted)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


async def connect_when_ready(settings: Any, timeout: float = 60) -> Client:
    """A worker-capable client of a server just (re)started: its port opens before its
    frontend is healthy ("Frontend is not healthy yet"), longer on a busy machine."""
    from sluice.temporal.client import connect

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await connect(settings, workers=True)
        except RuntimeError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def skip_time(env: Any, by: timedelta) -> None:
    """Skip ``by`` of workflow time on the time-skipping server, all of it: a busy machine
    can time one skip RPC out ("Timeout expired") part-way, so skip what is left again."""
    from temporalio.service import RPCError

    target = await env.get_current_time() + by
    for _ in range(10):
        remaining = target - await env.get_current_time()
        if remaining <= timedelta(0):
            return
        try:
            await env.sleep(remaining)
        except RPCError as err:
            if "Timeout expired" not in str(err):
                raise
    raise AssertionError(f"could not skip {by} of workflow time")
