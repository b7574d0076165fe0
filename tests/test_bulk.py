"""Bulk operations: one workflow signals every selected connector, once."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from sluice import connector_ops
from sluice.bulk import BulkOperation, BulkSelector
from sluice.errors import ConfigurationError
from sluice.indexing.models import RunState
from tests.support import FAST, eventually, fetchval, only_line, running_workers
from tests.test_cli import sluice


async def test_bulk_index_now_over_fifty_connectors_runs_each_once(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    async with running_workers(client):
        ids = []
        for n in range(50):
            pair = await connector_ops.add_connector(
                client,
                tenant,
                name=f"c{n}",
                source="synthetic",
                config={"count": 3, "size_bytes": 200, "seed": n},
                tuning=FAST,
            )
            ids.append(pair.id)
        await asyncio.gather(
            *(connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=180) for cc in ids)
        )
        result = await connector_ops.bulk(
            client, tenant, BulkOperation.INDEX_NOW, BulkSelector(all=True)
        )
        assert sorted(result.signalled) == ids and result.not_running == []
        finals = await asyncio.gather(
            *(connector_ops.wait_for_attempts(client, tenant, cc, 2, timeout=180) for cc in ids)
        )
    assert {p.attempts_started for p in finals} == {2}
    assert await fetchval(tenant, "SELECT count(*) FROM index_attempt") == 100


async def test_bulk_pause_by_source_and_resume_by_status(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: object
) -> None:
    client = dev_env.client
    async with running_workers(client):
        syn = []
        for n in range(3):
            pair = await connector_ops.add_connector(
                client, tenant, name=f"s{n}", source="synthetic", config={"count": 2, "seed": n}
            )
            syn.append(pair.id)
        for cc in syn:
            await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=60)
        paused = await connector_ops.bulk(
            client, tenant, BulkOperation.PAUSE, BulkSelector(source="synthetic")
        )
        assert sorted(paused.signalled) == syn
        for cc in syn:
            await _until_state(client, tenant, cc, RunState.PAUSED)
        resumed = await connector_ops.bulk(
            client, tenant, BulkOperation.RESUME, BulkSelector(status="paused")
        )
        assert sorted(resumed.signalled) == syn
        for cc in syn:
            await _until_state(client, tenant, cc, RunState.IDLE)
        with pytest.raises(ConfigurationError, match="--status 'sleepy'"):
            await connector_ops.bulk(
                client, tenant, BulkOperation.PAUSE, BulkSelector(status="sleepy")
            )
        with pytest.raises(ConfigurationError, match="--all"):
            await connector_ops.bulk(client, tenant, BulkOperation.PAUSE, BulkSelector())


async def _until_state(client: Client, tenant: str, cc: int, state: RunState) -> None:
    async def reached() -> bool:
        return await _state(client, tenant, cc, state)

    await eventually(reached, timeout=30)


async def _state(client: Client, tenant: str, cc: int, state: RunState) -> bool:
    try:
        return (await connector_ops.progress(client, tenant, cc)).state == state
    except Exception:
        return False


async def test_bulk_from_the_command_line(dev_env: WorkflowEnvironment, tenant: str) -> None:
    client = dev_env.client
    async with running_workers(client):
        ids = []
        for n in range(3):
            pair = await connector_ops.add_connector(
                client, tenant, name=f"cli{n}", source="synthetic", config={"count": 2, "seed": n}
            )
            ids.append(pair.id)
        for cc in ids:
            await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=60)
        done = await sluice(dev_env, tenant, "connector", "pause", "--source", "synthetic")
        assert done.returncode == 0, done.stderr
        assert "pause sent to 3 of 3 connectors" in done.stdout
        for cc in ids:
            await _until_state(client, tenant, cc, RunState.PAUSED)
        for args, expected in [
            ([], "give a cc-pair ID"),
            (["1", "--all"], "not both"),
            (["--status", "sleepy"], "--status 'sleepy'"),
        ]:
            bad = await sluice(dev_env, tenant, "connector", "resume", *args)
            assert bad.returncode == 2, (args, bad.stderr)
            assert expected in only_line(bad.stderr)
