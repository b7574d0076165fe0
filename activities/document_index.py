"""Activities of the document-index workflow (seed 002): claim, parse, build each index
type, record failures, delete, notify.

Each is idempotent and reads the document from Postgres by ID (claim check). A build
marks its state row ``active`` only at the version it built; the workflow records a
failure (the seed's failure callback) once the build's retries are spent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import structlog
from temporalio import activity

from sluice.config import get_settings
from sluice.db.session import tenant_connection
from sluice.documents import builds, store
from sluice.documents.models import (
    BuildRequest,
    BuildResult,
    DeleteRequest,
    DocumentRequest,
    FailureRecord,
    RoundOutcome,
    WorkPlan,
)
from sluice.index.embedders import Embedders

log = structlog.get_logger(__name__)

HEARTBEAT_EVERY = 5.0

EVENTS_STREAM = "document-index/{tenant}"
"""The agent-queue stream ``notify`` publishes each round's outcome on."""


@asynccontextmanager
async def heartbeating() -> AsyncIterator[None]:
    """Heartbeat every few seconds while a step works (the step may not report progress)."""

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(HEARTBEAT_EVERY)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


class DocumentIndexActivities:
    def __init__(self, embedders: Embedders) -> None:
        self.embedders = embedders

    @activity.defn(name="claim_document_work")
    async def claim_document_work(self, request: DocumentRequest) -> WorkPlan:
        async with tenant_connection(request.tenant_id) as (_, raw):
            return await store.claim_work(raw, request.document_id)

    @activity.defn(name="parse_document")
    async def parse_document(self, request: DocumentRequest) -> int:
        return await builds.parse_document(request.tenant_id, request.document_id)

    async def _build(
        self, request: BuildRequest, step: Callable[[], Awaitable[str]]
    ) -> BuildResult:
        started = time.perf_counter()
        async with heartbeating():
            detail = await step()
        async with tenant_connection(request.tenant_id) as (_, raw):
            activated = await store.finish_build(raw, request.document_id, request.item)
        return BuildResult(
            index_type=request.item.index_type,
            version=request.item.version,
            activated=activated,
            detail=detail,
            seconds=round(time.perf_counter() - started, 4),
        )

    @activity.defn(name="build_vector_index")
    async def build_vector_index(self, request: BuildRequest) -> BuildResult:
        return await self._build(
            request,
            lambda: builds.build_vector(
                request.tenant_id, request.document_id, self.embedders, lambda _s: None
            ),
        )

    @activity.defn(name="build_fulltext_index")
    async def build_fulltext_index(self, request: BuildRequest) -> BuildResult:
        return await self._build(
            request, lambda: builds.build_fulltext(request.tenant_id, request.document_id)
        )

    @activity.defn(name="build_graph_index")
    async def build_graph_index(self, request: BuildRequest) -> BuildResult:
        return await self._build(
            request, lambda: builds.build_graph(request.tenant_id, request.document_id)
        )

    @activity.defn(name="build_summary_index")
    async def build_summary_index(self, request: BuildRequest) -> BuildResult:
        return await self._build(
            request,
            lambda: builds.build_summary(request.tenant_id, request.document_id, self.embedders),
        )

    @activity.defn(name="record_index_failure")
    async def record_index_failure(self, record: FailureRecord) -> int:
        async with tenant_connection(record.tenant_id) as (_, raw):
            return await store.record_failure(raw, record.document_id, record.items, record.error)

    @activity.defn(name="delete_document_indexes")
    async def delete_document_indexes(self, request: DeleteRequest) -> None:
        await builds.delete_indexes(request.tenant_id, request.document_id, request.items)

    @activity.defn(name="notify_document_indexed")
    async def notify_document_indexed(self, outcome: RoundOutcome) -> bool:
        """Publish the round's outcome (an ``index_round`` event); False without Redis."""
        return await publish_outcome(outcome)


async def publish_outcome(outcome: RoundOutcome) -> bool:
    url = get_settings().redis_url
    if not url:
        log.info("no REDIS_URL: document index event not published", document=outcome.document_id)
        return False
    import redis.asyncio as aioredis

    from sluice.agent_queue import RedisAgentMessageQueue

    conn = aioredis.from_url(url)
    try:
        queue = RedisAgentMessageQueue(conn, EVENTS_STREAM.format(tenant=outcome.tenant_id))
        await queue.put({"type": "index_round", **outcome.model_dump(mode="json")})
    finally:
        await conn.aclose()
    return True
