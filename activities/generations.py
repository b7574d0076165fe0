"""Model swap activities (queue ``docprocessing``): re-embed every chunk into a new generation.

Re-embedding reads chunk text already in the index (nothing is fetched again), embeds
it with the new generation's model and inserts the vectors, page after page in key
order, heartbeating the position so a retry carries on where the last try stopped.
The HNSW index is built once at the end (``CREATE INDEX CONCURRENTLY``: batch writes to
the table keep going meanwhile), which is far cheaper than maintaining it row by row.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

import structlog
from temporalio import activity

from sluice.db.engine import get_engine
from sluice.db.session import tenant_connection
from sluice.index import generations
from sluice.index.embedders import Embedders
from sluice.index.generations import EmbeddingSpec
from sluice.index.swap_models import (
    AbandonRequest,
    ChunkKey,
    EmbedPagesRequest,
    EmbedPagesResult,
    StartedGeneration,
    SwitchResult,
)
from sluice.temporal.tenant_context import current_tenant
from sluice.tenancy import quoted_schema

log = structlog.get_logger(__name__)

INDEX_BUILD_BEAT_SECONDS = 5.0
INDEX_BUILD_MEMORY = "256MB"
"""maintenance_work_mem for the HNSW build: a graph that fits builds several times faster."""


class GenerationActivities:
    """Holds the worker's embedding providers (the new model's is built on first use)."""

    def __init__(self, embedders: Embedders) -> None:
        self.embedders = embedders

    @activity.defn(name="start_generation")
    async def start_generation(self, spec: EmbeddingSpec) -> StartedGeneration:
        """Create the building generation and its table; the model is tried on one text
        first, so a wrong endpoint or model fails here, before anything is created."""
        await self.embedders.for_spec(spec).embed(["sluice model check"])
        info = activity.info()
        run_key = f"{info.workflow_id}/{info.workflow_run_id}"  # a retry finds its own row
        async with tenant_connection(current_tenant()) as (_, raw):
            live = await generations.live_generation(raw)
            gen = await generations.start_generation(raw, spec, run_key)
            total = await raw.fetchval(
                "SELECT chunks_total FROM index_generation WHERE id = $1", gen.id
            )
        previous = live.id if live.id != gen.id else None
        log.info("index generation started", generation=gen.id, model=spec.name)
        return StartedGeneration(
            generation_id=gen.id, previous_live_id=previous, chunks_total=int(total or 0)
        )

    @activity.defn(name="embed_generation_pages")
    async def embed_generation_pages(self, request: EmbedPagesRequest) -> EmbedPagesResult:
        """Embed pages of chunks that lack a vector, for at most ``max_seconds``."""
        tenant = current_tenant()
        details = activity.info().heartbeat_details
        after = ChunkKey.model_validate(details[0]) if details else request.after
        embedded = int(details[1]) if len(details) > 1 else 0
        deadline = time.monotonic() + request.max_seconds
        while True:
            async with tenant_connection(tenant) as (_, raw):
                gen = await generations.get_generation(raw, request.generation_id)
                page = await generations.chunks_without_vector(
                    raw, gen, _key(after), request.page_size
                )
            if not page:
                return EmbedPagesResult(after=after, embedded=embedded, finished=True)
            vectors = await self.embedders.for_spec(gen.spec).embed([c.text for c in page])
            activity.heartbeat(after.model_dump() if after else None, embedded)
            async with tenant_connection(tenant) as (_, raw):
                keys = [(c.document_id, c.chunk_id) for c in page]
                embedded += await generations.add_vectors(raw, gen, keys, vectors)
            last = page[-1]
            after = ChunkKey(document_id=last.document_id, chunk_id=last.chunk_id)
            activity.heartbeat(after.model_dump(), embedded)
            if time.monotonic() >= deadline:
                return EmbedPagesResult(after=after, embedded=embedded, finished=False)

    @activity.defn(name="build_generation_index")
    async def build_generation_index(self, generation_id: int) -> None:
        """The HNSW index, built concurrently (outside a transaction), heartbeating meanwhile."""
        tenant = current_tenant()
        async with tenant_connection(tenant) as (_, raw):
            gen = await generations.get_generation(raw, generation_id)
        schema = quoted_schema(tenant)
        statement = generations.hnsw_index_ddl(gen.table, schema=schema, concurrently=True)
        async with get_engine().connect() as conn:
            raw_conn: Any = (await conn.get_raw_connection()).driver_connection
            await _drop_invalid_index(raw_conn, schema, gen.table)
            await raw_conn.execute(f"SET maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
            try:
                await _run_beating(raw_conn.execute(statement), "building the HNSW index")
            finally:
                await raw_conn.execute("RESET maintenance_work_mem")
        log.info("generation index built", generation=generation_id)

    @activity.defn(name="switch_generation")
    async def switch_generation(self, generation_id: int) -> SwitchResult:
        async with tenant_connection(current_tenant()) as (_, raw):
            outcome = await generations.switch_to(raw, generation_id)
        if not outcome.missing:
            log.info("index generation live", generation=generation_id, retired=outcome.retired)
        return SwitchResult(missing=outcome.missing, retired=outcome.retired)

    @activity.defn(name="abandon_generation")
    async def abandon_generation(self, request: AbandonRequest) -> None:
        async with tenant_connection(current_tenant()) as (_, raw):
            await generations.abandon_generation(
                raw, request.generation_id, request.status, request.error
            )
        log.info(
            "index generation abandoned", generation=request.generation_id, status=request.status
        )

    @activity.defn(name="drop_generation_vectors")
    async def drop_generation_vectors(self, generation_id: int) -> bool:
        async with tenant_connection(current_tenant()) as (_, raw):
            return await generations.drop_vectors(raw, generation_id)


async def _run_beating(statement: Awaitable[Any], detail: str) -> None:
    """Await one long SQL statement, heartbeating while it runs; cancel it if we are."""
    task = asyncio.ensure_future(statement)
    try:
        while not task.done():
            activity.heartbeat(detail)
            await asyncio.wait([task], timeout=INDEX_BUILD_BEAT_SECONDS)
        await task
    except asyncio.CancelledError:
        task.cancel()  # asyncpg cancels the statement on the server
        raise


def _key(after: ChunkKey | None) -> tuple[str, int] | None:
    return (after.document_id, after.chunk_id) if after is not None else None


async def _drop_invalid_index(raw: Any, schema: str, table: str) -> None:
    """A concurrent build killed midway leaves an INVALID index: drop it before retrying."""
    invalid = await raw.fetchval(
        """
        SELECT NOT i.indisvalid FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relname = $1 AND n.nspname = $2
        """,
        f"ix_{table}_hnsw",
        schema.strip('"'),
    )
    if invalid:
        await raw.execute(f"DROP INDEX CONCURRENTLY {schema}.ix_{table}_hnsw")
