"""Client-side metadata operations: change a document or a document set, sync at once.

Each change is written (and marks documents stale) in one transaction, then a metadata
sync starts right away rather than waiting for the ``metadata-sync`` schedule, which
stays as the safety net for a sync that could not be started (Temporal unreachable).
"""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from schedules.models import SweepInput
from sluice.db.session import tenant_connection
from sluice.indexing import document_sets
from sluice.indexing.document_sets import DocumentSetInfo
from sluice.indexing.metadata import DocumentMetadata, get_metadata, set_metadata, stale_count
from sluice.queues import TaskQueue
from sluice.temporal.tenant_context import tenant_scope
from sluice.temporal.workflow_ids import SWEEP

JOB = "metadata-sync"


async def start_sync(client: Client, tenant_id: str) -> None:
    """Start the tenant's metadata sync now (a running one is joined, not doubled)."""
    with tenant_scope(tenant_id):
        await client.start_workflow(
            SWEEP,
            SweepInput(tenant_id=tenant_id, job=JOB),
            id=f"{tenant_id}/{JOB}/now",
            task_queue=TaskQueue.PRIMARY.value,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary="metadata sync started by a change",
        )


async def sync_now(client: Client, tenant_id: str, rounds: int = 5) -> int:
    """Sync and wait until no document is stale; returns how many were synced.

    Starting joins a sync that is already running, which may have looked for stale
    documents just before this caller's change committed: then it ends without it, and
    another round starts (bounded: a tenant changed without pause is left to the sweep).
    """
    from schedules.models import SweepResult

    synced = 0
    handle = client.get_workflow_handle(f"{tenant_id}/{JOB}/now", result_type=SweepResult)
    for _ in range(rounds):
        await start_sync(client, tenant_id)
        with tenant_scope(tenant_id):
            synced += (await handle.result()).acted
        async with tenant_connection(tenant_id) as (_, raw):
            if await stale_count(raw) == 0:
                break
    return synced


async def document(tenant_id: str, document_id: str) -> DocumentMetadata:
    async with tenant_connection(tenant_id) as (_, raw):
        return await get_metadata(raw, document_id)


async def set_document(
    client: Client,
    tenant_id: str,
    document_id: str,
    *,
    hidden: bool | None = None,
    boost: float | None = None,
    acl: Sequence[str] | None = None,
) -> DocumentMetadata:
    async with tenant_connection(tenant_id) as (_, raw):
        changed = await set_metadata(raw, document_id, hidden=hidden, boost=boost, acl=acl)
    await start_sync(client, tenant_id)
    return changed


async def create_set(tenant_id: str, name: str, description: str | None = None) -> bool:
    async with tenant_connection(tenant_id) as (_, raw):
        return await document_sets.create_set(raw, name, description)


async def delete_set(client: Client, tenant_id: str, name: str) -> int:
    async with tenant_connection(tenant_id) as (_, raw):
        stale = await document_sets.delete_set(raw, name)
    await start_sync(client, tenant_id)
    return stale


async def add_to_set(client: Client, tenant_id: str, name: str, cc_pair_id: int) -> int:
    async with tenant_connection(tenant_id) as (_, raw):
        stale = await document_sets.add_pair(raw, name, cc_pair_id)
    await start_sync(client, tenant_id)
    return stale


async def remove_from_set(client: Client, tenant_id: str, name: str, cc_pair_id: int) -> int:
    async with tenant_connection(tenant_id) as (_, raw):
        stale = await document_sets.remove_pair(raw, name, cc_pair_id)
    await start_sync(client, tenant_id)
    return stale


async def list_sets(tenant_id: str) -> list[DocumentSetInfo]:
    async with tenant_connection(tenant_id) as (_, raw):
        return await document_sets.list_sets(raw)
