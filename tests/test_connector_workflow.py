"""The connector workflow on real servers: timers, signals, checkpoints, faults.

Time-skipping (``ts_env``) where durable timers must pass hours; the dev server
(``dev_env``) for heartbeats, signals from the ``temporal`` CLI and history checks.
"""

from __future__ import annotations

import asyncio
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from sluice import connector_ops
from sluice.ccpairs import list_cc_pairs
from sluice.config import get_settings
from sluice.devstack import venv_bin
from sluice.errors import ConfigurationError, ConnectorConfigError
from sluice.index.search import search_chunks
from sluice.indexing.models import RunState, RunTuning
from sluice.temporal.client import data_converter
from sluice.temporal.interceptor import TenantInterceptor
from sluice.temporal.workflow_ids import connector_workflow_id
from tests.support import (
    FAST,
    activity_attempts,
    eventually,
    fetch,
    fetchval,
    running_workers,
)
from workflows.connector import ConnectorWorkflow


async def add_synthetic(
    client: Client,
    tenant: str,
    tuning: RunTuning = FAST,
    refresh: int | None = None,
    **config: object,
) -> int:
    pair = await connector_ops.add_connector(
        client,
        tenant,
        name="synthetic",
        source="synthetic",
        config={"size_bytes": 600, **config},
        refresh_interval_seconds=refresh,
        tuning=tuning,
    )
    return pair.id


async def doc_count(tenant: str) -> int:
    return int(await fetchval(tenant, "SELECT count(*) FROM document"))


async def attempts(tenant: str) -> list[dict[str, Any]]:
    rows = await fetch(tenant, "SELECT * FROM index_attempt ORDER BY id")
    return [dict(r) for r in rows]


# --- timers -------------------------------------------------------------------------------


async def test_refresh_timer_fires_after_hours_and_index_now_at_once(
    ts_env: WorkflowEnvironment, tenant: str
) -> None:
    client = ts_env.client
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, refresh=6 * 3600, count=30)
        first = await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=60)
        assert first.last_attempt_status == "success"
        assert first.next_run_in_seconds == pytest.approx(6 * 3600, abs=120)

        # Nothing happens before the interval: five skipped hours, still one attempt.
        await ts_env.sleep(timedelta(hours=5))
        assert (await connector_ops.progress(client, tenant, cc)).attempts_started == 1
        await ts_env.sleep(timedelta(hours=1, minutes=1))
        second = await connector_ops.wait_for_attempts(client, tenant, cc, 2, timeout=60)
        assert second.attempts_started == 2

        # index_now runs at once: the next refresh is six hours away, no time is skipped.
        before = await ts_env.get_current_time()
        await connector_ops.index_now(client, tenant, cc)
        third = await connector_ops.wait_for_attempts(client, tenant, cc, 3, timeout=60)
        assert third.attempts_started == 3
        assert (await ts_env.get_current_time()) - before < timedelta(minutes=5)

    rows = await attempts(tenant)
    assert [r["status"] for r in rows] == ["success"] * 3
    # Unchanged documents cost nothing: later attempts skip all 30 without re-embedding.
    assert rows[0]["docs_indexed"] == 30
    assert [r["docs_skipped"] for r in rows[1:]] == [30, 30]
    assert [r["docs_indexed"] for r in rows[1:]] == [0, 0]
    assert await doc_count(tenant) == 30


# --- checkpoints ---------------------------------------------------------------------------


async def test_continue_as_new_carries_the_checkpoint(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    tuning = FAST.model_copy(update={"batches_per_fetch": 1, "batches_before_continue_as_new": 2})
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, tuning=tuning, count=75)
        final = await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=90)
    assert final.last_attempt_status == "success"
    runs = [
        wf
        async for wf in client.list_workflows(f'WorkflowId = "{connector_workflow_id(tenant, cc)}"')
    ]
    # 8 batches, two per run: the attempt spanned several runs, each resuming the checkpoint.
    assert len(runs) >= 4
    rows = await attempts(tenant)
    assert len(rows) == 1
    assert rows[0]["status"] == "success"
    assert rows[0]["batches"] == 8
    assert rows[0]["docs_fetched"] == 75
    assert await doc_count(tenant) == 75
    assert await fetchval(tenant, "SELECT count(*) FROM staged_batch") == 0


