"""Register Sluice's search attributes on a Temporal server that was not started by us."""

from __future__ import annotations

from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from sluice.config import Settings
from sluice.temporal import search
from sluice.temporal.client import connect


async def ensure_search_attributes(client: Client) -> list[str]:
    """Add the attributes the namespace lacks; returns the names added."""
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        known = set(existing.custom_attributes)
    except RPCError as err:  # the time-skipping test server cannot list, only add
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        known = set()
    missing = {key.name: int(key.indexed_value_type) for key in search.ALL if key.name not in known}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes=missing,  # type: ignore[arg-type]
            )
        )
    return list(missing)


async def register_search_attributes(settings: Settings) -> list[str]:
    return await ensure_search_attributes(await connect(settings))
