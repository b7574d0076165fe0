"""Bulk operations: pick the connectors a selector names (queue ``connector_doc_fetching``,
beside the other short reads and writes of connector rows)."""

from __future__ import annotations

from temporalio import activity

from sluice.bulk import BulkSelector, select_cc_pairs
from sluice.db.session import tenant_connection
from sluice.temporal.tenant_context import current_tenant


@activity.defn(name="select_connectors")
async def select_connectors(selector: BulkSelector) -> list[int]:
    async with tenant_connection(current_tenant()) as (_, raw):
        return await select_cc_pairs(raw, selector)
