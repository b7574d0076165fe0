"""Postgres goes away mid-run: no document is lost and the connector workflow lives on.

A private Postgres (tests/pgfaults.py) is killed and restarted 30 s later, or frozen
for 3 minutes (connections hang instead of failing), while batches are being
processed. Each test ends with the index equal to the source, every attempt in a
true terminal state, no staged batch left, and the workflow still running.

While the database is down the test watches only Temporal (the ``progress``
query); every SQL check runs after the database is back.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from sluice import connector_ops
from sluice.indexing.models import RunTuning
from tests.pgfaults import PrivatePostgres, private_db, private_tenant  # noqa: F401
from tests.support import fetch, fetchval, running_workers

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

TUNING = RunTuning(
    batch_size=25,
    batches_per_fetch=2,
    max_batches_in_flight=2,
    fetch_heartbeat_seconds=10,
    process_heartbeat_seconds=10,
)


async def indexed_in_progress(client: Client, tenant: str, cc: int) -> int:
    try:
        return (await connector_ops.progress(client, tenant, cc, rpc_timeout=3)).counts.docs_indexed
    except Exception:
        return 0


async def until_indexing(client: Client, tenant: str, cc: int, docs: int) -> None:
    """Wait (on Temporal only) until the running attempt has indexed ``docs``."""
    deadline = time.monotonic() + 120
    while await indexed_in_progress(client, tenant, cc) < docs:
        assert time.monotonic() < deadline, "indexing never got going"
        await asyncio.sleep(0.1)


async def assert_index_equals(tenant: str, ids: set[str]) -> None:
    rows = await fetch(tenant, "SELECT id FROM document")
    assert {r["id"] for r in rows} == ids
    assert await fetchval(tenant, "SELECT coalesce(sum(chunk_count), 0) FROM document") == (
        await fetchval(tenant, "SELECT count(*) FROM chunk")
    )
    assert await fetchval(tenant, "SELECT count(*) FROM staged_batch") == 0
    still_open = await fetchval(
        tenant, "SELECT count(*) FROM index_attempt WHERE status IN ('in_progress', 'not_started')"
    )
    assert still_open == 0


async def assert_alive(client: Client, tenant: str, cc: int) -> None:
    described = await connector_ops.handle(client, tenant, cc).describe()
    assert described.status == WorkflowExecutionStatus.RUNNING


async def test_postgres_killed_for_30s_mid_run_loses_nothing(
    dev_env: WorkflowEnvironment, private_db: PrivatePostgres, private_tenant: str
) -> None:
    client, tenant = dev_env.client, private_tenant
    count = 1500
    async with running_workers(client):
        pair = await connector_ops.add_connector(
            client,
            tenant,
            name="outage",
            source="synthetic",
            config={"count": count, "size_bytes": 600, "delay_ms": 8},
            tuning=TUNING,
        )
        await until_indexing(client, tenant, pair.id, 200)
        down_at = time.monotonic()
        await private_db.outage(30)
        print(f"Postgres back after {time.monotonic() - down_at:.0f}s")
        final = await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=600)
        print(f"attempt ended {time.monotonic() - down_at:.0f}s after the kill")
        await assert_alive(client, tenant, pair.id)

    assert final.last_attempt_status == "success", final
    counts = final.last_attempt_counts
    assert counts is not None and counts.docs_fetched == count and counts.docs_failed == 0
    assert counts.docs_indexed + counts.docs_skipped == count
    await assert_index_equals(tenant, {f"syn:0:{i}" for i in range(count)})
    rows = await fetch(tenant, "SELECT status, docs_fetched FROM index_attempt")
    assert [(r["status"], r["docs_fetched"]) for r in rows] == [("success", count)]


def write_corpus(root: Path, files: int, version: int, start: int = 0) -> None:
    for n in range(start, start + files):
        folder = root / f"part{n % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        body = " ".join(f"word{(n * 31 + k) % 997}" for k in range(300))
        (folder / f"doc{n}.md").write_text(f"# Document {n} v{version}\n\n{body}\n")


async def test_postgres_frozen_for_3_minutes_then_killed_in_an_incremental_run(
    dev_env: WorkflowEnvironment, private_db: PrivatePostgres, private_tenant: str, tmp_path: Path
) -> None:
    """Frozen (queries hang) for three minutes during a full run, then killed for 30 s
    during the incremental run that follows: every file and every change is indexed."""
    client, tenant = dev_env.client, private_tenant
    corpus = tmp_path / "corpus"
    write_corpus(corpus, 800, version=1)
    tuning = TUNING.model_copy(update={"batch_size": 10})
    async with running_workers(client):
        pair = await connector_ops.add_connector(
            client,
            tenant,
            name="frozen",
            source="filesystem",
            config={"path": str(corpus)},
            tuning=tuning,
        )
        await until_indexing(client, tenant, pair.id, 60)
        frozen_at = time.monotonic()
        with private_db.frozen():
            await asyncio.sleep(180)
        first = await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=600)
        print(f"full run ended {time.monotonic() - frozen_at:.0f}s after the freeze began")
        assert first.last_attempt_status == "success", first

        # Change 100 files and add 50, then lose the database during the incremental run.
        time.sleep(1.1)  # file times must move past the pass's start
        write_corpus(corpus, 100, version=2)
        write_corpus(corpus, 50, version=2, start=800)
        await connector_ops.index_now(client, tenant, pair.id)
        await until_indexing(client, tenant, pair.id, 20)
        await private_db.outage(30)
        second = await connector_ops.wait_for_attempts(client, tenant, pair.id, 2, timeout=600)
        await assert_alive(client, tenant, pair.id)

    assert second.last_attempt_status == "success", second
    assert second.last_attempt_counts is not None
    assert second.last_attempt_counts.docs_indexed == 150
    ids = await fetch(tenant, "SELECT id FROM document")
    assert len(ids) == 850
    await assert_index_equals(tenant, {r["id"] for r in ids})
    changed = await fetchval(
        tenant, "SELECT count(*) FROM chunk WHERE content LIKE '%v2%' OR title LIKE '%v2%'"
    )
    assert changed >= 150  # every changed and new file carries its new version
    stale = await fetchval(
        tenant,
        "SELECT count(*) FROM chunk c JOIN document d ON d.id = c.document_id "
        "WHERE c.content LIKE '# Document % v1%' AND d.id ~ '/doc([0-9]|[1-9][0-9])\\.md$'",
    )
    assert stale == 0  # no changed file kept its old text
    statuses = await fetch(tenant, "SELECT status FROM index_attempt ORDER BY id")
    assert [r["status"] for r in statuses] == ["success", "success"]