async def test_large_data_never_travels_through_history(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, count=120, size_bytes=4000)
        await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=60)
    text_bytes = await fetchval(tenant, "SELECT sum(length(content)) FROM chunk")
    assert text_bytes > 400_000
    history_bytes = 0
    wid = connector_workflow_id(tenant, cc)
    async for wf in client.list_workflows(f'WorkflowId = "{wid}"'):
        history = await client.get_workflow_handle(wid, run_id=wf.run_id).fetch_history()
        history_bytes += len(history.to_json())
    # Claim checks only: the whole history is a small fraction of the indexed text.
    assert history_bytes < text_bytes / 4


# --- signals ------------------------------------------------------------------------------


def temporal_cli(env: WorkflowEnvironment, *args: str) -> str:
    address = env.client.service_client.config.target_host
    done = subprocess.run(
        [venv_bin("temporal"), *args, "--address", address, "--namespace", "default"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_pause_and_resume_with_the_temporal_cli(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    wid = None
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, count=200, delay_ms=15)
        wid = connector_workflow_id(tenant, cc)
        await eventually(lambda: _fetched_at_least(client, tenant, cc, 30), timeout=30)
        await asyncio.to_thread(
            temporal_cli, dev_env, "workflow", "signal", "--workflow-id", wid, "--name", "pause"
        )
        paused = await eventually(lambda: _in_state(client, tenant, cc, RunState.PAUSED))
        assert paused.last_attempt_status == "canceled"
        out = await asyncio.to_thread(
            temporal_cli,
            dev_env,
            "workflow",
            "query",
            "--workflow-id",
            wid,
            "--name",
            "progress",
            "--output",
            "json",
        )
        assert '"paused"' in out
        rows = await attempts(tenant)
        assert rows[0]["status"] == "canceled"
        assert await fetchval(tenant, "SELECT count(*) FROM staged_batch") == 0
        assert (await list_cc_pairs(tenant))[0].status == "paused"
        indexed_while_paused = await doc_count(tenant)
        assert 0 < indexed_while_paused < 200

        await asyncio.to_thread(
            temporal_cli, dev_env, "workflow", "signal", "--workflow-id", wid, "--name", "resume"
        )
        final = await connector_ops.wait_for_attempts(client, tenant, cc, 2, timeout=60)
    assert final.last_attempt_status == "success"
    assert (await list_cc_pairs(tenant))[0].status == "active"
    rows = await attempts(tenant)
    assert [r["status"] for r in rows] == ["canceled", "success"]
    # The second attempt resumed from the checkpoint instead of starting over.
    assert rows[1]["docs_fetched"] == 200 - rows[0]["docs_fetched"]
    assert await doc_count(tenant) == 200


async def test_cancel_run_leaves_no_staged_batches(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, count=300, delay_ms=10)
        await eventually(lambda: _fetched_at_least(client, tenant, cc, 20), timeout=30)
        await connector_ops.send(client, tenant, cc, "cancel_run")
        final = await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=30)
        assert final.state == RunState.IDLE
    assert final.last_attempt_status == "canceled"
    rows = await attempts(tenant)
    assert rows[0]["status"] == "canceled"
    assert rows[0]["finished_at"] is not None
    assert await fetchval(tenant, "SELECT count(*) FROM staged_batch") == 0
    assert await doc_count(tenant) < 300


async def _fetched_at_least(client: Client, tenant: str, cc: int, n: int) -> bool:
    progress = await connector_ops.progress(client, tenant, cc)
    return progress.counts.docs_fetched >= n


async def _in_state(client: Client, tenant: str, cc: int, state: RunState) -> object:
    progress = await connector_ops.progress(client, tenant, cc)
    return progress if progress.state == state and progress.attempt_id is None else None


# --- failures -----------------------------------------------------------------------------


async def test_per_document_failures_are_recorded_and_the_run_completes(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, count=50, fail_every=7)
        final = await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=60)
    assert final.last_attempt_status == "completed_with_errors"
    errors = await fetch(tenant, "SELECT document_id, stage FROM index_attempt_error")
    assert len(errors) == 7
    assert {e["stage"] for e in errors} == {"fetching"}
    assert await doc_count(tenant) == 43
    row = (await attempts(tenant))[0]
    assert row["docs_failed"] == 7 and row["docs_indexed"] == 43


@pytest.mark.faults
async def test_duplicates_are_not_failures(dev_env: WorkflowEnvironment, tenant: str) -> None:
    client = dev_env.client
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, count=40, duplicate_every=4)
        final = await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=60)
    assert final.last_attempt_status == "success"
    # Every 4th position repeats the previous ID: 10 duplicates, 30 distinct documents.
    assert await doc_count(tenant) == 30
    assert await fetchval(tenant, "SELECT count(*) FROM index_attempt_error") == 0


