"""What is running for a tenant, read from the server's visibility store.

The reconcile sweeps compare it with what the database says should run and start the
difference; both ask the same question of a different workflow type.
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.common import SearchAttributeValueType as T

from sluice.temporal import search
from sluice.temporal.tenant_context import tenant_scope


async def running_values(
    client: Client, tenant_id: str, workflow_type: str, key: SearchAttributeKey[T]
) -> set[T]:
    """``key``'s value on each running ``workflow_type`` workflow of the tenant."""
    query = (
        f"WorkflowType = '{workflow_type}' AND ExecutionStatus = 'Running' "
        f"AND {search.TENANT.name} = '{tenant_id}'"
    )
    found: set[T] = set()
    with tenant_scope(tenant_id):
        async for wf in client.list_workflows(query):
            value = wf.typed_search_attributes.get(key)
            if value is not None:
                found.add(value)
    return found
