"""The fault matrix: each row is a complaint the seed platforms' users filed against
Celery, and the test that shows Sluice does not have it. ``uv run pytest -m faults``
runs every row; the README's ``uv run pytest`` runs them too.

Rows whose proof already lives beside the code it exercises are named in ``MATRIX`` by
``file::test``; the rest are here. Every row ends with the index equal to the source:
0 documents lost, 0 duplicated, every attempt in a true terminal state, nothing staged.
"""

from __future__ import annotations

import ast
import asyncio
import itertools
import os
import signal
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from sluice import connector_ops
from sluice.config import get_settings
from sluice.devstack import free_port, start_redis, start_temporal
from tests.support import FAST, connect_when_ready, eventually, fetch, fetchval, running_workers
from tests.test_worker_crash import worker_process

pytestmark = pytest.mark.faults

TESTS = Path(__file__).parent

MATRIX: dict[str, str] = {
    "task queued but never run (worker SIGKILLed during fetch)": (
        "test_worker_crash.py::test_killed_worker_resumes_from_the_last_checkpoint"
    ),
    "task lost (worker SIGKILLed during processing)": (
        "test_never_lose.py::test_a_killed_workers_batches_resume_within_thirty_seconds"
    ),
    "stuck 'indexing' after the fetch finished": (
        "test_fault_matrix.py::test_the_attempt_is_terminal_within_a_second_of_its_last_batch"
    ),
    "a live but slow run killed by a watchdog": (
        "test_fault_matrix.py::test_one_document_every_20s_is_never_cut_off"
    ),
    "OOM reported as 'no heartbeat'": (
        "test_never_lose.py::test_oversized_documents_fail_alone_and_worker_memory_stays_bounded"
    ),
    "deploys fail running attempts (SIGTERM mid-run)": (
        "test_worker_crash.py::test_a_deploy_interrupts_but_never_fails_a_run"
    ),
    "lost progress, full re-crawl (resume from the checkpoint)": (
        "test_worker_crash.py::test_killed_worker_resumes_from_the_last_checkpoint"
    ),
    "lost progress, full re-crawl (an unchanged re-run embeds nothing)": (
        "test_fault_matrix.py::test_an_unchanged_full_rerun_embeds_nothing"
    ),
    "the same document twice in a batch fails the attempt": (
        "test_connector_workflow.py::test_duplicates_are_not_failures"
    ),
    "deleted files stay searchable": (
        "test_pruning.py::test_deleted_files_are_pruned_and_shared_documents_survive"
    ),
    "deletion stuck behind indexing": (
        "test_deletion.py::test_delete_during_a_run_stops_it_cleanly_and_leaves_nothing"
    ),
    "Redis state drift (Redis killed mid-run)": (
        "test_fault_matrix.py::test_redis_killed_mid_run_leaves_indexing_unaffected"
    ),
    "Beat dies silently (schedules after a server restart)": (
        "test_schedules_restart.py::test_schedules_survive_a_server_restart_and_keep_firing"
    ),
    "Beat dies silently (a run across a server restart)": (
        "test_fault_matrix.py::test_a_temporal_restart_mid_run_loses_nothing"
    ),
    "connectors flap to invalid (transient errors never invalidate)": (
        "test_connector_workflow.py::test_repeated_transient_failures_flag_the_connector_after_five"
    ),
    "connectors flap to invalid (bad credentials invalidate at once)": (
        "test_connector_workflow.py::test_bad_credentials_mark_the_connector_invalid_at_once"
    ),
    "Postgres down 30 s mid-run": (
        "test_db_outage.py::test_postgres_killed_for_30s_mid_run_loses_nothing"
    ),
    "Postgres frozen, then killed": (
        "test_db_outage.py::test_postgres_frozen_for_3_minutes_then_killed_in_an_incremental_run"
    ),
    "a burst of index_now with pause/resume interleaved": (
        "test_fault_matrix.py::test_a_burst_of_50_index_now_with_pause_and_resume_runs_once_at_a_time"
    ),
}