async def test_a_hanging_connector_is_cut_off_by_its_heartbeat_timeout(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    tuning = FAST.model_copy(update={"fetch_heartbeat_seconds": 2, "batches_per_fetch": 10})
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, tuning=tuning, count=60, hang_at=35)
        final = await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=60)
    assert final.last_attempt_status == "success"
    assert await doc_count(tenant) == 60
    wid = connector_workflow_id(tenant, cc)
    fetch_attempts = await activity_attempts(client, wid, "fetch_documents")
    assert 2 in fetch_attempts, fetch_attempts  # the hung try timed out and was retried
    row = (await attempts(tenant))[0]
    # Resumed from the heartbeat: the 30 documents staged before the hang were not re-fetched.
    assert row["docs_fetched"] == 60


@pytest.mark.faults
async def test_bad_credentials_mark_the_connector_invalid_at_once(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, count=30, error_at=12, error_kind="credentials")
        final = await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=60)
        assert final.last_attempt_status == "failed"
        assert final.state == RunState.INVALID
        assert final.invalid_reason and "refused the credential" in final.invalid_reason
    wid = connector_workflow_id(tenant, cc)
    assert await activity_attempts(client, wid, "fetch_documents") == [1]  # not retried
    pair = (await list_cc_pairs(tenant))[0]
    assert pair.status == "invalid"
    assert pair.flag_reason and "credential" in pair.flag_reason
    assert await fetchval(tenant, "SELECT count(*) FROM staged_batch") == 0


@pytest.mark.faults
async def test_repeated_transient_failures_flag_the_connector_after_five(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    tuning = FAST.model_copy(update={"fetch_attempts": 1})
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, tuning=tuning, count=30, error_at=5)
        for n in range(1, 6):
            progress = await connector_ops.wait_for_attempts(client, tenant, cc, n, timeout=60)
            assert progress.last_attempt_status == "failed"
            pair = (await list_cc_pairs(tenant))[0]
            # Transient errors never invalidate; the flag appears with the fifth failure.
            assert pair.status == "active"
            assert (pair.flag_reason is not None) == (n == 5), (n, pair.flag_reason)
            if n < 5:
                await connector_ops.index_now(client, tenant, cc)
    assert progress.consecutive_failures == 5
    assert progress.state == RunState.IDLE


async def test_index_from_the_beginning_refetches_everything(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, count=35)
        await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=60)
        await connector_ops.index_now(client, tenant, cc)
        await connector_ops.wait_for_attempts(client, tenant, cc, 2, timeout=60)
        await connector_ops.index_now(client, tenant, cc, from_beginning=True)
        await connector_ops.wait_for_attempts(client, tenant, cc, 3, timeout=60)
    rows = await attempts(tenant)
    # A finished pass makes the next one start over (synthetic has no `since`), and a
    # from-beginning run re-fetches all; unchanged content is skipped each time.
    assert [r["docs_fetched"] for r in rows] == [35, 35, 35]
    assert rows[2]["from_beginning"] is True
    assert rows[2]["docs_skipped"] == 35
    assert await doc_count(tenant) == 35


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "config", "refresh", "message"),
    [
        ("dropbox", {}, None, "unknown source 'dropbox'"),
        ("filesystem", {"path": "/no/such/folder"}, None, "path"),
        ("synthetic", {"count": -1}, None, "count"),
        ("synthetic", {"count": 5, "colour": "red"}, None, "colour"),
        ("web", {"start_url": "ftp://example.org"}, None, "start_url"),
        ("synthetic", {"count": 5}, -10, "refresh_interval_seconds"),
    ],
)
async def test_bad_configurations_are_rejected_and_nothing_is_created(
    dev_env: WorkflowEnvironment,
    tenant: str,
    source: str,
    config: dict[str, object],
    refresh: int | None,
    message: str,
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        await connector_ops.add_connector(
            dev_env.client,
            tenant,
            name="bad",
            source=source,
            config=config,
            refresh_interval_seconds=refresh,
        )
    assert message in str(caught.value)
    assert isinstance(caught.value, (ConnectorConfigError, ConfigurationError))
    assert await list_cc_pairs(tenant) == []
    assert await fetchval(tenant, "SELECT count(*) FROM connector") == 0


# --- a real corpus ------------------------------------------------------------------------


async def test_filesystem_corpus_is_searchable_and_incremental(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path
) -> None:
    (tmp_path / "guide").mkdir()
    (tmp_path / "guide" / "heartbeats.md").write_text(
        "# Heartbeats\n\nA fetch activity heartbeats whenever the connector yields a "
        "document, so a hung connector misses its heartbeat timeout and is retried.\n"
    )
    (tmp_path / "guide" / "tenants.md").write_text(
        "# Tenants\n\nEvery tenant has its own PostgreSQL schema; the tenant travels in "
        "Temporal headers.\n"
    )
    (tmp_path / "index.html").write_text(
        "<html><head><title>Pelicans</title></head><body><p>Pelicans skim the waves "
        "at dawn.</p></body></html>"
    )
    client = dev_env.client
    async with running_workers(client):
        pair = await connector_ops.add_connector(
            client,
            tenant,
            name="docs",
            source="filesystem",
            config={"path": str(tmp_path)},
            tuning=FAST,
        )
        first = await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=60)
        assert first.last_attempt_status == "success"
        hits = await search_chunks(tenant, "hung connector heartbeat timeout", limit=3)
        assert hits[0].title == "Heartbeats"
        hits = await search_chunks(tenant, "pelicans", limit=3)
        assert hits[0].title == "Pelicans"

        # The next run is incremental (files changed since the last pass began, with an
        # overlap window that still covers these fresh files); unchanged ones cost nothing.
        (tmp_path / "guide" / "tenants.md").write_text("# Tenants\n\nSchemas, one per tenant.\n")
        await connector_ops.index_now(client, tenant, pair.id)
        await connector_ops.wait_for_attempts(client, tenant, pair.id, 2, timeout=60)
    rows = await attempts(tenant)
    assert rows[1]["docs_indexed"] == 1
    assert rows[1]["docs_skipped"] == rows[1]["docs_fetched"] - 1
    content = await fetchval(
        tenant,
        "SELECT string_agg(content, ' ') FROM chunk WHERE document_id = $1",
        f"file://{tmp_path.resolve()}/guide/tenants.md",  # IDs carry the resolved folder
    )
    assert "one per tenant" in content


