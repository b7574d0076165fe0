"""A finished test leaves nothing running on the shared servers (see tests/leftovers.py),
and every workflow Sluice starts is found by its tenant's search attribute."""

from __future__ import annotations

import uuid

import pytest
from temporalio.testing import WorkflowEnvironment

from sluice import connector_ops
from sluice.db.migrate import list_tenants
from sluice.exports import ops as export_ops
from sluice.exports.models import ExportKind, ExportRequest
from sluice.temporal import search
from tests.leftovers import retire
from tests.support import eventually


async def _running(env: WorkflowEnvironment, tenant: str) -> list[str]:
    query = f"{search.TENANT.name} = '{tenant}' AND ExecutionStatus = 'Running'"
    return sorted([wf.id async for wf in env.client.list_workflows(query)])


async def test_every_started_workflow_carries_its_tenant_and_retire_stops_them(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    # No worker runs: both workflows stay running until someone stops them.
    pair = await connector_ops.add_connector(
        dev_env.client, tenant, name="idle", source="synthetic", config={"count": 1}
    )
    request = ExportRequest(tenant_id=tenant, export_id="e1", kind=ExportKind.ATTEMPTS)
    await export_ops.start(dev_env.client, request)  # sets no search attribute itself

    async def both_listed() -> bool:
        return len(await _running(dev_env, tenant)) == 2

    await eventually(both_listed, timeout=10)
    assert any(f"/{tenant}/{pair.id}" in wid for wid in await _running(dev_env, tenant))

    await retire(tenant)

    async def none_left() -> bool:
        return not await _running(dev_env, tenant)

    await eventually(none_left, timeout=10)
    assert tenant not in await list_tenants()


_migrated_by_hand: list[str] = []


async def test_a_tenant_migrated_by_the_test_itself_is_retired_too_part_1(
    dev_env: WorkflowEnvironment,
) -> None:
    """Part 1 of 2: migrate a tenant outside the ``tenant`` fixture, with a connector."""
    from sluice.db.migrate import migrate_tenant

    tenant = "t_" + uuid.uuid4().hex[:10]
    await migrate_tenant(tenant)
    await connector_ops.add_connector(
        dev_env.client, tenant, name="stray", source="synthetic", config={"count": 1}
    )
    _migrated_by_hand.append(tenant)

    async def listed() -> bool:
        return bool(await _running(dev_env, tenant))

    await eventually(listed, timeout=10)


async def test_a_tenant_migrated_by_the_test_itself_is_retired_too_part_2(
    dev_env: WorkflowEnvironment,
) -> None:
    """Part 2: after part 1 ended, its tenant is gone and its connector stopped."""
    if not _migrated_by_hand:
        pytest.skip("runs after part 1")
    tenant = _migrated_by_hand[0]
    assert tenant not in await list_tenants()

    async def none_left() -> bool:
        return not await _running(dev_env, tenant)

    await eventually(none_left, timeout=10)