def _marked_faults(module: ast.Module, name: str) -> bool:
    """The test exists and carries ``faults`` (its own mark or the module's)."""
    module_mark = any(
        isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
        and "pytest.mark.faults" in ast.unparse(node.value)
        for node in module.body
    )
    for node in module.body:
        if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef) and node.name == name:
            marks = [ast.unparse(d) for d in node.decorator_list]
            return module_mark or any("mark.faults" in m for m in marks)
    return False


def test_every_row_names_a_real_fault_test() -> None:
    missing = []
    for complaint, target in MATRIX.items():
        filename, name = target.split("::")
        module = ast.parse((TESTS / filename).read_text())
        if not _marked_faults(module, name):
            missing.append(f"{complaint}: {target}")
    assert not missing, missing


# --- the invariant every row ends with -----------------------------------------------------


async def assert_index_equals_source(tenant: str, cc: int, expected: int) -> None:
    """Exactly ``expected`` documents for the pair, each chunk once, nothing staged,
    every attempt closed."""
    linked = "SELECT count(*) FROM document_by_connector_credential_pair WHERE cc_pair_id = $1"
    assert await fetchval(tenant, linked, cc) == expected
    assert await fetchval(tenant, "SELECT count(*) FROM document") == expected
    chunks = await fetchval(tenant, "SELECT count(*) FROM chunk")
    assert await fetchval(tenant, "SELECT coalesce(sum(chunk_count), 0) FROM document") == chunks
    assert await fetchval(tenant, "SELECT count(*) FROM staged_batch") == 0
    still_open = "SELECT count(*) FROM index_attempt WHERE status IN ('in_progress', 'not_started')"
    assert await fetchval(tenant, still_open) == 0


async def add_synthetic(client, tenant: str, tuning=FAST, **config: object) -> int:  # type: ignore[no-untyped-def]
    pair = await connector_ops.add_connector(
        client,
        tenant,
        name="matrix",
        source="synthetic",
        config={"size_bytes": 400, **config},
        tuning=tuning,
    )
    return pair.id


async def indexed(tenant: str) -> int:
    return int(await fetchval(tenant, "SELECT count(*) FROM document"))


# --- rows proven here ----------------------------------------------------------------------


async def test_the_attempt_is_terminal_within_a_second_of_its_last_batch(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    """Celery's attempt stayed 'indexing' for hours after its last batch; here the
    workflow closes the attempt as the last batch's activity returns."""
    client = dev_env.client
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, count=300)
        final = await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=120)
    assert final.last_attempt_status == "success"
    lag = await fetchval(
        tenant,
        "SELECT extract(epoch FROM a.finished_at - (SELECT max(last_modified) FROM document))"
        " FROM index_attempt a",
    )
    print(f"attempt closed {float(lag):.3f}s after its last batch began to commit")
    assert float(lag) < 1.0
    await assert_index_equals_source(tenant, cc, 300)


async def test_one_document_every_20s_is_never_cut_off(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    """A source that yields one document every 20 s, four times the fetch heartbeat
    timeout: the connector heartbeats while it waits, so nothing times it out."""
    client = dev_env.client
    tuning = FAST.model_copy(update={"fetch_heartbeat_seconds": 5})
    async with running_workers(client):
        cc = await add_synthetic(
            client, tenant, tuning=tuning, count=2, rate_limit_every=1, rate_limit_seconds=20
        )
        final = await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=120)
    assert final.last_attempt_status == "success"
    retried = await fetchval(tenant, "SELECT count(*) FROM index_attempt_error")
    assert retried == 0
    await assert_index_equals_source(tenant, cc, 2)


async def test_an_unchanged_full_rerun_embeds_nothing(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, count=200)
        first = await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=120)
        await connector_ops.index_now(client, tenant, cc, from_beginning=True)
        second = await connector_ops.wait_for_attempts(client, tenant, cc, 2, timeout=120)
    assert first.last_attempt_counts is not None and second.last_attempt_counts is not None
    assert first.last_attempt_counts.chunks_written > 0
    assert second.last_attempt_status == "success"
    assert second.last_attempt_counts.docs_fetched == 200
    assert second.last_attempt_counts.chunks_written == 0
    assert second.last_attempt_counts.docs_skipped == 200
    await assert_index_equals_source(tenant, cc, 200)


