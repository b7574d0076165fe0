"""Docprocessing (queue ``docprocessing``): chunk, embed and write one staged batch.

Idempotent: the batch's writes, its attempt counters and its ``result`` are one
transaction, and a batch that already has a result returns it unchanged, so a
retry after a crash (or a duplicate delivery) changes nothing.
"""

from __future__ import annotations

import structlog
from temporalio import activity

from sluice.db.session import tenant_connection
from sluice.index.embedding import EmbeddingProvider
from sluice.indexing.attempts import add_batch_result, record_failures
from sluice.indexing.models import ProcessRequest, ProcessResult
from sluice.indexing.pipeline import index_documents
from sluice.indexing.staging import load_batch, mark_processed
from sluice.temporal.tenant_context import current_tenant

log = structlog.get_logger(__name__)


class DocProcessingActivities:
    """Holds the embedding provider (loaded once per worker process)."""

    def __init__(self, embedder: EmbeddingProvider) -> None:
        self.embedder = embedder

    @activity.defn(name="process_batch")
    async def process_batch(self, request: ProcessRequest) -> ProcessResult:
        tenant = current_tenant()
        batch = request.batch
        async with tenant_connection(tenant) as (_, raw):
            documents, done = await load_batch(raw, batch.batch_id)
            if done is not None:
                log.info("batch already processed; returning its result", seq=batch.seq)
                return done
            result, failures = await index_documents(
                raw,
                request.cc_pair_id,
                documents,
                self.embedder,
                on_progress=lambda stage: activity.heartbeat(batch.seq, stage),
            )
            await record_failures(
                raw, request.attempt_id, request.cc_pair_id, "processing", failures
            )
            await add_batch_result(raw, request.attempt_id, result)
            await mark_processed(raw, batch.batch_id, result)
        log.info(
            "batch indexed",
            seq=batch.seq,
            indexed=result.docs_indexed,
            skipped=result.docs_skipped,
            failed=result.docs_failed,
            chunks=result.chunks_written,
        )
        return result
