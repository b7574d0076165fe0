"""Retry failed documents: only the documents recent attempts recorded as failed are
fetched again, by ID, without a from-the-beginning run (the original platform's users
had to re-index everything to recover a handful of documents)."""

from __future__ import annotations

from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from sluice import connector_ops
from tests.support import FAST, fetch, fetchval, running_workers


async def test_retry_failed_reindexes_exactly_the_failed_documents(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    async with running_workers(client):
        pair = await connector_ops.add_connector(
            client,
            tenant,
            name="flaky",
            source="synthetic",
            config={"count": 50, "size_bytes": 300, "fail_every": 7},
            tuning=FAST,
        )
        first = await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=60)
        assert first.last_attempt_status == "completed_with_errors"
        failed = [
            r["document_id"]
            for r in await fetch(tenant, "SELECT document_id FROM index_attempt_error")
        ]
        assert sorted(failed) == sorted(f"syn:0:{p}" for p in (6, 13, 20, 27, 34, 41, 48))
        checkpoint_before = first.checkpoint

        # The source is fixed (a live settings change), then only the failures are retried.
        await connector_ops.update_connector(client, tenant, pair.id, config={"fail_every": None})
        await connector_ops.retry_failed(client, tenant, pair.id)
        second = await connector_ops.wait_for_attempts(client, tenant, pair.id, 2, timeout=60)
    assert second.last_attempt_status == "success"
    counts = second.last_attempt_counts
    assert counts is not None
    assert (counts.docs_fetched, counts.docs_indexed, counts.docs_skipped) == (7, 7, 0)
    assert await fetchval(tenant, "SELECT count(*) FROM document") == 50
    assert second.checkpoint == checkpoint_before  # the connector's own position is kept


async def test_retry_failed_on_a_folder_rereads_only_the_broken_files(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path
) -> None:
    client = dev_env.client
    for n in range(12):
        (tmp_path / f"ok{n}.md").write_text(f"# Fine {n}\n\nreadable\n")
    (tmp_path / "broken.md").write_bytes(b"\xff\xfe not utf-8 \xc3\x28")
    async with running_workers(client):
        pair = await connector_ops.add_connector(
            client,
            tenant,
            name="folder",
            source="filesystem",
            config={"path": str(tmp_path)},
            tuning=FAST,
        )
        first = await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=60)
        assert first.last_attempt_status == "completed_with_errors"
        (tmp_path / "broken.md").write_text("# Repaired\n\nnow it reads\n")
        await connector_ops.retry_failed(client, tenant, pair.id)
        second = await connector_ops.wait_for_attempts(client, tenant, pair.id, 2, timeout=60)
    counts = second.last_attempt_counts
    assert second.last_attempt_status == "success"
    assert counts is not None and (counts.docs_fetched, counts.docs_indexed) == (1, 1)
    assert await fetchval(tenant, "SELECT count(*) FROM document") == 13
