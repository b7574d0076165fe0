"""Beat's failure modes, gone: schedules live in the Temporal server (here a private dev
server persisting to a file), so they survive its restart and keep firing; a schedule
whose workflow fails keeps firing too. Nothing in Sluice plays Beat's one-process role.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from schedules.sync import schedule_id, sync_tenant
from sluice.config import get_settings
from sluice.devstack import free_port, start_temporal
from tests.support import connect_when_ready, eventually, running_workers

FAST = {"connector-reconcile": 1}


async def actions(client: Client, sid: str) -> int:
    return (await client.get_schedule_handle(sid).describe()).info.num_actions


@pytest.mark.faults
async def test_schedules_survive_a_server_restart_and_keep_firing(
    tenant: str, tmp_path: Path
) -> None:
    port = free_port()
    settings = get_settings().model_copy(
        update={"temporal_address": f"127.0.0.1:{port}", "schedule_intervals": FAST}
    )
    ghost = "ghost_" + uuid.uuid4().hex[:8]  # no schema: its sweeps fail, every time
    server, _ = start_temporal(tmp_path, port, None)
    try:
        client = await connect_when_ready(settings)
        await sync_tenant(client, tenant, settings)
        await sync_tenant(client, ghost, settings)
        server.stop()  # the whole server goes away, as Beat's host would

        server, _ = start_temporal(tmp_path, port, None)  # same file: same state
        client = await connect_when_ready(settings)
        assert not (await sync_tenant(client, tenant, settings)).changed
        reconcile = schedule_id(tenant, "connector-reconcile")
        failing = schedule_id(ghost, "connector-reconcile")
        before = await actions(client, reconcile)
        async with running_workers(client):

            async def fired_again() -> bool:
                return await actions(client, reconcile) >= before + 2

            await eventually(fired_again, timeout=60, interval=0.5)

            async def fired_after_a_failure() -> bool:
                runs = [
                    w async for w in client.list_workflows(f"WorkflowId STARTS_WITH '{failing}'")
                ]
                failed = [w for w in runs if w.status is not None and w.status.name == "FAILED"]
                closed = failed[0].close_time if failed else None
                return closed is not None and any(w.start_time > closed for w in runs)

            await eventually(fired_after_a_failure, timeout=90, interval=1)
        described = await client.get_schedule_handle(failing).describe()
        assert not described.schedule.state.paused, "a failing sweep never pauses its schedule"
    finally:
        server.stop()
        await asyncio.sleep(0)


@pytest.mark.faults
async def test_a_killed_dev_server_keeps_what_it_committed(tenant: str, tmp_path: Path) -> None:
    """The dev server's SQLite file is in write-ahead-log mode (DEV_SERVER_SQLITE_PRAGMAS):
    SIGKILL, no shutdown at all, and the schedules it acknowledged are there after the
    restart."""
    port = free_port()
    settings = get_settings().model_copy(update={"temporal_address": f"127.0.0.1:{port}"})
    server, _ = start_temporal(tmp_path, port, None)
    try:
        with sqlite3.connect(tmp_path / "temporal" / "temporal.db") as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        client = await connect_when_ready(settings)
        created = (await sync_tenant(client, tenant, settings)).created
        assert created
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(5)

        server, _ = start_temporal(tmp_path, port, None)
        client = await connect_when_ready(settings)
        for name in created:
            # describe() raises if the schedule was lost with the killed process
            await client.get_schedule_handle(schedule_id(tenant, name)).describe()
    finally:
        server.stop()
