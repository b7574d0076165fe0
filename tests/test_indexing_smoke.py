"""End to end on the dev server: a synthetic connector indexes, search finds it."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from sluice import connector_ops
from tests.support import FAST, fetchval, running_workers


async def test_synthetic_connector_indexes_every_document(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    async with running_workers(client):
        pair = await connector_ops.add_connector(
            client,
            tenant,
            name="syn",
            source="synthetic",
            config={"count": 57, "size_bytes": 1500, "seed": 3},
            tuning=FAST,
        )
        final = await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=60)
    assert final.last_attempt_status == "success"
    assert await fetchval(tenant, "SELECT count(*) FROM document") == 57
    assert await fetchval(tenant, "SELECT count(*) FROM staged_batch") == 0
    status = await fetchval(tenant, "SELECT status FROM index_attempt")
    assert status == "success"