async def test_redis_killed_mid_run_leaves_indexing_unaffected(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seed kept task state in Redis and drifted when Redis restarted. Sluice's worker
    process uses Redis only for readiness and seed 002's agent queue: killing it mid-run
    changes nothing in the run (readiness reports it, the run goes on)."""
    redis, url = start_redis(tmp_path, free_port())
    monkeypatch.setenv("REDIS_URL", url)
    try:
        with worker_process(dev_env, tmp_path / "worker.log") as worker:
            cc = await add_synthetic(dev_env.client, tenant, count=600, delay_ms=5)
            await eventually(lambda: _indexed_at_least(tenant, 50), timeout=60)
            os.kill(redis.proc.pid, signal.SIGKILL)
            final = await connector_ops.wait_for_attempts(
                dev_env.client, tenant, cc, 1, timeout=180
            )
            assert worker.poll() is None, "the worker outlived Redis"
    finally:
        redis.stop()
    assert final.last_attempt_status == "success"
    await assert_index_equals_source(tenant, cc, 600)


async def _indexed_at_least(tenant: str, docs: int) -> bool:
    return await indexed(tenant) >= docs


async def test_a_temporal_restart_mid_run_loses_nothing(tenant: str, tmp_path: Path) -> None:
    """The whole Temporal server goes away mid-run and comes back from its file: the
    workers reconnect by themselves and the run finishes with every document once."""
    port = free_port()
    settings = get_settings().model_copy(update={"temporal_address": f"127.0.0.1:{port}"})
    server, _ = start_temporal(tmp_path, port, None)
    try:
        client = await connect_when_ready(settings)
        async with running_workers(client):
            cc = await add_synthetic(client, tenant, count=800, delay_ms=5)
            await eventually(lambda: _indexed_at_least(tenant, 100), timeout=60)
            server.stop()
            down_at = await indexed(tenant)
            await asyncio.sleep(3)
            server, _ = start_temporal(tmp_path, port, None)
            final = await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=180)
        print(f"server stopped with {down_at} of 800 indexed")
        assert final.last_attempt_status == "success"
    finally:
        server.stop()
    await assert_index_equals_source(tenant, cc, 800)


async def test_a_burst_of_50_index_now_with_pause_and_resume_runs_once_at_a_time(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    """Fifty index-now requests with pause and resume between them, all at once: the
    connector runs one attempt at a time (no two overlap), every attempt ends, and
    the index holds each document exactly once."""
    client = dev_env.client
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, count=200, delay_ms=1)
        await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=120)
        requests = []
        for n in range(50):
            requests.append(connector_ops.index_now(client, tenant, cc, from_beginning=n % 7 == 0))
            if n % 10 == 3:
                requests.append(connector_ops.send(client, tenant, cc, "pause"))
            if n % 10 == 5:
                requests.append(connector_ops.send(client, tenant, cc, "resume"))
        await asyncio.gather(*requests)
        await connector_ops.send(client, tenant, cc, "resume")

        async def resting() -> int | None:
            """Attempts started, if the connector rests and no attempt row is open."""
            current = await connector_ops.progress(client, tenant, cc)
            open_rows = await fetchval(
                tenant, "SELECT count(*) FROM index_attempt WHERE status = 'in_progress'"
            )
            idle = current.attempt_id is None and current.state.value == "idle"
            return current.attempts_started if idle and open_rows == 0 else None

        async def settled() -> bool:
            before = await resting()
            await asyncio.sleep(2)  # still resting, nothing started meanwhile
            return before is not None and await resting() == before

        await eventually(settled, timeout=180, interval=0.5)
    attempts = await fetch(
        tenant, "SELECT id, status, started_at, finished_at FROM index_attempt ORDER BY id"
    )
    print(f"{len(attempts)} attempts for 50 requests")
    assert 2 <= len(attempts) <= 51
    for earlier, later in itertools.pairwise(attempts):
        assert earlier["finished_at"] <= later["started_at"], "two attempts overlapped"
    assert {a["status"] for a in attempts} <= {"success", "canceled", "interrupted"}
    await assert_index_equals_source(tenant, cc, 200)
