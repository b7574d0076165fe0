"""Pruning (queue ``connector_pruning``): what vanished at the source leaves the index.

One activity: list the source's IDs (heartbeating as they come), find what the cc-pair
holds that was not listed, unlink it in batches (deleting documents no other pair
holds). It runs only between the connector's attempts (the connector workflow starts
it), so it never races indexing of the same pair. Idempotent: a retry lists again.
"""

from __future__ import annotations

import structlog
from temporalio import activity

from sluice.ccpairs import load_connector_settings
from sluice.connectors.base import ConnectorContext
from sluice.connectors.registry import build_connector
from sluice.db.session import tenant_connection
from sluice.indexing.deletion import unlink_documents
from sluice.indexing.models import PruneInput, PruneResult
from sluice.indexing.pruning import linked_count, mark_pruned, vanished_documents
from sluice.temporal.tenant_context import current_tenant

log = structlog.get_logger(__name__)

LISTING_BEAT_EVERY = 1000


@activity.defn(name="prune_connector")
async def prune_connector(request: PruneInput) -> PruneResult:
    tenant = current_tenant()
    source, config, _secret = await load_connector_settings(tenant, request.cc_pair_id)
    listed_so_far = [0]
    context = ConnectorContext(
        tenant,
        request.cc_pair_id,
        activity.info().attempt,
        keepalive=lambda: activity.heartbeat("listing", listed_so_far[0]),
    )
    connector = build_connector(source, config, context)
    connector.validate_source()
    listed: set[str] = set()
    async for doc_id in connector.list_ids():
        listed.add(doc_id)
        listed_so_far[0] = len(listed)
        if len(listed) % LISTING_BEAT_EVERY == 0:
            activity.heartbeat("listing", len(listed))
    async with tenant_connection(tenant) as (_, raw):
        held = await linked_count(raw, request.cc_pair_id)
        vanished = await vanished_documents(raw, request.cc_pair_id, listed)
    result = PruneResult(listed=len(listed), held=held, vanished=len(vanished))
    if not listed and held:
        result.refused = (
            f"the source listed no documents while the connector holds {held}: "
            "not pruning (is the folder mounted, the site up?)"
        )
        log.warning("pruning refused", reason=result.refused)
        return result
    for start in range(0, len(vanished), request.batch_size):
        async with tenant_connection(tenant) as (_, raw):
            batch = await unlink_documents(
                raw, request.cc_pair_id, vanished[start : start + request.batch_size]
            )
        result.unlinked += batch.links
        result.deleted += batch.documents
        activity.heartbeat("unlinking", result.unlinked)
    async with tenant_connection(tenant) as (_, raw):
        await mark_pruned(raw, request.cc_pair_id)
    log.info("connector pruned", **result.model_dump())
    return result
