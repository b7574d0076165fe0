"""Safe deploys of long-lived workflows: committed histories replay against today's code.

Connector workflows sit for hours in the same code path (idle on a timer, paused,
mid-attempt). A deploy whose workflow code issues different commands for an
existing history breaks every one of them at once. So histories of representative
runs are recorded once and **committed** under ``tests/histories/``; this module
replays each against the current code. A change to a running code path must be
guarded with ``workflow.patched`` (docs/architecture.md, "Changing workflow code"),
or these tests fail.

Recording the scenarios that have no file yet:
``SLUICE_RECORD_HISTORIES=1 uv run pytest tests/test_replay.py -k record``; existing
files are kept (their value is that they predate later changes), unless
``SLUICE_RECORD_HISTORIES=overwrite`` (only when a patch has been retired on purpose).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from schedules.models import SweepInput
from sluice import connector_ops, model_swap
from sluice.ccpairs import list_cc_pairs
from sluice.config import get_settings
from sluice.documents import ops as document_ops
from sluice.exports import ops as export_ops
from sluice.exports.models import ExportKind, ExportRequest
from sluice.index.generations import EmbeddingSpec
from sluice.indexing.models import RunState, RunTuning
from sluice.queues import TaskQueue
from sluice.sandbox import ops as sandbox_ops
from sluice.sandbox.models import SandboxRequest
from sluice.scheduler import TemporalTaskScheduler
from sluice.temporal.client import data_converter
from sluice.temporal.interceptor import TenantInterceptor
from sluice.temporal.workflow_ids import (
    connector_workflow_id,
    deletion_workflow_id,
    document_index_workflow_id,
    permission_sync_workflow_id,
    pruning_workflow_id,
    user_file_delete_workflow_id,
    user_file_move_workflow_id,
    user_file_workflow_id,
)
from sluice.userfiles import ops as user_file_ops
from tests.support import FAST, eventually, running_workers
from tests.unguarded_change import UnguardedChange
from workflows.connector import ConnectorWorkflow
from workflows.deletion import ConnectorDeletionWorkflow
from workflows.document_index import DocumentIndexWorkflow
from workflows.export import CsvExportWorkflow
from workflows.model_swap import ModelSwapWorkflow
from workflows.permission_sync import ConnectorPermissionSyncWorkflow
from workflows.pruning import ConnectorPruningWorkflow
from workflows.sandbox import SandboxWorkflow
from workflows.sweep import SweepWorkflow
from workflows.user_files import UserFileDeleteWorkflow, UserFileMoveWorkflow, UserFileWorkflow

HISTORIES = Path(__file__).parent / "histories"
SCENARIOS = (
    "attempt_completed",
    "idle_on_timer",
    "mid_attempt",
    "paused",
    "continued_as_new_mid_attempt",
    "canceled",
    "deleting",
    "deletion_workflow",
    "model_swap_completed",
    "model_swap_canceled",
    "connector_pruned",
    "pruning_workflow",
    "sweep_reconcile",
    "document_index_created",
    "document_index_create_then_delete",
    "user_file_processed",
    "user_file_moved",
    "user_file_deleted",
    "csv_export",
    "sandbox_run",
    "connector_permission_synced",
    "permission_sync_workflow",
    "rerun_skipped_unchanged",
)
OTHER_WORKFLOW_TYPES = (
    "deletion_workflow",
    "model_swap_completed",
    "model_swap_canceled",
    "pruning_workflow",
    "sweep_reconcile",
    "document_index_created",
    "document_index_create_then_delete",
    "user_file_processed",
    "user_file_moved",
    "user_file_deleted",
    "csv_export",
    "sandbox_run",
    "permission_sync_workflow",
)


def replayer(*workflows: type) -> Replayer:
    return Replayer(
        workflows=list(workflows)
        or [
            ConnectorWorkflow,
            ConnectorDeletionWorkflow,
            ModelSwapWorkflow,
            ConnectorPruningWorkflow,
            SweepWorkflow,
            DocumentIndexWorkflow,
            UserFileWorkflow,
            UserFileMoveWorkflow,
            UserFileDeleteWorkflow,
            CsvExportWorkflow,
            SandboxWorkflow,
            ConnectorPermissionSyncWorkflow,
        ],
        data_converter=data_converter(get_settings()),
        interceptors=[TenantInterceptor()],
    )


def committed(name: str) -> WorkflowHistory:
    path = HISTORIES / f"{name}.json"
    return WorkflowHistory.from_json(f"recorded/{name}", path.read_text())


@pytest.mark.parametrize("name", SCENARIOS)
async def test_committed_history_replays(name: str) -> None:
    result = await replayer().replay_workflow(committed(name), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{name}: {result.replay_failure}"


async def test_an_unguarded_change_is_caught() -> None:
    failures = []
    for name in SCENARIOS:
        if name in OTHER_WORKFLOW_TYPES:
            continue  # another workflow type: the changed connector workflow cannot meet it
        result = await replayer(UnguardedChange).replay_workflow(
            committed(name), raise_on_replay_failure=False
        )
        failures.append(result.replay_failure)
    assert all(failure is not None for failure in failures), failures
    assert "nondeterminism" in str(failures[0]).lower() or "Nondeterminism" in repr(failures[0])


# --- recording (run on purpose, never in CI) ------------------------------------------------


@pytest.mark.skipif(
    not os.environ.get("SLUICE_RECORD_HISTORIES"), reason="set SLUICE_RECORD_HISTORIES=1"
)
async def test_record_histories(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = dev_env.client
    HISTORIES.mkdir(exist_ok=True)
    monkeypatch.setenv("SLUICE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    async with running_workers(client):
        await _record_user_file_export_sandbox(client, tenant, tmp_path)
        await _record_idle(client, tenant)
        await _record_mid_attempt_and_paused(client, tenant)
        await _record_continue_as_new(client, tenant)
        await _record_canceled(client, tenant)
        await _record_deleting(client, tenant)
        await _record_model_swaps(client, tenant)
        await _record_pruning_and_sweep(client, tenant)
        await _record_document_index(client, tenant)
        await _record_permission_sync(client, tenant)
        await _record_skipped_rerun(client, tenant)


async def _save(handle: WorkflowHandle[Any, Any], name: str) -> None:
    path = HISTORIES / f"{name}.json"
    if path.exists() and os.environ.get("SLUICE_RECORD_HISTORIES") != "overwrite":
        return
    history = await handle.fetch_history()
    path.write_text(history.to_json())


async def _runs(client: Client, workflow_id: str) -> list[str]:
    found = [wf async for wf in client.list_workflows(f'WorkflowId = "{workflow_id}"')]
    return [wf.run_id for wf in sorted(found, key=lambda wf: wf.start_time)]


async def _add(client: Client, tenant: str, tuning: RunTuning = FAST, **config: object) -> int:
    pair = await connector_ops.add_connector(
        client,
        tenant,
        name=f"recorded-{len(await list_cc_pairs(tenant))}",
        source="synthetic",
        config={"size_bytes": 400, **config},
        refresh_interval_seconds=3600,
        tuning=tuning,
    )
    return pair.id


async def _record_idle(client: Client, tenant: str) -> None:
    cc = await _add(client, tenant, count=25, fail_every=9)
    await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=60)
    wid = connector_workflow_id(tenant, cc)
    await eventually(lambda: _state_is(client, tenant, cc, RunState.IDLE))
    first, *_, last = await _runs(client, wid)
    await _save(client.get_workflow_handle(wid, run_id=first), "attempt_completed")
    await _save(client.get_workflow_handle(wid, run_id=last), "idle_on_timer")


async def _record_skipped_rerun(client: Client, tenant: str) -> None:
    """A second attempt that stages nothing: every document is unchanged."""
    cc = await _add(client, tenant, count=25)
    await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=60)
    await eventually(lambda: _state_is(client, tenant, cc, RunState.IDLE))
    await connector_ops.index_now(client, tenant, cc)
    await connector_ops.wait_for_attempts(client, tenant, cc, 2, timeout=60)
    wid = connector_workflow_id(tenant, cc)
    await _save(
        client.get_workflow_handle(wid, run_id=(await _runs(client, wid))[-2]),
        "rerun_skipped_unchanged",
    )


async def _record_mid_attempt_and_paused(client: Client, tenant: str) -> None:
    cc = await _add(client, tenant, count=400, delay_ms=20)
    handle = connector_ops.handle(client, tenant, cc)
    await eventually(lambda: _indexed_at_least(client, tenant, cc, 40), timeout=60)
    await _save(handle, "mid_attempt")
    await connector_ops.send(client, tenant, cc, "pause")
    await eventually(lambda: _state_is(client, tenant, cc, RunState.PAUSED), timeout=60)
    await _save(handle, "paused")


async def _record_continue_as_new(client: Client, tenant: str) -> None:
    tuning = FAST.model_copy(update={"batches_per_fetch": 1, "batches_before_continue_as_new": 2})
    cc = await _add(client, tenant, tuning=tuning, count=60)
    await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=90)
    wid = connector_workflow_id(tenant, cc)
    runs = await _runs(client, wid)
    assert len(runs) >= 3
    await _save(client.get_workflow_handle(wid, run_id=runs[1]), "continued_as_new_mid_attempt")


async def _record_canceled(client: Client, tenant: str) -> None:
    cc = await _add(client, tenant, count=300, delay_ms=10)
    handle = connector_ops.handle(client, tenant, cc)
    await eventually(lambda: _indexed_at_least(client, tenant, cc, 20), timeout=60)
    await handle.cancel()
    with pytest.raises(Exception):  # noqa: B017 - WorkflowFailureError(cause=CancelledError)
        await handle.result()
    await asyncio.sleep(0.5)
    await _save(handle, "canceled")


async def _record_deleting(client: Client, tenant: str) -> None:
    cc = await _add(client, tenant, count=300, delay_ms=10)
    await eventually(lambda: _indexed_at_least(client, tenant, cc, 20), timeout=60)
    await connector_ops.delete_connector(client, tenant, cc)
    await _save(connector_ops.handle(client, tenant, cc), "deleting")
    deletion = client.get_workflow_handle(deletion_workflow_id(tenant, cc))
    await _save(deletion, "deletion_workflow")


async def _record_model_swaps(client: Client, tenant: str) -> None:
    smaller = EmbeddingSpec(provider="local", dim=128)
    done = await model_swap.switch_model(client, tenant, smaller, retire_after_seconds=1)
    await done.result()
    await _save(done, "model_swap_completed")
    tiny = EmbeddingSpec(provider="local", dim=64)
    canceled = await model_swap.switch_model(client, tenant, tiny, page_size=1)

    async def embedding() -> bool:
        listed = await model_swap.generations(tenant)
        return listed[-1].id == 3 and listed[-1].chunks_done > 0

    await eventually(embedding, timeout=60)
    await model_swap.cancel_swap(client, tenant)
    with pytest.raises(Exception):  # noqa: B017 - WorkflowFailureError(cause=CancelledError)
        await canceled.result()
    await _save(canceled, "model_swap_canceled")


async def _record_pruning_and_sweep(client: Client, tenant: str) -> None:
    cc = await _add(client, tenant, count=30)
    await connector_ops.wait_for_attempts(client, tenant, cc, 1, timeout=60)
    await connector_ops.update_connector(client, tenant, cc, config={"count": 20})
    result = await connector_ops.prune(client, tenant, cc, wait=True)
    assert result is not None and result.unlinked == 10
    await eventually(lambda: _state_is(client, tenant, cc, RunState.IDLE))
    wid = connector_workflow_id(tenant, cc)
    runs = await _runs(client, wid)
    await _save(client.get_workflow_handle(wid, run_id=runs[-2]), "connector_pruned")
    await _save(client.get_workflow_handle(pruning_workflow_id(tenant, cc)), "pruning_workflow")
    sweep = await client.start_workflow(
        SweepWorkflow.run,
        SweepInput(tenant_id=tenant, job="connector-reconcile"),
        id=f"recorded-sweep/{tenant}",
        task_queue=TaskQueue.PRIMARY.value,
    )
    await sweep.result()
    await _save(sweep, "sweep_reconcile")


async def _record_document_index(client: Client, tenant: str) -> None:
    """Seed 002: one round building every type; then a create and a delete requested back
    to back (the delete arrives as a ``recheck`` signal during the first round)."""
    scheduler = TemporalTaskScheduler(client, tenant)
    text = b"The Glacier Express crosses the Landwasser Viaduct. Rhaetian Railway runs it."
    created = await document_ops.add_document(tenant, "recorded", "a.md", text)
    await scheduler.schedule_create_index(created, [])
    handle = client.get_workflow_handle(document_index_workflow_id(tenant, created))
    await handle.result()
    await _save(handle, "document_index_created")
    both = await document_ops.add_document(tenant, "recorded", "b.md", text)
    await scheduler.schedule_create_index(both, ["vector", "fulltext"])
    await scheduler.schedule_delete_index(both, ["vector", "fulltext"])
    handle = client.get_workflow_handle(document_index_workflow_id(tenant, both))
    await handle.result()
    await _save(handle, "document_index_create_then_delete")


async def _record_user_file_export_sandbox(client: Client, tenant: str, tmp: Path) -> None:
    path = tmp / "notes.md"
    path.write_text("# Notes\n\nA user's notes about recorded histories.")
    info = await user_file_ops.upload(client, tenant, path, "ann", "alpha")
    await user_file_ops.wait_processed(client, tenant, info.id)
    await _save(
        client.get_workflow_handle(user_file_workflow_id(tenant, info.id)), "user_file_processed"
    )
    await user_file_ops.move(client, tenant, info.id, "beta")
    await _save(
        client.get_workflow_handle(user_file_move_workflow_id(tenant, info.id)), "user_file_moved"
    )
    await user_file_ops.delete(client, tenant, info.id)
    await _save(
        client.get_workflow_handle(user_file_delete_workflow_id(tenant, info.id)),
        "user_file_deleted",
    )
    export = ExportRequest(
        tenant_id=tenant, export_id="recorded", kind=ExportKind.ATTEMPTS, page_size=1
    )
    handle = await export_ops.start(client, export)
    await handle.result()
    await _save(handle, "csv_export")
    run = SandboxRequest(tenant_id=tenant, run_id="recorded", command=["sh", "-c", "echo hi"])
    sandbox = await sandbox_ops.start(client, run)
    await sandbox.result()
    await _save(sandbox, "sandbox_run")


async def _record_permission_sync(client: Client, tenant: str) -> None:
    """A filesystem pair whose one file turned private: the sync writes one ACL."""
    with tempfile.TemporaryDirectory() as root:
        for i in range(3):
            (Path(root) / f"note{i}.md").write_text(f"# note {i}\n\nPermission notes {i}.\n")
        pair = await connector_ops.add_connector(
            client,
            tenant,
            name="recorded-permissions",
            source="filesystem",
            config={"path": root},
            refresh_interval_seconds=3600,
            tuning=FAST,
        )
        await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=60)
        (Path(root) / "note0.md").chmod(0o600)
        result = await connector_ops.sync_permissions(client, tenant, pair.id, wait=True)
        assert result is not None and result.written == 1
    await eventually(lambda: _state_is(client, tenant, pair.id, RunState.IDLE))
    wid = connector_workflow_id(tenant, pair.id)
    runs = await _runs(client, wid)
    await _save(client.get_workflow_handle(wid, run_id=runs[-2]), "connector_permission_synced")
    child = client.get_workflow_handle(permission_sync_workflow_id(tenant, pair.id))
    await _save(child, "permission_sync_workflow")


async def _state_is(client: Client, tenant: str, cc: int, state: RunState) -> bool:
    try:
        return (await connector_ops.progress(client, tenant, cc)).state == state
    except Exception:
        return False


async def _indexed_at_least(client: Client, tenant: str, cc: int, docs: int) -> bool:
    try:
        progress = await connector_ops.progress(client, tenant, cc)
    except Exception:
        return False
    return progress.counts.docs_indexed >= docs
