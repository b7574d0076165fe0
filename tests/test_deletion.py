"""Connector deletion as a workflow: the connector stops cleanly, then everything of the
pair goes (shared documents only lose their link). No terminate, no deadlock, no debris.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from sluice import connector_ops
from sluice.ccpairs import list_cc_pairs
from sluice.errors import ConfigurationError, NotFoundError
from sluice.indexing.models import RunState
from sluice.temporal.workflow_ids import connector_workflow_id, deletion_workflow_id
from tests.support import FAST, eventually, fetchval, only_line, running_workers
from tests.test_cli import sluice
from tests.test_worker_crash import worker_process


async def rows_left(tenant: str, cc: int) -> dict[str, int]:
    """Every row that still belongs to cc-pair ``cc``."""
    left = {
        "links": await fetchval(
            tenant,
            "SELECT count(*) FROM document_by_connector_credential_pair WHERE cc_pair_id = $1",
            cc,
        ),
        "staged": await fetchval(
            tenant, "SELECT count(*) FROM staged_batch WHERE cc_pair_id = $1", cc
        ),
        "attempts": await fetchval(
            tenant, "SELECT count(*) FROM index_attempt WHERE cc_pair_id = $1", cc
        ),
        "errors": await fetchval(
            tenant, "SELECT count(*) FROM index_attempt_error WHERE cc_pair_id = $1", cc
        ),
        "pair": await fetchval(
            tenant, "SELECT count(*) FROM connector_credential_pair WHERE id = $1", cc
        ),
    }
    return {name: int(n) for name, n in left.items() if n}


async def add_synthetic(client: Client, tenant: str, name: str, **config: object) -> int:
    pair = await connector_ops.add_connector(
        client,
        tenant,
        name=name,
        source="synthetic",
        config={"size_bytes": 500, **config},
        tuning=FAST,
    )
    return pair.id


async def workflow_status(client: Client, workflow_id: str) -> WorkflowExecutionStatus | None:
    return (await client.get_workflow_handle(workflow_id).describe()).status


@pytest.mark.faults
async def test_delete_during_a_run_stops_it_cleanly_and_leaves_nothing(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, "doomed", count=3000, delay_ms=2, fail_every=50)
        await eventually(lambda: _indexed_at_least(tenant, 200), timeout=60)
        in_flight = (await connector_ops.progress(client, tenant, cc)).batches_in_flight
        deletion = asyncio.create_task(connector_ops.delete_connector(client, tenant, cc))
        # The product shows it at once.
        await eventually(lambda: _status_is(tenant, cc, "deleting"), timeout=10)
        result = await deletion
    assert result is not None and result.pair_deleted
    assert result.documents_deleted == result.links_removed > 200
    assert await rows_left(tenant, cc) == {}
    assert await fetchval(tenant, "SELECT count(*) FROM document") == 0
    assert await fetchval(tenant, "SELECT count(*) FROM chunk") == 0
    # The connector workflow completed (stopped by request, not terminated).
    wid = connector_workflow_id(tenant, cc)
    assert await workflow_status(client, wid) == WorkflowExecutionStatus.COMPLETED
    assert await workflow_status(client, deletion_workflow_id(tenant, cc)) == (
        WorkflowExecutionStatus.COMPLETED
    )
    print(f"deleted during a run with {in_flight} batches in flight: {result}")


async def test_delete_twice_and_an_unknown_pair(dev_env: WorkflowEnvironment, tenant: str) -> None:
    client = dev_env.client
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, "twice", count=300)
        await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=60)
        first, second = await asyncio.gather(
            connector_ops.delete_connector(client, tenant, cc),
            connector_ops.delete_connector(client, tenant, cc),
        )
        assert first is not None and second is not None
        assert await rows_left(tenant, cc) == {}
        with pytest.raises(NotFoundError, match="does not exist"):
            await connector_ops.delete_connector(client, tenant, cc)
        with pytest.raises(NotFoundError):
            await connector_ops.index_now(client, tenant, cc)


async def test_a_shared_document_keeps_its_rows_and_loses_only_the_link(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path
) -> None:
    client = dev_env.client
    for n in range(30):
        (tmp_path / f"note{n}.md").write_text(f"# Note {n}\n\nShared text number {n}.\n")
    async with running_workers(client):
        pairs = []
        for name in ("one", "two"):
            pair = await connector_ops.add_connector(
                client,
                tenant,
                name=name,
                source="filesystem",
                config={"path": str(tmp_path)},
                tuning=FAST,
            )
            await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=60)
            pairs.append(pair.id)
        chunks_before = await fetchval(tenant, "SELECT count(*) FROM chunk")
        result = await connector_ops.delete_connector(client, tenant, pairs[0])
    assert result is not None and result.links_removed == 30 and result.documents_deleted == 0
    assert await fetchval(tenant, "SELECT count(*) FROM document") == 30
    assert await fetchval(tenant, "SELECT count(*) FROM chunk") == chunks_before
    assert await rows_left(tenant, pairs[0]) == {}
    assert (await rows_left(tenant, pairs[1]))["links"] == 30
    assert [p.id for p in await list_cc_pairs(tenant)] == [pairs[1]]


async def test_a_worker_killed_during_deletion_leaves_it_to_finish_elsewhere(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path
) -> None:
    client = dev_env.client
    count = 2000
    with worker_process(dev_env, tmp_path / "first.log") as first:
        cc = await add_synthetic(client, tenant, "killed", count=count, size_bytes=300)
        await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=180)
        await connector_ops.delete_connector(client, tenant, cc, wait=False)
        # Kill the worker as soon as deletion has begun (documents start to disappear).
        await eventually(lambda: _documents_below(tenant, count), timeout=60, interval=0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    remaining = await fetchval(tenant, "SELECT count(*) FROM document")
    with worker_process(dev_env, tmp_path / "second.log"):
        result = await connector_ops.wait_for_deletion(client, tenant, cc, timeout=120)
    print(f"killed with {remaining} of {count} documents left; finished: {result}")
    assert result.pair_deleted
    assert await rows_left(tenant, cc) == {}
    assert await fetchval(tenant, "SELECT count(*) FROM document") == 0


async def test_a_deleting_pair_cannot_be_indexed(dev_env: WorkflowEnvironment, tenant: str) -> None:
    client = dev_env.client
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, "paused", count=20)
        await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=60)
        await connector_ops.send(client, tenant, cc, "pause")
        await eventually(lambda: _state(client, tenant, cc, RunState.PAUSED), timeout=30)
        await connector_ops.delete_connector(client, tenant, cc, wait=False)
        with pytest.raises((ConfigurationError, NotFoundError)):
            await connector_ops.index_now(client, tenant, cc)
        await connector_ops.wait_for_deletion(client, tenant, cc, timeout=60)
    assert await rows_left(tenant, cc) == {}


async def _indexed_at_least(tenant: str, docs: int) -> bool:
    return bool(await fetchval(tenant, "SELECT count(*) FROM document") >= docs)


async def _documents_below(tenant: str, docs: int) -> bool:
    return bool(await fetchval(tenant, "SELECT count(*) FROM document") < docs)


async def _status_is(tenant: str, cc: int, status: str) -> bool:
    found = await fetchval(tenant, "SELECT status FROM connector_credential_pair WHERE id = $1", cc)
    return bool(found == status)


async def _state(client: Client, tenant: str, cc: int, state: RunState) -> bool:
    try:
        return (await connector_ops.progress(client, tenant, cc)).state == state
    except Exception:
        return False


async def test_sluice_connector_delete_during_a_run_from_the_command_line(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, "cli-doomed", count=2000, delay_ms=2)
        await eventually(lambda: _indexed_at_least(tenant, 100), timeout=60)
        done = await sluice(dev_env, tenant, "connector", "delete", str(cc), "-y")
        again = await sluice(dev_env, tenant, "connector", "delete", str(cc), "-y")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert f"deleted cc-pair {cc} (" in done.stdout
    assert await rows_left(tenant, cc) == {}
    assert again.returncode == 2
    assert f"cc-pair {cc}" in only_line(again.stderr)
