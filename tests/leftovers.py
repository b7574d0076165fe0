"""What one test starts on the shared Temporal servers ends with that test.

Connector workflows live forever and every worker process syncs schedules for every
migrated tenant, so without this a long session piles up hundreds of sleeping connector
workflows and thousands of schedules. Each later test's workers then serve all of them:
queries time out, time skips stall, tests slow down five-fold (the CI run that timed out
showed exactly that). At the end of each test its tenant's schedules are deleted, its
running workflows terminated and its schema dropped.

The time-skipping server cannot list workflows, so every workflow start made through a
test client is recorded here and terminated by ID.
"""

from __future__ import annotations

import contextlib
from typing import Any

from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    WorkflowHandle,
)
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

_started: list[str] = []
_envs: list[WorkflowEnvironment] = []


class RecordStarts(Interceptor):
    """Remembers the ID of every workflow a test client starts (signal-with-start too)."""

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Recorder(next)


class _Recorder(OutboundInterceptor):
    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        _started.append(input.id)
        return await super().start_workflow(input)


def track(env: WorkflowEnvironment) -> WorkflowEnvironment:
    """Clean this server too at the end of each test."""
    _envs.append(env)
    return env


async def retire(tenant_id: str) -> None:
    """Stop everything the test left running for ``tenant_id`` and drop its schema."""
    from schedules.sync import delete_tenant_schedules
    from sluice.temporal import search

    mine = [wid for wid in _started if tenant_id in wid]
    for env in _envs:
        client = env.client
        if env.supports_time_skipping:
            for wid in mine:
                await _terminate(client, wid)
            continue
        await delete_tenant_schedules(client, tenant_id)
        query = f"{search.TENANT.name} = '{tenant_id}' AND ExecutionStatus = 'Running'"
        async for wf in client.list_workflows(query):
            await _terminate(client, wf.id)
        for wid in mine:
            await _terminate(client, wid)
    _started[:] = [wid for wid in _started if tenant_id not in wid]
    await _drop_schema(tenant_id)


async def _terminate(client: Client, workflow_id: str) -> None:
    with contextlib.suppress(RPCError):  # already closed or never started
        await client.get_workflow_handle(workflow_id).terminate(reason="test finished")


async def _drop_schema(tenant_id: str) -> None:
    from sqlalchemy import text

    from sluice.db.engine import get_engine
    from sluice.tenancy import quoted_schema

    # A lock still held by a worker the test killed must not hang the session.
    with contextlib.suppress(Exception):
        async with get_engine().begin() as conn:
            await conn.execute(text("SET LOCAL lock_timeout = '10s'"))
            await conn.execute(text(f"DROP SCHEMA IF EXISTS {quoted_schema(tenant_id)} CASCADE"))
