"""Tenants as a whole: add (schema, tables, schedules) and remove (all of it).

Adding is idempotent: the migration and the schedule sync both are. Removing stops the
tenant's workflows and schedules first, then drops its schema, so nothing keeps
writing into a schema that is going away.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from temporalio.client import Client

from schedules.sync import SyncReport, delete_tenant_schedules, sync_tenant
from sluice.config import Settings
from sluice.db.engine import get_engine
from sluice.db.migrate import list_tenants, migrate_tenant
from sluice.errors import NotFoundError
from sluice.temporal import search
from sluice.tenancy import quoted_schema, validate_tenant_id


async def add_tenant(client: Client, tenant_id: str, settings: Settings) -> SyncReport:
    tenant_id = validate_tenant_id(tenant_id)
    await migrate_tenant(tenant_id)
    return await sync_tenant(client, tenant_id, settings)


@dataclass
class RemovedTenant:
    tenant_id: str
    schedules: int
    workflows: int


async def remove_tenant(client: Client, tenant_id: str) -> RemovedTenant:
    tenant_id = validate_tenant_id(tenant_id)
    if tenant_id not in await list_tenants():
        raise NotFoundError(f"tenant {tenant_id!r} does not exist")
    schedules = await delete_tenant_schedules(client, tenant_id)
    stopped = 0
    query = f"{search.TENANT.name} = '{tenant_id}' AND ExecutionStatus = 'Running'"
    async for wf in client.list_workflows(query):
        # Its data is about to be dropped: nothing is left to clean up gracefully.
        await client.get_workflow_handle(wf.id, run_id=wf.run_id).terminate(
            reason=f"tenant {tenant_id} removed"
        )
        stopped += 1
    async with get_engine().begin() as conn:
        await conn.execute(text(f"DROP SCHEMA {quoted_schema(tenant_id)} CASCADE"))
    return RemovedTenant(tenant_id, len(schedules), stopped)
