"""Client side of sandbox runs: start one, wait for it, read its stored result."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from temporalio.client import Client, WorkflowHandle

from sluice import filestore
from sluice.errors import NotFoundError
from sluice.queues import TaskQueue
from sluice.sandbox.models import SandboxRef, SandboxRequest, SandboxResult
from sluice.temporal import workflow_ids
from sluice.temporal.tenant_context import tenant_scope


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


async def start(client: Client, request: SandboxRequest) -> WorkflowHandle[Any, SandboxRef]:
    with tenant_scope(request.tenant_id):
        return await client.start_workflow(
            workflow_ids.SANDBOX,
            request,
            id=workflow_ids.sandbox_workflow_id(request.tenant_id, request.run_id),
            task_queue=TaskQueue.PRIMARY.value,
            result_type=SandboxRef,
            static_summary=f"sandbox: {' '.join(request.command)[:120]}",
        )


async def run(client: Client, request: SandboxRequest) -> SandboxResult:
    """Start a run, wait for it, return its stored result."""
    handle = await start(client, request)
    with tenant_scope(request.tenant_id):
        try:
            await handle.result()
        except asyncio.CancelledError:  # Ctrl-C: the run must not go on without its caller
            await handle.cancel()
            raise
    return await load_result(request.tenant_id, request.run_id)


async def load_result(tenant_id: str, run_id: str) -> SandboxResult:
    path = filestore.sandbox_result_path(tenant_id, run_id)
    try:
        text = await asyncio.to_thread(path.read_text)
    except FileNotFoundError:
        raise NotFoundError(f"no stored result for sandbox run {run_id}") from None
    return SandboxResult.model_validate(json.loads(text))
