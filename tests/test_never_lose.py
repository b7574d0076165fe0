"""The connector never loses a document and never dies (issue: core promise).

Each test ends by checking the index equals the source: every document there
once, no staged batch left, every attempt in a true terminal state.
Database outages are in tests/test_db_outage.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from sluice import connector_ops
from sluice.ccpairs import create_cc_pair
from sluice.db.session import tenant_connection
from sluice.indexing import attempts as attempt_rows
from sluice.indexing.models import RunState
from sluice.temporal.workflow_ids import connector_workflow_id
from tests.support import FAST, eventually, fetch, fetchval, running_workers
from tests.test_worker_crash import worker_process

pytestmark = pytest.mark.faults


async def add_synthetic(client, tenant: str, tuning=FAST, **config: object) -> int:  # type: ignore[no-untyped-def]
    pair = await connector_ops.add_connector(
        client,
        tenant,
        name="never-lose",
        source="synthetic",
        config={"size_bytes": 500, **config},
        tuning=tuning,
    )
    return pair.id


async def assert_index_equals_source(tenant: str, expected: int) -> None:
    """Exactly ``expected`` documents, each chunk once, nothing staged, nothing open."""
    assert await fetchval(tenant, "SELECT count(*) FROM document") == expected
    assert await fetchval(tenant, "SELECT coalesce(sum(chunk_count), 0) FROM document") == (
        await fetchval(tenant, "SELECT count(*) FROM chunk")
    )
    assert await fetchval(tenant, "SELECT count(*) FROM staged_batch") == 0
    open_attempts = await fetchval(
        tenant, "SELECT count(*) FROM index_attempt WHERE status IN ('in_progress', 'not_started')"
    )
    assert open_attempts == 0


async def indexed(tenant: str) -> int:
    return int(await fetchval(tenant, "SELECT count(*) FROM document"))


# --- idempotent bookkeeping ------------------------------------------------------------------


async def test_starting_an_attempt_twice_returns_the_same_row(tenant: str) -> None:
    """A start retried after a lost completion finds its own row: no orphan attempt."""
    pair = await create_cc_pair(tenant, name="keyed", source="synthetic", config={"count": 1})
    async with tenant_connection(tenant) as (_, raw):
        first = await attempt_rows.create_attempt(raw, pair.id, False, "wf", "run-1")
        again = await attempt_rows.create_attempt(raw, pair.id, False, "wf", "run-1")
        other = await attempt_rows.create_attempt(raw, pair.id, False, "wf", "run-2")
        closed = await attempt_rows.interrupt_stale_attempts(raw, pair.id, other)
    assert first == again != other
    assert closed == [first]
    rows = await fetch(tenant, "SELECT id, status FROM index_attempt ORDER BY id")
    assert [(r["id"], r["status"]) for r in rows] == [
        (first, "interrupted"),
        (other, "in_progress"),
    ]


# --- terminate, then start again through the product -----------------------------------------


async def test_a_terminated_connector_comes_back_clean(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    count = 300
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, count=count, delay_ms=10)
        await eventually(lambda: _staged_or_indexed(tenant), timeout=60)
        # Processed batches hold no documents: the staging table is never a corpus copy.
        held = await fetchval(
            tenant,
            "SELECT count(*) FROM staged_batch WHERE result IS NOT NULL AND length(documents) > 0",
        )
        assert held == 0
        handle = connector_ops.handle(client, tenant, cc)
        await handle.terminate(reason="test: an operator terminated it")
        assert await fetchval(tenant, "SELECT status FROM index_attempt") == "in_progress"

        # index-now is signal-with-start: the connector gets a new workflow, which first
        # closes what the terminated one left open.
        await connector_ops.index_now(client, tenant, cc)
        final = await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=120)
    assert final.last_attempt_status == "success"
    rows = await fetch(tenant, "SELECT status, error_message FROM index_attempt ORDER BY id")
    assert [r["status"] for r in rows] == ["interrupted", "success"]
    assert "ended without closing it" in rows[0]["error_message"]
    await assert_index_equals_source(tenant, count)


async def _staged_or_indexed(tenant: str) -> bool:
    staged = await fetchval(tenant, "SELECT count(*) FROM staged_batch")
    return bool(staged >= 3 and await indexed(tenant) >= 20)


# --- pause is quick, and a resume right after it is not lost ---------------------------------


async def test_pause_takes_effect_in_seconds_and_a_quick_resume_is_kept(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    count = 400
    tuning = FAST.model_copy(update={"fetch_heartbeat_seconds": 20, "batches_per_fetch": 100})
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, tuning=tuning, count=count, delay_ms=20)
        await eventually(lambda: _fetched_at_least(client, tenant, cc, 30), timeout=60)
        paused_at = time.monotonic()
        await connector_ops.send(client, tenant, cc, "pause")
        await eventually(lambda: _state(client, tenant, cc, RunState.PAUSED), timeout=30)
        took = time.monotonic() - paused_at
        print(f"pause took effect in {took:.1f}s")
        assert took < 10  # the fetch hears its cancellation at its next (≤ 2 s) heartbeat

        # Resume, pause and resume again within a second: the last word wins.
        await connector_ops.send(client, tenant, cc, "resume")
        await connector_ops.send(client, tenant, cc, "pause")
        await connector_ops.send(client, tenant, cc, "resume")
        final = await connector_ops.wait_for_attempts(client, tenant, cc, 2, timeout=120)
    assert final.last_attempt_status == "success"
    assert final.state == RunState.IDLE
    await assert_index_equals_source(tenant, count)


async def _fetched_at_least(client, tenant: str, cc: int, docs: int) -> bool:  # type: ignore[no-untyped-def]
    try:
        return (await connector_ops.progress(client, tenant, cc)).counts.docs_fetched >= docs
    except Exception:
        return False


async def _state(client, tenant: str, cc: int, state: RunState) -> bool:  # type: ignore[no-untyped-def]
    try:
        return (await connector_ops.progress(client, tenant, cc)).state == state
    except Exception:
        return False


# --- failures in history are short -----------------------------------------------------------


async def test_activity_failures_in_history_are_short(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    """The Web UI shows the error itself, not "Failure exceeds size limit"."""
    client = dev_env.client
    tuning = FAST.model_copy(update={"fetch_attempts": 2})
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, tuning=tuning, count=30, error_at=5)
        final = await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=60)
    assert final.last_attempt_status == "failed"
    failures = []
    wid = connector_workflow_id(tenant, cc)
    async for wf in client.list_workflows(f'WorkflowId = "{wid}"'):
        history = client.get_workflow_handle(wid, run_id=wf.run_id).fetch_history_events()
        async for event in history:
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
                failures.append(event.activity_task_failed_event_attributes.failure)
    assert failures
    for failure in failures:
        assert "position 5" in failure.message or "error" in failure.message.lower()
        assert failure.application_failure_info.type == "SyntheticSourceError"
        assert len(failure.SerializeToString()) < 2048, len(failure.SerializeToString())
        assert not failure.HasField("cause")


# --- oversized documents ----------------------------------------------------------------------


async def test_oversized_documents_fail_alone_and_worker_memory_stays_bounded(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path
) -> None:
    """Three 50 MB documents among small ones: each fails alone with a clear error, the
    rest of the run succeeds, the worker's peak memory stays far from the 1.7 GB of old."""
    client = dev_env.client
    count = 21  # positions 6, 13 and 20 are 50 MB
    with worker_process(dev_env, tmp_path / "worker.log") as proc:
        cc = await add_synthetic(client, tenant, count=count, large_every=7, large_bytes=50_000_000)
        final = await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=240)
        peak_mb = _peak_rss_mb(proc.pid)
    print(f"worker peak RSS {peak_mb:.0f} MB")
    assert final.last_attempt_status == "completed_with_errors"
    errors = await fetch(
        tenant, "SELECT document_id, failure_message FROM index_attempt_error ORDER BY id"
    )
    assert sorted(e["document_id"] for e in errors) == sorted(f"syn:0:{p}" for p in (6, 13, 20))
    for error in errors:
        assert "over the 10.0 MiB limit (max_document_bytes)" in error["failure_message"]
    assert await indexed(tenant) == count - 3
    assert peak_mb < 1200, peak_mb
    await assert_index_equals_source(tenant, count - 3)


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


