"""Register Sluice's search attributes on a Temporal server that was not started by us."""

from __future__ import annotations

from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)

from sluice.config import Settings
from sluice.temporal import search
from sluice.temporal.client import connect


async def register_search_attributes(settings: Settings) -> list[str]:
    """Add the attributes that are missing; returns the names added."""
    client = await connect(settings)
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    missing = {
        key.name: key.indexed_value_type
        for key in search.ALL
        if key.name not in existing.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={k: int(v) for k, v in missing.items()},  # type: ignore[misc]
            )
        )
    return list(missing)