async def test_a_slow_but_live_connector_is_never_cut_off(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    """A rate limit longer than the heartbeat timeout: the connector stays alive while it
    waits, so the run is neither timed out nor retried (unlike a timer-less watchdog)."""
    client = dev_env.client
    tuning = FAST.model_copy(update={"fetch_heartbeat_seconds": 1})
    async with running_workers(client):
        cc = await add_synthetic(
            client, tenant, tuning=tuning, count=20, rate_limit_every=10, rate_limit_seconds=2.5
        )
        final = await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=60)
    assert final.last_attempt_status == "success"
    assert await doc_count(tenant) == 20
    wid = connector_workflow_id(tenant, cc)
    assert set(await activity_attempts(client, wid, "fetch_documents")) == {1}


async def test_recorded_histories_replay_deterministically(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    """Every run of a connector (signals, continue-as-new, failures) replays against the
    current workflow code: the check that makes deploys of long-lived workflows safe."""
    client = dev_env.client
    tuning = FAST.model_copy(update={"batches_before_continue_as_new": 2})
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, tuning=tuning, count=45, fail_every=9)
        await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=60)
        await connector_ops.send(client, tenant, cc, "pause")
        await eventually(lambda: _in_state(client, tenant, cc, RunState.PAUSED))
    wid = connector_workflow_id(tenant, cc)
    replayer = Replayer(
        workflows=[ConnectorWorkflow],
        data_converter=data_converter(get_settings()),
        interceptors=[TenantInterceptor()],
    )
    histories = [
        await client.get_workflow_handle(wid, run_id=wf.run_id).fetch_history()
        async for wf in client.list_workflows(f'WorkflowId = "{wid}"')
    ]
    assert len(histories) >= 3
    for history in histories:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, result.replay_failure


async def test_canceling_the_workflow_closes_its_attempt(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    """`temporal workflow cancel` (or Cancel in the Web UI) mid-run: nothing is left in
    progress and no staged batch survives."""
    client = dev_env.client
    async with running_workers(client):
        cc = await add_synthetic(client, tenant, count=300, delay_ms=10)
        await eventually(lambda: _fetched_at_least(client, tenant, cc, 20), timeout=30)
        wid = connector_workflow_id(tenant, cc)
        await asyncio.to_thread(temporal_cli, dev_env, "workflow", "cancel", "--workflow-id", wid)
        handle = client.get_workflow_handle(wid)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        described = await handle.describe()
    assert described.status == WorkflowExecutionStatus.CANCELED
    rows = await attempts(tenant)
    assert [r["status"] for r in rows] == ["canceled"]
    assert rows[0]["error_message"] == "connector workflow canceled"
    assert await fetchval(tenant, "SELECT count(*) FROM staged_batch") == 0
