"""Connector deletion (queue ``connector_deletion``): documents in batches, then rows.

The seed's ``check_for_connector_deletion`` and its deletion tasks, as two idempotent
activities the deletion workflow runs after the connector workflow has stopped.
"""

from __future__ import annotations

import structlog
from temporalio import activity

from sluice.db.session import tenant_connection
from sluice.indexing import deletion
from sluice.indexing.models import DeletionInput, DeletionResult
from sluice.temporal.tenant_context import current_tenant

log = structlog.get_logger(__name__)


@activity.defn(name="mark_cc_pair_deleting")
async def mark_cc_pair_deleting(cc_pair_id: int) -> bool:
    async with tenant_connection(current_tenant()) as (_, raw):
        return await deletion.mark_deleting(raw, cc_pair_id)


@activity.defn(name="delete_connector_documents")
async def delete_connector_documents(request: DeletionInput) -> DeletionResult:
    """Batch after batch, each its own short transaction, heartbeating the running total
    (a retry simply carries on: what is deleted stays deleted)."""
    tenant = current_tenant()
    result = DeletionResult()
    while True:
        async with tenant_connection(tenant) as (_, raw):
            batch = await deletion.delete_documents_batch(
                raw, request.cc_pair_id, request.batch_size
            )
        if batch.links == 0:
            break
        result.links_removed += batch.links
        result.documents_deleted += batch.documents
        activity.heartbeat(result.model_dump())
    log.info("connector documents deleted", cc_pair_id=request.cc_pair_id, **result.model_dump())
    return result


@activity.defn(name="delete_connector_rows")
async def delete_connector_rows(cc_pair_id: int) -> bool:
    async with tenant_connection(current_tenant()) as (_, raw):
        deleted = await deletion.delete_pair_rows(raw, cc_pair_id)
    log.info("connector rows deleted", cc_pair_id=cc_pair_id, existed=deleted)
    return deleted
