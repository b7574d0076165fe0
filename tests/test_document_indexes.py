"""Seed 002's document indexes end to end on real servers: TaskScheduler → parse →
parallel index types → notify; failures, version bumps, deletes, GC and reconcile."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from temporalio import activity
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.document_index import DocumentIndexActivities
from sluice.agent_queue import RedisAgentMessageQueue
from sluice.config import get_settings
from sluice.documents import ops
from sluice.documents.evaluations import Question, add_evaluation
from sluice.documents.models import BuildRequest, BuildResult
from sluice.errors import CollectionDeleted, ConfigurationError, NotFoundError
from sluice.index.embedders import Embedders
from sluice.index.search import search
from sluice.queues import TaskQueue
from sluice.scheduler import TaskResult, TaskStatus, TemporalTaskScheduler
from sluice.temporal.tenant_context import tenant_scope
from sluice.temporal.workflow_ids import document_index_workflow_id
from tests.support import eventually, fetch, fetchval, only_line, running_workers
from tests.test_cli import sluice
from tests.test_schedules import run_sweep
from workers.collector import collector_paused
from workers.runner import embedder_factory
from workflows.document_index import DocumentIndexWorkflow

ARTICLE = b"""# Glacier Railway Notes

The Glacier Express runs between Zermatt and St. Moritz through the Swiss Alps.
Engineers at Rhaetian Railway maintain the Landwasser Viaduct near Filisur.
The Oberalp Pass is the highest point of the Glacier Express route.

## Rolling stock

Rhaetian Railway operates panoramic coaches built by Stadler Rail in Bussnang.
Each `panorama_coach` seats fifty travellers and carries a dining section.
Winter storms sometimes close the Oberalp Pass, and Rhaetian Railway then runs buses.
"""


async def wait_done(scheduler: TemporalTaskScheduler, task_id: str, timeout: float = 60) -> Any:
    async def done() -> TaskResult | None:
        result = await scheduler.get_task_status(task_id)
        return result if result is not None and result.done else None

    return await eventually(done, timeout=timeout, interval=0.2)


async def index_rows(tenant: str, doc_id: str) -> dict[str, Any]:
    rows = await fetch(tenant, "SELECT * FROM document_index WHERE document_id = $1", doc_id)
    return {r["index_type"]: r for r in rows}


async def traces(tenant: str, doc_id: str) -> dict[str, int]:
    """Every row a document's indexes can leave behind."""
    counts: dict[str, int] = {}
    for table, column in (
        ("document", "id"),
        ("chunk", "document_id"),
        ("chunk_vector_1", "document_id"),
        ("graph_mention", "document_id"),
        ("graph_edge", "document_id"),
        ("document_summary", "document_id"),
        ("document_index", "document_id"),
    ):
        counts[table] = await fetchval(
            tenant, f"SELECT count(*) FROM {table} WHERE {column} = $1", doc_id
        )
    return counts


