"""Temporal Schedules replace Beat: per-tenant sync, the reconcile sweep, cleanups.

Sync and the sweeps run against the dev server (the time-skipping server has no
Schedules); the retention cleanups run on the time-skipping server, which passes a
month of workflow time in a second.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from schedules.models import SweepInput, SweepResult
from schedules.status import schedule_rows
from schedules.sync import schedule_id, sync_tenant, tenant_schedule_ids
from schedules.table import JOBS
from sluice import connector_ops
from sluice.config import get_settings
from sluice.db.migrate import list_tenants, migrate_tenant
from sluice.queues import TaskQueue
from sluice.temporal.workflow_ids import connector_workflow_id
from sluice.tenant_ops import add_tenant, remove_tenant
from tests.support import FAST, eventually, fetch, fetchval, running_workers, skip_time
from workflows.sweep import SweepWorkflow

ENABLED = sorted(job.name for job in JOBS if job.enabled)


async def run_sweep(client: Client, tenant: str, job: str) -> SweepResult:
    return await client.execute_workflow(
        SweepWorkflow.run,
        SweepInput(tenant_id=tenant, job=job),
        id=f"test-sweep/{tenant}/{job}/{uuid.uuid4().hex[:6]}",
        task_queue=TaskQueue.PRIMARY.value,
    )


async def test_sync_creates_updates_deletes_and_keeps_a_pause(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    settings = get_settings()
    first = await sync_tenant(client, tenant, settings)
    assert sorted(first.created) == ENABLED and not first.updated and not first.deleted
    again = await sync_tenant(client, tenant, settings)
    assert not again.changed and sorted(again.unchanged) == ENABLED

    described = await client.get_schedule_handle(
        schedule_id(tenant, "connector-reconcile")
    ).describe()
    assert described.schedule.spec.intervals[0].every == timedelta(seconds=15)
    assert described.schedule.policy.catchup_window == timedelta(minutes=5)
    assert described.schedule.spec.jitter == timedelta(seconds=1.5)

    # An operator pauses one; an interval changes in the settings; a job disappears.
    cleanup = client.get_schedule_handle(schedule_id(tenant, "checkpoint-cleanup"))
    await cleanup.pause(note="paused by the operator")
    stale = await client.create_schedule(schedule_id(tenant, "removed-job"), described.schedule)

    async def stale_listed() -> bool:  # listings are eventually consistent
        return stale.id in await tenant_schedule_ids(client, tenant)

    await eventually(stale_listed)
    changed = settings.model_copy(update={"schedule_intervals": {"checkpoint-cleanup": 7200}})
    report = await sync_tenant(client, tenant, changed)
    assert report.updated == ["checkpoint-cleanup"]
    assert report.deleted == ["removed-job"]
    assert not report.created
    after = await cleanup.describe()
    assert after.schedule.spec.intervals[0].every == timedelta(hours=2)
    assert after.schedule.state.paused, "an operator's pause survives a sync"
    assert not (await sync_tenant(client, tenant, changed)).changed
    assert not await _exists(client, stale.id)

    rows = {r.job: r for r in await schedule_rows(client, tenant, changed)}
    assert rows["checkpoint-cleanup"].state == "paused"
    assert rows["connector-reconcile"].state == "active"
    assert rows["connector-reconcile"].next_run_at is not None
    assert rows["reconcile-indexes"].state == "active"  # seed 002's jobs arrived (issue 16)
    # Every declared job is switched on now; none is left "declared (arrives with ...)".
    assert {r.state for r in rows.values()} == {"active", "paused"}


async def test_tenant_add_and_remove_carry_their_schedules(dev_env: WorkflowEnvironment) -> None:
    client = dev_env.client
    name = "t_" + uuid.uuid4().hex[:10]
    report = await add_tenant(client, name, get_settings())
    assert sorted(report.created) == ENABLED
    assert name in await list_tenants()
    again = await add_tenant(client, name, get_settings())
    assert not again.changed
    removed = await remove_tenant(client, name)
    assert removed.schedules == len(ENABLED)
    for job in ENABLED:
        assert not await _exists(client, schedule_id(name, job))
    assert name not in await list_tenants()


async def test_reconcile_brings_back_a_terminated_connector_and_never_doubles_one(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    async with running_workers(client):
        pair = await connector_ops.add_connector(
            client, tenant, name="kept", source="synthetic", config={"count": 5}, tuning=FAST
        )
        await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=60)
        handle = client.get_workflow_handle(connector_workflow_id(tenant, pair.id))

        async def listed() -> bool:
            query = f"WorkflowId = '{handle.id}' AND ExecutionStatus = 'Running'"
            return len([w async for w in client.list_workflows(query)]) == 1

        await eventually(listed)  # visibility is eventually consistent
        nothing = await run_sweep(client, tenant, "connector-reconcile")
        assert (nothing.found, nothing.acted) == (0, 0)

        await handle.terminate(reason="an operator's mistake")
        back = await run_sweep(client, tenant, "connector-reconcile")
        assert (back.found, back.acted) == (1, 1)
        described = await client.get_workflow_handle(handle.id).describe()
        assert described.status == WorkflowExecutionStatus.RUNNING
        # It came back as the same connector, idle and answering.
        progress = await connector_ops.progress(client, tenant, pair.id)
        assert progress.cc_pair_id == pair.id
        await eventually(listed)
        runs = [w async for w in client.list_workflows(f"WorkflowId = '{handle.id}'")]
        assert sum(1 for w in runs if w.status == WorkflowExecutionStatus.RUNNING) == 1


async def test_a_schedule_fires_its_sweep(dev_env: WorkflowEnvironment, tenant: str) -> None:
    """What Beat did, server-side: trigger the reconcile schedule, its run does the work."""
    client = dev_env.client
    await sync_tenant(client, tenant, get_settings())
    handle = client.get_schedule_handle(schedule_id(tenant, "connector-reconcile"))
    async with running_workers(client):
        await handle.trigger()

        async def ran() -> str | None:
            rows = {r.job: r for r in await schedule_rows(client, tenant, get_settings())}
            result = rows["connector-reconcile"].last_result
            return result if result and result.startswith("found") else None

        assert await eventually(ran, timeout=60) == "found 0, acted 0"


async def test_cleanups_keep_what_runs_need_and_drop_the_rest(
    ts_env: WorkflowEnvironment,
) -> None:
    tenant = "t_" + uuid.uuid4().hex[:10]
    await migrate_tenant(tenant)
    old, kept_unprocessed_of_latest, latest = await _attempts(
        tenant, await _pair(tenant, "a"), await _pair(tenant, "b")
    )
    async with running_workers(ts_env.client):
        await skip_time(ts_env, timedelta(days=31))  # a month of workflow time, at once
        batches = await run_sweep(ts_env.client, tenant, "checkpoint-cleanup")
        attempts = await run_sweep(ts_env.client, tenant, "index-attempt-cleanup")
    # The old attempt's processed batch goes; the latest attempt's unprocessed batch,
    # which its next attempt will adopt, stays; the open attempt's batch stays.
    assert batches.acted == 1
    left = await fetch(tenant, "SELECT index_attempt_id FROM staged_batch ORDER BY id")
    assert [r[0] for r in left] == [kept_unprocessed_of_latest, latest]
    # Attempts past retention go, except each pair's latest (and open ones).
    assert attempts.acted == 1
    ids = [r[0] for r in await fetch(tenant, "SELECT id FROM index_attempt ORDER BY id")]
    assert old not in ids and ids == [kept_unprocessed_of_latest, latest]
    assert await fetchval(tenant, "SELECT count(*) FROM index_attempt_error") == 0


async def _exists(client: Client, sid: str) -> bool:
    try:
        await client.get_schedule_handle(sid).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def _pair(tenant: str, name: str) -> int:
    from sluice.ccpairs import create_cc_pair

    return (await create_cc_pair(tenant, name=name, source="synthetic", config={"count": 1})).id


async def _attempts(tenant: str, cc: int, other: int) -> tuple[int, int, int]:
    """Pair ``cc``: an old finished attempt with an error and a processed batch, then its
    latest, failed, with an unprocessed batch (kept for the next attempt to adopt).
    Pair ``other``: an open attempt with a batch."""
    from sluice.db.session import tenant_connection

    async with tenant_connection(tenant) as (_, raw):
        ids = []
        for pair, status in ((cc, "success"), (cc, "failed"), (other, "in_progress")):
            ids.append(
                await raw.fetchval(
                    "INSERT INTO index_attempt (cc_pair_id, status, finished_at) VALUES ($1, "
                    "$2::text, CASE WHEN $2::text <> 'in_progress' THEN now() END) RETURNING id",
                    pair,
                    status,
                )
            )
        await raw.execute(
            "INSERT INTO index_attempt_error (index_attempt_id, cc_pair_id, stage, document_key,"
            " failure_message) VALUES ($1, $2, 'fetching', 'k', 'boom')",
            ids[0],
            cc,
        )
        for attempt, pair, processed in (
            (ids[0], cc, True),
            (ids[1], cc, False),
            (ids[2], other, False),
        ):
            await raw.execute(
                "INSERT INTO staged_batch (index_attempt_id, cc_pair_id, seq, doc_count, "
                "documents, processed_at) VALUES ($1, $2, 0, 1, ''::bytea, "
                "CASE WHEN $3 THEN now() END)",
                attempt,
                pair,
                processed,
            )
    return ids[0], ids[1], ids[2]
