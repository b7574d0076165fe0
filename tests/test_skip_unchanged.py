"""A re-run drops documents the source marks unchanged before staging them; a change of
readers (ACL) with the same ``updated_at`` still goes through; from-the-beginning runs
stage everything (issue 19: an unchanged re-run at least 20× faster than the first)."""

from __future__ import annotations

import os
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from sluice import connector_ops
from tests.support import FAST, fetch, fetchval, running_workers


async def _last_attempt(tenant: str) -> dict[str, int]:
    rows = await fetch(
        tenant,
        "SELECT batches, docs_fetched, docs_skipped, docs_indexed, chunks_written "
        "FROM index_attempt ORDER BY id DESC LIMIT 1",
    )
    return dict(rows[0])


async def test_an_unchanged_rerun_stages_nothing_and_from_the_beginning_stages_all(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    async with running_workers(client):
        pair = await connector_ops.add_connector(
            client, tenant, name="same", source="synthetic", config={"count": 120}, tuning=FAST
        )
        await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=120)
        await connector_ops.index_now(client, tenant, pair.id)
        await connector_ops.wait_for_attempts(client, tenant, pair.id, 2, timeout=120)
        rerun = await _last_attempt(tenant)
        await connector_ops.index_now(client, tenant, pair.id, from_beginning=True)
        await connector_ops.wait_for_attempts(client, tenant, pair.id, 3, timeout=120)
        forced = await _last_attempt(tenant)
    assert rerun == {
        "batches": 0,  # nothing staged, nothing processed
        "docs_fetched": 120,
        "docs_skipped": 120,
        "docs_indexed": 0,
        "chunks_written": 0,
    }
    assert forced["batches"] == 12  # every document staged and hashed again
    assert forced["docs_skipped"] == 120 and forced["chunks_written"] == 0
    assert await fetchval(tenant, "SELECT count(*) FROM staged_batch") == 0


async def test_a_reader_change_with_the_same_mtime_is_not_skipped(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path
) -> None:
    """chmod changes who may read a file but not its mtime (updated_at): the ACL is
    compared too, so the change reaches the index on the next incremental run."""
    for n in range(3):
        (tmp_path / f"note{n}.md").write_text(f"# Note {n}\n\nSome text about pelicans {n}.\n")
        os.chmod(tmp_path / f"note{n}.md", 0o644)
    client = dev_env.client
    async with running_workers(client):
        pair = await connector_ops.add_connector(
            client, tenant, name="notes", source="filesystem", config={"path": str(tmp_path)}
        )
        await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=120)
        os.chmod(tmp_path / "note1.md", 0o640)  # no longer world-readable
        await connector_ops.index_now(client, tenant, pair.id)
        await connector_ops.wait_for_attempts(client, tenant, pair.id, 2, timeout=120)
    rerun = await _last_attempt(tenant)
    acl = await fetchval(
        tenant, "SELECT acl FROM document WHERE id LIKE '%note1.md' AND 'public' = ANY(acl)"
    )
    assert acl is None, "note1.md is still public"
    assert rerun["batches"] == 1 and rerun["docs_indexed"] == 1
