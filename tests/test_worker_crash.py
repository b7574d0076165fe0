"""A worker process killed mid-run (SIGKILL, no goodbye): a new worker picks the run up
from its last checkpoint and the index ends with exactly the source's documents."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from sluice import connector_ops
from sluice.devstack import free_port
from sluice.temporal.workflow_ids import connector_workflow_id
from tests.support import FAST, activity_attempts, eventually, fetch, fetchval


@contextmanager
def worker_process(env: WorkflowEnvironment, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``sluice worker background`` as a separate OS process, logging JSON to ``log``."""
    environ = {
        **os.environ,
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "HEALTH_PORT": str(free_port()),
        "LOG_FORMAT": "json",
    }
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sluice.cli.main", "worker", "background"],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.mark.faults
async def test_killed_worker_resumes_from_the_last_checkpoint(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path
) -> None:
    client = dev_env.client
    count = 240
    tuning = FAST.model_copy(
        update={
            "fetch_heartbeat_seconds": 3,
            "process_heartbeat_seconds": 5,
            "batches_per_fetch": 50,
        }
    )
    with worker_process(dev_env, tmp_path / "first.log") as first:
        pair = await connector_ops.add_connector(
            client,
            tenant,
            name="crash",
            source="synthetic",
            config={"count": count, "size_bytes": 500, "delay_ms": 25},
            tuning=tuning,
        )

        await eventually(lambda: _staged_at_least(tenant, 8), timeout=60)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    indexed_before_restart = await fetchval(tenant, "SELECT count(*) FROM document")
    assert indexed_before_restart < count

    with worker_process(dev_env, tmp_path / "second.log"):
        final = await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=120)

    assert final.last_attempt_status == "success"
    rows = await fetch(tenant, "SELECT id FROM document ORDER BY id")
    ids = [r["id"] for r in rows]
    assert len(ids) == count == len(set(ids))
    assert ids == sorted(f"syn:0:{i}" for i in range(count))
    # Every chunk belongs to a current document exactly once (no duplicated writes).
    assert await fetchval(tenant, "SELECT sum(chunk_count) FROM document") == await fetchval(
        tenant, "SELECT count(*) FROM chunk"
    )
    attempts = await fetch(tenant, "SELECT status, docs_fetched FROM index_attempt")
    assert [(a["status"], a["docs_fetched"]) for a in attempts] == [("success", count)]
    # The new worker picked the fetch up from the dead one's last heartbeat.
    assert "resuming fetch from heartbeat" in (tmp_path / "second.log").read_text()
    assert await fetchval(tenant, "SELECT count(*) FROM staged_batch") == 0


async def _staged_at_least(tenant: str, batches: int) -> bool:
    staged = await fetchval(tenant, "SELECT count(*) FROM staged_batch")
    return bool(staged >= batches)


@pytest.mark.faults
async def test_a_deploy_interrupts_but_never_fails_a_run(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path
) -> None:
    """SIGTERM (a deploy): the fetch hands back what it staged, a new worker carries on;
    no activity fails, the attempt succeeds and no failure is counted."""
    client = dev_env.client
    count = 200
    tuning = FAST.model_copy(update={"batches_per_fetch": 50, "fetch_heartbeat_seconds": 5})
    with worker_process(dev_env, tmp_path / "old.log") as old:
        pair = await connector_ops.add_connector(
            client,
            tenant,
            name="deploy",
            source="synthetic",
            config={"count": count, "size_bytes": 500, "delay_ms": 25},
            tuning=tuning,
        )
        await eventually(lambda: _staged_at_least(tenant, 4), timeout=60)
        old.send_signal(signal.SIGTERM)
        assert old.wait(30) == 0
    assert "returning the batches staged so far" in (tmp_path / "old.log").read_text()
    with worker_process(dev_env, tmp_path / "new.log"):
        final = await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=120)
    assert final.last_attempt_status == "success"
    assert final.consecutive_failures == 0
    assert await fetchval(tenant, "SELECT count(*) FROM document") == count
    wid = connector_workflow_id(tenant, pair.id)
    assert set(await activity_attempts(client, wid, "fetch_documents")) == {1}