# --- a killed worker's work is picked up within ~30 s -----------------------------------------


async def test_a_killed_workers_batches_resume_within_thirty_seconds(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path
) -> None:
    """SIGKILL with a new worker ready at once, production heartbeat timeouts (20 s)."""
    import signal

    client = dev_env.client
    count = 400
    tuning = FAST.model_copy(
        update={"fetch_heartbeat_seconds": 20, "process_heartbeat_seconds": 20}
    )
    with worker_process(dev_env, tmp_path / "first.log") as first:
        cc = await add_synthetic(client, tenant, tuning=tuning, count=count, delay_ms=15)
        await eventually(lambda: _indexed_at_least(tenant, 60), timeout=90)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    before = await _attempt_indexed(tenant)
    with worker_process(dev_env, tmp_path / "second.log"):
        started = time.monotonic()
        await eventually(lambda: _attempt_progressed(tenant, before), timeout=60, interval=0.25)
        resumed_after = time.monotonic() - started
        print(f"indexing resumed {resumed_after:.1f}s after the new worker started")
        final = await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=180)
    assert resumed_after < 35
    assert final.last_attempt_status == "success"
    await assert_index_equals_source(tenant, count)


async def _indexed_at_least(tenant: str, docs: int) -> bool:
    return await indexed(tenant) >= docs


async def _attempt_indexed(tenant: str) -> int:
    return int(await fetchval(tenant, "SELECT coalesce(max(docs_indexed), 0) FROM index_attempt"))


async def _attempt_progressed(tenant: str, before: int) -> bool:
    return await _attempt_indexed(tenant) > before
