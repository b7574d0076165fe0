"""User files on the dev server: indexed for their owner (and project) only, moved between
projects without re-embedding, deleted without a trace, refused with a clear reason."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from schedules.models import SweepInput
from sluice import filestore, metadata_ops
from sluice.config import get_settings
from sluice.queues import TaskQueue
from sluice.userfiles import catalog, ops
from sluice.userfiles.models import document_id
from tests.support import fetch, fetchval, running_workers
from workflows.sweep import SweepWorkflow


@pytest.fixture
def file_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A file store of the test's own (SLUICE_DATA_DIR), for this process and workers."""
    monkeypatch.setenv("SLUICE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path / "data"
    monkeypatch.undo()
    get_settings.cache_clear()


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


async def found(tenant: str, user: str, query: str) -> set[str]:
    return {h.document_id for h in await catalog.search_as(tenant, user, query, k=10)}


async def vector_rows(tenant: str, doc: str) -> list[tuple[str, int, str]]:
    rows = await fetch(
        tenant,
        "SELECT ctid::text, chunk_id, embedding::text FROM chunk_vector_1 "
        "WHERE document_id = $1 ORDER BY chunk_id",
        doc,
    )
    return [tuple(r) for r in rows]


async def test_owner_only_search_move_without_reembedding_and_delete(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path, file_store: Path
) -> None:
    client = dev_env.client
    quokka = "# Quokka plan\n\nThe quokka migration plan moves every quokka to the new island."
    async with running_workers(client):
        ann = await ops.upload(client, tenant, write(tmp_path, "plan.md", quokka), "ann", "alpha")
        bob = await ops.upload(
            client, tenant, write(tmp_path, "bob.txt", "Quokka facts from bob."), "bob"
        )
        ann = await ops.wait_processed(client, tenant, ann.id)
        bob = await ops.wait_processed(client, tenant, bob.id)
        assert (ann.status, bob.status) == ("ready", "ready") and ann.chunk_count >= 1
        doc = document_id(ann.id)
        assert await found(tenant, "ann", "quokka migration") == {doc}
        assert await found(tenant, "bob", "quokka migration") == {document_id(bob.id)}
        assert await found(tenant, "carol", "quokka migration") == set()
        await catalog.add_member(tenant, "alpha", "carol")
        assert await found(tenant, "carol", "quokka migration") == {doc}

        before = await vector_rows(tenant, doc)
        assert before
        await ops.move(client, tenant, ann.id, "beta")
        await metadata_ops.sync_now(client, tenant)
        assert await found(tenant, "carol", "quokka migration") == set()
        await catalog.add_member(tenant, "beta", "dave")
        assert await found(tenant, "dave", "quokka migration") == {doc}
        assert await found(tenant, "ann", "quokka migration") == {doc}
        acls = await fetch(tenant, "SELECT DISTINCT acl FROM chunk WHERE document_id = $1", doc)
        assert [list(r[0]) for r in acls] == [["user:ann", "project:beta"]]
        assert await vector_rows(tenant, doc) == before  # the same rows: nothing re-embedded

        blob = filestore.blob_path(tenant, ann.sha256 or "")
        assert blob.exists()
        outcome = await ops.delete(client, tenant, ann.id)
        assert outcome.status == "deleted"
    for table in (
        "document WHERE id",
        "chunk WHERE document_id",
        "chunk_vector_1 WHERE document_id",
    ):
        assert await fetchval(tenant, f"SELECT count(*) FROM {table} = $1", doc) == 0
    assert await fetchval(tenant, "SELECT count(*) FROM user_file WHERE id = $1", ann.id) == 0
    assert not blob.exists()
    assert await found(tenant, "ann", "quokka migration") == set()


async def test_unreadable_uploads_fail_clearly_and_index_nothing(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path, file_store: Path
) -> None:
    client = dev_env.client
    cases = {
        "corrupt.md": (b"# Notes\n\xff\xfe\xfa broken \x80 bytes", "not valid UTF-8"),
        "photo.png": (b"\x89PNG\r\n\x1a\n....", "unsupported file type .png"),
        "empty.txt": (b"  \n", "file is empty"),
        "binary.txt": (b"text\x00with\x00nuls", "NUL bytes"),
    }
    async with running_workers(client):
        uploaded = {
            name: await ops.upload(client, tenant, write(tmp_path, name, content), "ann")
            for name, (content, _) in cases.items()
        }
        for name, info in uploaded.items():
            done = await ops.wait_processed(client, tenant, info.id)
            assert done.status == "failed", name
            assert cases[name][1] in (done.error or ""), (name, done.error)
    assert await fetchval(tenant, "SELECT count(*) FROM document") == 0
    assert await fetchval(tenant, "SELECT count(*) FROM chunk") == 0


async def test_oversized_upload_is_failed_at_once(
    dev_env: WorkflowEnvironment,
    tenant: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    file_store: Path,
) -> None:
    monkeypatch.setenv("USER_FILE_MAX_BYTES", "100")
    get_settings.cache_clear()
    info = await ops.upload(dev_env.client, tenant, write(tmp_path, "big.txt", "x" * 500), "ann")
    assert info.status == "failed" and "larger than 100 bytes" in (info.error or "")
    assert not list((file_store / "files" / tenant / "blobs").rglob("*"))


async def test_sweep_starts_a_lost_processing_again(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path, file_store: Path
) -> None:
    client = dev_env.client
    path = write(tmp_path, "lost.md", "# Lost\n\nAn upload whose CLI died before its workflow.")
    info = await ops.upload(client, tenant, path, "ann", start=False)
    await fetch(
        tenant, "UPDATE user_file SET created_at = now() - $1::interval", timedelta(minutes=5)
    )
    async with running_workers(client):
        result = await client.execute_workflow(
            SweepWorkflow.run,
            SweepInput(tenant_id=tenant, job="user-file-processing-check"),
            id=f"test-user-file-sweep/{tenant}",
            task_queue=TaskQueue.PRIMARY.value,
        )
        assert (result.found, result.acted) == (1, 1)
        assert (await ops.wait_processed(client, tenant, info.id)).status == "ready"
