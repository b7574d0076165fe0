"""Metadata sync: hidden and boost apply at once, ACLs and document sets reach the index
through the sync a change starts, and a change made during a sync is never lost."""

from __future__ import annotations

import asyncio
import uuid

from temporalio.testing import WorkflowEnvironment

from schedules.models import SweepInput, SweepResult
from sluice import connector_ops, metadata_ops
from sluice.db.session import tenant_connection
from sluice.index.search import search
from sluice.indexing.metadata import get_metadata, set_metadata, stale_count, sync_stale_batch
from sluice.queues import TaskQueue
from tests.support import FAST, fetch, fetchval, running_workers
from tests.test_cli import sluice
from workflows.sweep import SweepWorkflow

QUERY = "vector embedding cluster worker queue schedule"


async def synthetic(env: WorkflowEnvironment, tenant: str, name: str, count: int) -> int:
    pair = await connector_ops.add_connector(
        env.client,
        tenant,
        name=name,
        source="synthetic",
        config={"count": count, "name": name},
        tuning=FAST,
    )
    await connector_ops.wait_for_attempts(env.client, tenant, pair.id, 1, timeout=60)
    return pair.id


async def test_hidden_and_boost_apply_at_once_and_acl_after_the_sync(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    async with running_workers(client):
        await synthetic(dev_env, tenant, "meta", 12)
        top = (await search(tenant, QUERY, k=3))[0].document_id
        await metadata_ops.set_document(client, tenant, top, hidden=True)
        assert top not in [h.document_id for h in await search(tenant, QUERY, k=12)]

        last = (await search(tenant, QUERY, k=12))[-1].document_id
        await metadata_ops.set_document(client, tenant, last, boost=9.0)
        assert (await search(tenant, QUERY, k=3))[0].document_id == last

        await metadata_ops.set_document(client, tenant, last, acl=["group:finance"])
        assert await metadata_ops.sync_now(client, tenant) >= 0
        acls = await fetch(tenant, "SELECT DISTINCT acl FROM chunk WHERE document_id = $1", last)
        assert [list(r[0]) for r in acls] == [["group:finance"]]
        as_finance = await search(tenant, QUERY, k=12, acl=["group:finance"])
        assert [h.document_id for h in as_finance] == [last]
        assert last not in [
            h.document_id for h in await search(tenant, QUERY, k=12, acl=["public"])
        ]
        assert not (await metadata_ops.document(tenant, last)).stale


async def test_document_sets_filter_search_once_synced(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    async with running_workers(client):
        first = await synthetic(dev_env, tenant, "alpha", 6)
        await synthetic(dev_env, tenant, "beta", 6)
        await metadata_ops.create_set(tenant, "handbook")
        assert await metadata_ops.add_to_set(client, tenant, "handbook", first) == 6
        await metadata_ops.sync_now(client, tenant)
        hits = await search(tenant, QUERY, k=20, collection="handbook")
        assert len(hits) == 6 and all(":alpha:" in h.document_id for h in hits)
        # Documents the connector indexes later are in the set from their first write.
        await connector_ops.update_connector(
            client, tenant, first, config={"count": 9, "name": "alpha"}
        )
        await connector_ops.index_now(client, tenant, first)
        await connector_ops.wait_for_attempts(client, tenant, first, 2, timeout=60)
        assert len(await search(tenant, QUERY, k=20, collection="handbook")) == 9

        await metadata_ops.remove_from_set(client, tenant, "handbook", first)
        await metadata_ops.sync_now(client, tenant)
        assert await search(tenant, QUERY, k=20, collection="handbook") == []
    sets = await metadata_ops.list_sets(tenant)
    assert [(s.name, s.cc_pairs, s.documents) for s in sets] == [("handbook", [], 0)]


async def test_a_change_during_a_sync_ends_with_the_newest_values(tenant: str) -> None:
    """A sync batch holds its documents' row locks; a change arriving meanwhile waits,
    then makes the document stale again, so the next batch copies the newest ACL."""
    from sluice.ccpairs import create_cc_pair
    from sluice.connectors.models import Document, Section
    from sluice.index.embedding import WordLlamaProvider
    from sluice.indexing.pipeline import index_documents

    pair = await create_cc_pair(tenant, name="race", source="synthetic", config={"count": 1})
    doc = Document(id="d1", source="test", semantic_identifier="d1", sections=[Section(text="x")])
    async with tenant_connection(tenant) as (_, raw):
        await index_documents(raw, pair.id, [doc], WordLlamaProvider())
        await set_metadata(raw, "d1", acl=["user:first"])

    syncing = asyncio.Event()
    release = asyncio.Event()

    async def slow_sync() -> None:
        async with tenant_connection(tenant) as (_, raw):
            assert await sync_stale_batch(raw, 10) == 1
            syncing.set()
            await release.wait()  # the batch's transaction (and its locks) stay open

    async def change_meanwhile() -> None:
        await syncing.wait()
        async with tenant_connection(tenant) as (_, raw):
            await set_metadata(raw, "d1", acl=["user:second"])  # waits for the lock

    sync_task = asyncio.create_task(slow_sync())
    change_task = asyncio.create_task(change_meanwhile())
    await syncing.wait()
    await asyncio.sleep(0.3)
    assert not change_task.done(), "the change must wait for the batch's lock"
    release.set()
    await asyncio.gather(sync_task, change_task)

    async with tenant_connection(tenant) as (_, raw):
        assert (await get_metadata(raw, "d1")).stale
        assert await sync_stale_batch(raw, 10) == 1
        assert await stale_count(raw) == 0
    acl = await fetchval(tenant, "SELECT acl FROM chunk WHERE document_id = 'd1' LIMIT 1")
    assert list(acl) == ["user:second"]


async def test_the_schedule_sweep_catches_a_change_nobody_synced(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    async with running_workers(client):
        await synthetic(dev_env, tenant, "net", 3)
        doc = (await search(tenant, QUERY, k=1))[0].document_id
        async with tenant_connection(tenant) as (_, raw):
            await set_metadata(raw, doc, acl=["user:ann"])  # written, no sync started
        swept: SweepResult = await client.execute_workflow(
            SweepWorkflow.run,
            SweepInput(tenant_id=tenant, job="metadata-sync"),
            id=f"test-sweep/{uuid.uuid4().hex[:8]}",
            task_queue=TaskQueue.PRIMARY.value,
        )
        assert (swept.found, swept.acted) == (1, 1)
        nothing: SweepResult = await client.execute_workflow(
            SweepWorkflow.run,
            SweepInput(tenant_id=tenant, job="metadata-sync"),
            id=f"test-sweep/{uuid.uuid4().hex[:8]}",
            task_queue=TaskQueue.PRIMARY.value,
        )
        assert nothing.found == 0


async def test_metadata_commands(dev_env: WorkflowEnvironment, tenant: str) -> None:
    async with running_workers(dev_env.client):
        cc = await synthetic(dev_env, tenant, "cli", 2)
        doc = (await search(tenant, QUERY, k=1))[0].document_id
        hidden = await sluice(dev_env, tenant, "document", "set", doc, "--hidden", "--wait")
        assert hidden.returncode == 0, hidden.stderr
        assert "hidden=True" in hidden.stdout
        shown = await sluice(dev_env, tenant, "document", "show", doc)
        assert '"hidden": true' in shown.stdout and '"stale": false' in shown.stdout
        missing = await sluice(dev_env, tenant, "document", "set", "nope", "--boost", "1")
        assert missing.returncode == 2 and "document 'nope' does not exist" in missing.stderr
        bad = await sluice(dev_env, tenant, "document-set", "create", "bad name!")
        assert bad.returncode == 2 and "document set name" in bad.stderr
        await sluice(dev_env, tenant, "document-set", "create", "docs")
        added = await sluice(
            dev_env, tenant, "document-set", "add", "docs", "--connector", str(cc), "--wait"
        )
        assert added.returncode == 0, added.stderr
        found = await sluice(dev_env, tenant, "search", "worker", "--collection", "docs", "--json")
        assert found.returncode == 0, found.stderr
        assert '"document_id"' in found.stdout
