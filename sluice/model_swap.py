"""Client-side operations on index generations: switch the embedding model, cancel, watch.

Used by ``sluice index switch-model|generations`` and the tests alike. The workflow is
addressed by name, so this module needs no workflow code; the Temporal SDK loads in the
functions that talk to Temporal, so ``generations`` (a database read) does without it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sluice.db.raw import raw_tenant_connection
from sluice.errors import NotFoundError, SwapInProgress
from sluice.index.generations import (
    EmbeddingSpec,
    GenerationInfo,
    SameModel,
    list_generations,
    live_generation,
)
from sluice.index.swap_models import (
    ModelSwapInput,
    SwapProgress,
    SwapResult,
)
from sluice.queues import TaskQueue
from sluice.temporal.tenant_context import tenant_scope
from sluice.temporal.workflow_ids import MODEL_SWAP, model_swap_workflow_id

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle


async def generations(tenant_id: str) -> list[GenerationInfo]:
    """Every generation of the tenant's index (a plain read: no Temporal, no SQLAlchemy)."""
    async with raw_tenant_connection(tenant_id) as raw:
        return await list_generations(raw)


async def switch_model(
    client: Client,
    tenant_id: str,
    spec: EmbeddingSpec,
    *,
    retire_after_seconds: int = 60,
    page_size: int = 1000,
) -> WorkflowHandle[Any, SwapResult]:
    """Start re-embedding into a new generation; search switches when it is complete.

    Refused at once (nothing started) when the live generation already uses ``spec`` or
    a swap is running.
    """
    from temporalio.common import (
        SearchAttributePair,
        TypedSearchAttributes,
        WorkflowIDConflictPolicy,
    )
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from sluice.temporal import search

    async with raw_tenant_connection(tenant_id) as raw:
        live = await live_generation(raw)
    if live.spec.name == spec.name:
        raise SameModel(f"the live index generation {live.id} already uses {spec.name}")
    with tenant_scope(tenant_id):
        try:
            return await client.start_workflow(
                MODEL_SWAP,
                ModelSwapInput(
                    tenant_id=tenant_id,
                    spec=spec,
                    retire_after_seconds=retire_after_seconds,
                    page_size=page_size,
                ),
                id=model_swap_workflow_id(tenant_id),
                task_queue=TaskQueue.PRIMARY.value,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                result_type=SwapResult,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(search.TENANT, tenant_id)]
                ),
                static_summary=f"switch embedding model: {live.spec.name} -> {spec.name}",
                static_details=f"tenant {tenant_id}; search stays on generation {live.id} "
                "until the new one is complete",
            )
        except WorkflowAlreadyStartedError:
            raise SwapInProgress(
                f"a model swap is already running for tenant {tenant_id!r} "
                "(`sluice index generations` shows it; `--cancel` stops it)"
            ) from None


def _handle(client: Client, tenant_id: str) -> WorkflowHandle[Any, SwapResult]:
    return client.get_workflow_handle(model_swap_workflow_id(tenant_id), result_type=SwapResult)


async def running_swap(client: Client, tenant_id: str) -> SwapProgress | None:
    """The running swap's progress, or None when no swap is running."""
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError, RPCStatusCode

    handle = _handle(client, tenant_id)
    with tenant_scope(tenant_id):
        try:
            described = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        if described.status != WorkflowExecutionStatus.RUNNING:
            return None
        result: SwapProgress = await handle.query(
            "progress", result_type=SwapProgress, rpc_timeout=timedelta(seconds=10)
        )
        return result


async def cancel_swap(client: Client, tenant_id: str) -> None:
    """Cancel the running swap: its building generation is dropped, live is untouched."""
    if await running_swap(client, tenant_id) is None:
        raise NotFoundError(f"no model swap is running for tenant {tenant_id!r}")
    with tenant_scope(tenant_id):
        await _handle(client, tenant_id).cancel()


async def wait_for_swap(client: Client, tenant_id: str, *, timeout: float = 3600) -> SwapResult:
    """The swap's result (raises the workflow's failure, or a timeout)."""
    with tenant_scope(tenant_id):
        return await asyncio.wait_for(_handle(client, tenant_id).result(), timeout)
