"""Permission sync activities: groups, ACLs collected, ACLs written in batches.

* ``sync_external_groups`` (queue ``connector_external_group_sync``): the source's groups
  and members replace the pair's stored ones in one transaction.
* ``collect_doc_permissions`` (``connector_doc_permissions_sync``, heavy): list every
  document's ACL (heartbeating as they come), stage those that differ from the index.
* ``upsert_doc_permissions`` (``doc_permissions_upsert``, light): write one batch of
  staged ACLs to their documents (only real changes get a metadata-version bump).

They run only between the connector's attempts (its workflow starts the permission-sync
child), so they never race indexing or pruning of the same pair. Each is idempotent: a
retry lists, replaces or takes again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from temporalio import activity

from sluice.ccpairs import load_connector_settings
from sluice.connectors.base import Connector, ConnectorContext
from sluice.connectors.registry import build_connector
from sluice.db.session import tenant_connection
from sluice.indexing.models import (
    GroupSyncResult,
    PermissionCollectResult,
    PermissionSyncInput,
    PermissionUpsertResult,
)
from sluice.indexing.permissions import (
    apply_staged_batch,
    mark_permissions_synced,
    replace_groups,
    stage_changed_acls,
)
from sluice.temporal.tenant_context import current_tenant

log = structlog.get_logger(__name__)

LISTING_BEAT_EVERY = 1000


async def _connector(tenant: str, cc_pair_id: int, progress: list[int]) -> Connector[Any]:
    """The pair's connector, checked usable; ``progress[0]`` is what its keepalive reports."""
    source, config, _secret = await load_connector_settings(tenant, cc_pair_id)
    context = ConnectorContext(
        tenant,
        cc_pair_id,
        activity.info().attempt,
        keepalive=lambda: activity.heartbeat("listing", progress[0]),
    )
    connector = build_connector(source, config, context)
    connector.validate_source()
    return connector


@activity.defn(name="sync_external_groups")
async def sync_external_groups(request: PermissionSyncInput) -> GroupSyncResult:
    """Store the source's groups as they are now (a source without groups: nothing)."""
    tenant = current_tenant()
    connector = await _connector(tenant, request.cc_pair_id, [0])
    groups = await asyncio.to_thread(connector.list_groups)
    if groups is None:
        return GroupSyncResult()
    async with tenant_connection(tenant) as (_, raw):
        count, members = await replace_groups(raw, request.cc_pair_id, groups)
    log.info("external groups synced", groups=count, memberships=members)
    return GroupSyncResult(synced=True, groups=count, memberships=members)


@activity.defn(name="collect_doc_permissions")
async def collect_doc_permissions(request: PermissionSyncInput) -> PermissionCollectResult:
    """List every document's ACL at the source; stage the ones that changed."""
    tenant = current_tenant()
    progress = [0]
    connector = await _connector(tenant, request.cc_pair_id, progress)
    listed: list[tuple[str, list[str]]] = []
    async for doc_id, acl in connector.list_permissions():
        listed.append((doc_id, acl))
        progress[0] = len(listed)
        if len(listed) % LISTING_BEAT_EVERY == 0:
            activity.heartbeat("listing", len(listed))
    activity.heartbeat("comparing", len(listed))
    async with tenant_connection(tenant) as (_, raw):
        held, changed = await stage_changed_acls(raw, request.cc_pair_id, listed)
        # Stamped as the sync starts writing: the check does not ask again meanwhile.
        await mark_permissions_synced(raw, request.cc_pair_id)
    result = PermissionCollectResult(listed=len(listed), held=held, changed=changed)
    log.info("permissions collected", **result.model_dump())
    return result


@activity.defn(name="upsert_doc_permissions")
async def upsert_doc_permissions(request: PermissionSyncInput) -> PermissionUpsertResult:
    """Write one batch of staged ACLs (a transaction); ``taken == 0``: none is left."""
    async with tenant_connection(current_tenant()) as (_, raw):
        taken, written = await apply_staged_batch(raw, request.cc_pair_id, request.batch_size)
    return PermissionUpsertResult(taken=taken, written=written)
