"""Pruning: files deleted from a folder leave the index, between attempts, on the dev server.

A document another cc-pair still holds survives; a listing that comes back empty is
refused instead of wiping the index; the pruning-check sweep asks every pair that is due.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from schedules.models import SweepInput, SweepResult
from sluice import connector_ops
from sluice.index.search import search
from sluice.queues import TaskQueue
from tests.support import FAST, eventually, fetch, fetchval, running_workers
from workflows.sweep import SweepWorkflow


def folder(root: Path, names: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / name).write_text(f"# {name}\n\nThe {name.split('.')[0]} notes about quokkas.\n")
    return root


async def add_folder(env: WorkflowEnvironment, tenant: str, path: Path, name: str) -> int:
    pair = await connector_ops.add_connector(
        env.client, tenant, name=name, source="filesystem", config={"path": str(path)}, tuning=FAST
    )
    await connector_ops.wait_for_attempts(env.client, tenant, pair.id, 1, timeout=60)
    return pair.id


async def held_by(tenant: str, cc: int) -> set[str]:
    rows = await fetch(
        tenant,
        "SELECT document_id FROM document_by_connector_credential_pair WHERE cc_pair_id = $1",
        cc,
    )
    return {r[0].rsplit("/", 1)[1] for r in rows}


@pytest.mark.faults
async def test_deleted_files_are_pruned_and_shared_documents_survive(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path
) -> None:
    client = dev_env.client
    docs = folder(tmp_path / "docs", ["alpha.md", "beta.md", "gamma.md", "delta.md"])
    async with running_workers(client):
        first = await add_folder(dev_env, tenant, docs, "first")
        second = await add_folder(dev_env, tenant, docs, "second")  # the same files
        assert await fetchval(tenant, "SELECT count(*) FROM document") == 4

        (docs / "beta.md").unlink()
        (docs / "gamma.md").unlink()
        result = await connector_ops.prune(client, tenant, first, wait=True)
        assert result is not None
        assert (result.listed, result.held, result.vanished) == (2, 4, 2)
        # The second pair still holds both: unlinked from the first, not deleted.
        assert (result.unlinked, result.deleted) == (2, 0)
        assert await held_by(tenant, first) == {"alpha.md", "delta.md"}
        assert await fetchval(tenant, "SELECT count(*) FROM document") == 4

        result = await connector_ops.prune(client, tenant, second, wait=True)
        assert result is not None and (result.vanished, result.deleted) == (2, 2)
        assert await fetchval(tenant, "SELECT count(*) FROM document") == 2
        hits = await search(tenant, "beta gamma quokkas notes", k=10)
        assert {h.document_id.rsplit("/", 1)[1] for h in hits} == {"alpha.md", "delta.md"}

        # Pruned and indexed: the connector carries on, the prune is in its progress. The
        # connector records it on its next workflow task after the child's result, which
        # `prune --wait` has already returned: a moment later on a busy machine.
        async def recorded() -> bool:
            progress = await connector_ops.progress(client, tenant, second)
            return progress.last_prune is not None and progress.last_prune.deleted == 2

        await eventually(recorded, timeout=30)


async def test_an_empty_listing_is_refused_not_obeyed(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path
) -> None:
    client = dev_env.client
    docs = folder(tmp_path / "mount", ["one.md", "two.md"])
    async with running_workers(client):
        cc = await add_folder(dev_env, tenant, docs, "mounted")
        for file in docs.iterdir():
            file.unlink()  # say, the share came back unmounted: an empty folder
        result = await connector_ops.prune(client, tenant, cc, wait=True)
    assert result is not None and result.refused is not None
    assert "listed no documents while the connector holds 2" in result.refused
    assert await fetchval(tenant, "SELECT count(*) FROM document") == 2


async def test_the_pruning_check_asks_pairs_that_are_due(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path
) -> None:
    client = dev_env.client
    docs = folder(tmp_path / "due", ["keep.md", "drop.md"])
    async with running_workers(client):
        cc = await add_folder(dev_env, tenant, docs, "due")
        (docs / "drop.md").unlink()
        swept: SweepResult = await client.execute_workflow(
            SweepWorkflow.run,
            SweepInput(tenant_id=tenant, job="pruning-check"),
            id=f"test-sweep/{uuid.uuid4().hex[:8]}",
            task_queue=TaskQueue.PRIMARY.value,
        )
        assert (swept.found, swept.acted) == (1, 1)  # never pruned: due at once

        async def pruned() -> bool:
            progress = await connector_ops.progress(client, tenant, cc)
            return progress.last_prune is not None

        await eventually(pruned, timeout=60)
        assert await held_by(tenant, cc) == {"keep.md"}
        again: SweepResult = await client.execute_workflow(
            SweepWorkflow.run,
            SweepInput(tenant_id=tenant, job="pruning-check"),
            id=f"test-sweep/{uuid.uuid4().hex[:8]}",
            task_queue=TaskQueue.PRIMARY.value,
        )
        assert again.found == 0  # pruned just now: due again in a day