async def test_create_makes_every_type_active_and_searchable(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client: Client = dev_env.client
    scheduler = TemporalTaskScheduler(client, tenant)
    doc_id = await ops.add_document(tenant, "alps", "glacier.md", ARTICLE)
    async with running_workers(client):
        task_id = await scheduler.schedule_create_index(
            doc_id, ["vector", "fulltext", "graph", "summary"], {}
        )
        result = await wait_done(scheduler, task_id)
        # notify runs after the last index is active, so the task reads done a moment
        # before the round is published: read it while the workers still run, bounded.
        event = await asyncio.wait_for(_next_agent_event(tenant), timeout=60)
    assert result.status is TaskStatus.SUCCEEDED and result.success, result
    rows = await index_rows(tenant, doc_id)
    assert {t: r["status"] for t, r in rows.items()} == dict.fromkeys(
        ("fulltext", "graph", "summary", "vector"), "active"
    )
    assert all(r["observed_version"] == r["version"] == 1 for r in rows.values())

    hits = await search(tenant, "Landwasser Viaduct near Filisur", k=3)
    assert hits and hits[0].document_id == doc_id
    assert hits[0].vector_rank is not None and hits[0].text_rank is not None
    assert await fetchval(tenant, "SELECT document_sets FROM document WHERE id = $1", doc_id) == [
        "alps"
    ]

    entities = {
        r["label"]
        for r in await fetch(tenant, "SELECT label FROM graph_entity WHERE collection = 'alps'")
    }
    assert {"Glacier Express", "Rhaetian Railway", "Oberalp Pass", "panorama_coach"} <= entities
    edge = await fetchval(
        tenant,
        "SELECT weight FROM graph_edge "
        "WHERE source = 'glacier express' AND target = 'oberalp pass'",
    )
    assert edge == 1
    summary = await fetchval(
        tenant, "SELECT summary FROM document_summary WHERE document_id = $1", doc_id
    )
    assert summary and summary.count(".") >= 2 and "Rhaetian Railway" in summary

    # notify: the round's outcome was published on the agent queue by a worker activity
    assert event is not None and event["type"] == "index_round"
    assert event["document_id"] == doc_id and len(event["built"]) == 4


async def test_bad_requests_fail_before_anything_starts(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    scheduler = TemporalTaskScheduler(dev_env.client, tenant)
    doc_id = await ops.add_document(tenant, "alps", "a.txt", b"Some text about Zermatt.")
    with pytest.raises(ConfigurationError, match="index_types: unknown 'colour'"):
        await scheduler.schedule_create_index(doc_id, ["vector", "colour"], {})
    with pytest.raises(NotFoundError, match="does not exist"):
        await scheduler.schedule_create_index("collection:alps/nope.txt", ["vector"], {})
    assert await scheduler.get_task_status("create-0000") is None
    assert await fetchval(tenant, "SELECT count(*) FROM document_index") == 0


# --- workers with one step replaced (failures, slow builds) -------------------------------


@asynccontextmanager
async def doc_workers(
    client: Client, **steps: Callable[..., Awaitable[Any]]
) -> AsyncIterator[None]:
    """The document-index workflow and activities on their queues, in this process;
    ``steps`` replaces activities by name (a failing graph step, a slow vector build)."""
    acts = DocumentIndexActivities(Embedders(embedder_factory(get_settings())()))
    table: dict[TaskQueue, list[Callable[..., Any]]] = {
        TaskQueue.USER_FILE_PROCESSING: [
            acts.claim_document_work,
            acts.parse_document,
            acts.record_index_failure,
            acts.notify_document_indexed,
        ],
        TaskQueue.DOCPROCESSING: [
            acts.build_vector_index,
            acts.build_fulltext_index,
            acts.build_summary_index,
        ],
        TaskQueue.SANDBOX: [acts.build_graph_index],
        TaskQueue.CONNECTOR_DELETION: [acts.delete_document_indexes],
    }
    for queue, found in table.items():
        table[queue] = [
            activity.defn(name=name)(steps[name]) if (name := _name(a)) in steps else a
            for a in found
        ]
    with collector_paused():
        workers = [Worker(client, task_queue="primary", workflows=[DocumentIndexWorkflow])] + [
            Worker(client, task_queue=q.value, activities=a) for q, a in table.items()
        ]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield
    finally:
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)


async def _next_agent_event(tenant: str) -> Any:
    conn = aioredis.from_url(get_settings().redis_url or "")
    try:
        return await RedisAgentMessageQueue(conn, f"document-index/{tenant}").get()
    finally:
        await conn.aclose()


def _name(fn: Callable[..., Any]) -> str:
    defn = activity._Definition.from_callable(fn)
    return defn.name if defn and defn.name else ""


async def test_a_failing_graph_step_fails_alone_after_three_retries_60s_apart(
    ts_env: WorkflowEnvironment, tenant: str
) -> None:
    tries: list[tuple[int, datetime]] = []

    async def failing_graph(request: BuildRequest) -> BuildResult:
        tries.append((activity.info().attempt, await ts_env.get_current_time()))
        raise RuntimeError("extractor exploded")

    client = ts_env.client
    scheduler = TemporalTaskScheduler(client, tenant)
    doc_id = await ops.add_document(tenant, "alps", "glacier.md", ARTICLE)
    async with doc_workers(client, build_graph_index=failing_graph):
        task_id = await scheduler.schedule_create_index(doc_id, ["vector", "fulltext", "graph"])
        for _ in range(40):  # skip time until the failure handler has run
            if (await index_rows(tenant, doc_id))["graph"]["status"] == "failed":
                break
            await ts_env.sleep(15)
    rows = await index_rows(tenant, doc_id)
    assert rows["vector"]["status"] == rows["fulltext"]["status"] == "active"
    assert rows["graph"]["status"] == "failed"
    assert rows["graph"]["error"] == "RuntimeError: extractor exploded"
    assert [attempt for attempt, _ in tries] == [1, 2, 3, 4]
    gaps = [(b[1] - a[1]).total_seconds() for a, b in itertools.pairwise(tries)]
    assert all(59 <= gap <= 65 for gap in gaps), gaps
    result = await scheduler.get_task_status(task_id)
    assert result is not None and result.status is TaskStatus.FAILED and not result.success
    assert result.error == "graph: RuntimeError: extractor exploded"
    assert await fetchval(tenant, "SELECT count(*) FROM graph_entity") == 0


async def test_a_parse_failure_marks_every_requested_index_failed(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    scheduler = TemporalTaskScheduler(dev_env.client, tenant)
    doc_id = await ops.add_document(tenant, "alps", "scan.pdf", b"%PDF-1.7 binary")
    async with doc_workers(dev_env.client):
        task_id = await scheduler.schedule_create_index(doc_id, ["vector", "graph"])
        result = await wait_done(scheduler, task_id)
    assert result.status is TaskStatus.FAILED
    rows = await index_rows(tenant, doc_id)
    assert {r["status"] for r in rows.values()} == {"failed"}
    assert "application/pdf" in rows["vector"]["error"]


def slow_vector(
    builds: list[int], concurrent: list[int], started: asyncio.Event
) -> Callable[[BuildRequest], Awaitable[BuildResult]]:
    """The real vector step, slowed down, recording versions built and concurrency."""
    real = DocumentIndexActivities(Embedders(embedder_factory(get_settings())()))
    running = [0]

    async def step(request: BuildRequest) -> BuildResult:
        running[0] += 1
        concurrent.append(running[0])
        builds.append(request.item.version)
        started.set()
        try:
            await asyncio.sleep(1.5)
            return await real.build_vector_index(request)
        finally:
            running[0] -= 1

    return step


async def test_a_version_bump_during_a_build_waits_and_the_newest_wins(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    scheduler = TemporalTaskScheduler(client, tenant)
    doc_id = await ops.add_document(tenant, "alps", "a.txt", b"Zermatt lies below the Matterhorn.")
    built: list[int] = []
    concurrent: list[int] = []
    started = asyncio.Event()
    async with doc_workers(client, build_vector_index=slow_vector(built, concurrent, started)):
        first = await scheduler.schedule_create_index(doc_id, ["vector"])
        await asyncio.wait_for(started.wait(), 30)
        await ops.add_document(tenant, "alps", "a.txt", b"Filisur lies below the Landwasser.")
        second = await scheduler.schedule_update_index(doc_id, ["vector"])
        assert (await wait_done(scheduler, second)).status is TaskStatus.SUCCEEDED
    assert built == [1, 2] and max(concurrent) == 1
    row = (await index_rows(tenant, doc_id))["vector"]
    assert (row["status"], row["version"], row["observed_version"]) == ("active", 2, 2)
    old = await scheduler.get_task_status(first)  # fulfilled by the newer version
    assert old is not None and old.status is TaskStatus.SUCCEEDED
    content = await fetchval(tenant, "SELECT content FROM chunk WHERE document_id = $1", doc_id)
    assert "Landwasser" in content
    runs = [wf async for wf in client.list_workflows(f"WorkflowId = '{_wid(tenant, doc_id)}'")]
    assert len(runs) == 1, "the bump went to the running workflow"


def _wid(tenant: str, doc_id: str) -> str:
    return document_index_workflow_id(tenant, doc_id)


async def test_delete_during_creation_leaves_nothing_behind(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    scheduler = TemporalTaskScheduler(client, tenant)
    doc_id = await ops.add_document(tenant, "alps", "glacier.md", ARTICLE)
    started = asyncio.Event()
    async with doc_workers(client, build_vector_index=slow_vector([], [], started)):
        await scheduler.schedule_create_index(doc_id, ["vector", "fulltext", "graph", "summary"])
        await asyncio.wait_for(started.wait(), 30)
        deleting = await scheduler.schedule_delete_index(
            doc_id, ["vector", "fulltext", "graph", "summary"]
        )
        assert (await wait_done(scheduler, deleting)).status is TaskStatus.SUCCEEDED
    assert set((await traces(tenant, doc_id)).values()) == {0}
    assert await fetchval(tenant, "SELECT count(*) FROM graph_entity") == 0


async def test_collection_gc_leaves_no_rows(dev_env: WorkflowEnvironment, tenant: str) -> None:
    client = dev_env.client
    scheduler = TemporalTaskScheduler(client, tenant)
    gone = await ops.add_document(tenant, "alps", "glacier.md", ARTICLE)
    kept = await ops.add_document(tenant, "keep", "glacier.md", ARTICLE)
    async with running_workers(client):
        for doc_id in (gone, kept):
            task = await scheduler.schedule_create_index(doc_id, [])
            assert (await wait_done(scheduler, task)).success
        await add_evaluation(tenant, "alps", [Question(query="Filisur", expected="glacier.md")])
        assert await ops.delete_collection(tenant, "alps")
        with pytest.raises(CollectionDeleted):
            await scheduler.schedule_update_index(gone, ["vector"])
        result = await run_sweep(client, tenant, "collection-gc")
    assert (result.found, result.acted) == (1, 1)
    assert set((await traces(tenant, gone)).values()) == {0}
    for table in ("collection_document", "graph_entity", "collection_evaluation"):
        leftovers = await fetchval(
            tenant, f"SELECT count(*) FROM {table} WHERE collection = 'alps'"
        )
        assert leftovers == 0, table
    assert await fetchval(tenant, "SELECT count(*) FROM collection") == 1
    assert set((await traces(tenant, kept)).values()) != {0}


async def test_reconcile_starts_only_the_missing_workflow(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    scheduler = TemporalTaskScheduler(client, tenant)
    done = await ops.add_document(tenant, "alps", "done.txt", b"Zermatt is car-free.")
    lost = await ops.add_document(tenant, "alps", "lost.txt", b"Filisur has a viaduct.")
    async with running_workers(client):
        task = await scheduler.schedule_create_index(done, ["vector", "fulltext"])
        assert (await wait_done(scheduler, task)).success
    # No worker: the request is written and its workflow started, then the workflow is
    # lost (terminated, as a crashed deployment or an operator might leave it).
    await scheduler.schedule_create_index(lost, ["vector", "fulltext"])
    with tenant_scope(tenant):
        await client.get_workflow_handle(_wid(tenant, lost)).terminate("simulated crash")

    async def gone_from_visibility() -> bool:
        query = f"WorkflowId = '{_wid(tenant, lost)}' AND ExecutionStatus = 'Running'"
        return not [wf async for wf in client.list_workflows(query)]

    await eventually(gone_from_visibility)
    async with running_workers(client):
        result = await run_sweep(client, tenant, "reconcile-indexes")
        assert (result.found, result.acted) == (1, 1)
        await eventually(lambda: _active(tenant, lost), timeout=60)
        again = await run_sweep(client, tenant, "reconcile-indexes")
    assert again.acted == 0
    runs = [wf async for wf in client.list_workflows(f"WorkflowId = '{_wid(tenant, done)}'")]
    assert len(runs) == 1, "the finished document was left alone"


async def _active(tenant: str, doc_id: str) -> bool:
    rows = await index_rows(tenant, doc_id)
    return bool(rows) and all(r["status"] == "active" for r in rows.values())


async def test_the_command_line_creates_reports_and_refuses_bad_input(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path
) -> None:
    page = tmp_path / "viaduct.html"
    page.write_text(
        "<html><body><h1>Landwasser</h1><p>The Landwasser Viaduct carries Rhaetian Railway "
        "trains near Filisur.</p><script>ignored()</script></body></html>"
    )
    async with running_workers(dev_env.client):
        created = await sluice(
            dev_env, tenant, "index", "create", str(page), "-c", "alps", "--wait"
        )
    assert created.returncode == 0, created.stderr
    assert "document collection:alps/viaduct.html" in created.stdout
    assert ": succeeded" in created.stdout
    shown = await sluice(dev_env, tenant, "index", "status", "collection:alps/viaduct.html")
    assert shown.returncode == 0 and shown.stdout.count(" active ") == 4, shown.stdout
    bad = await sluice(dev_env, tenant, "index", "update", "collection:alps/x", "--types", "nope")
    assert bad.returncode == 2
    assert only_line(bad.stderr) == (
        "error: --types: unknown 'nope' (known: fulltext, graph, summary, vector)"
    )
    missing = await sluice(dev_env, tenant, "index", "update", "collection:alps/x")
    assert missing.returncode == 2
    assert only_line(missing.stderr) == "error: document 'collection:alps/x' does not exist"
