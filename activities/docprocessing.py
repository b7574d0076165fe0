"""Docprocessing (queue ``docprocessing``): chunk, embed and write one staged batch.

Three steps so no transaction is open while the CPU works (a lock held through
embedding is what deletions used to deadlock against):

1. read the batch and the known content hashes in a short transaction;
2. chunk and embed outside any transaction, heartbeating after every slice, so a
   large batch proves it is alive and a hung one is noticed within its timeout;
3. write in one transaction that first locks the batch row: if another try of the
   same batch won the race, its result is returned and nothing is written twice.

The write, the attempt's live counters and the batch's ``result`` commit together,
and the batch's documents are released in that same commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog
from temporalio import activity

from sluice.db.session import tenant_connection
from sluice.index.embedders import Embedders, as_embedders
from sluice.index.embedding import EmbeddingProvider
from sluice.indexing.attempts import add_batch_result, record_failures
from sluice.indexing.models import ProcessRequest, ProcessResult
from sluice.indexing.pipeline import PreparedBatch, index_state, prepare_batch, write_batch
from sluice.indexing.staging import claim_for_write, load_batch, mark_processed
from sluice.temporal.policies import MAX_HEARTBEAT_THROTTLE
from sluice.temporal.tenant_context import current_tenant

log = structlog.get_logger(__name__)

QUIET_START = MAX_HEARTBEAT_THROTTLE
"""No heartbeat in a batch's first seconds (at most a quarter of its heartbeat timeout):
cancellation still arrives within the two seconds the throttle allows anyway, and a short
batch costs the server no write."""


def _beat(seq: int) -> Callable[[str], None]:
    """Progress → heartbeat, from :data:`QUIET_START` on (the worker throttles the rest).

    Most batches finish in a second or two: a heartbeat then is a server write that
    tells nobody anything (the heartbeat timeout counts from the start anyway, so a
    batch hung from its first second is still noticed in time).
    """
    started = time.monotonic()
    timeout = activity.info().heartbeat_timeout
    quiet = min(QUIET_START, timeout / 4) if timeout else QUIET_START
    quiet_s = quiet.total_seconds()

    def beat(stage: str) -> None:
        if time.monotonic() - started >= quiet_s:
            activity.heartbeat(seq, stage)

    return beat


class DocProcessingActivities:
    """Holds the embedding providers (loaded once per worker process).

    ``embedder`` is the configured one; a model swap's new generation gets its own,
    built on first use.
    """

    def __init__(self, embedder: EmbeddingProvider | Embedders) -> None:
        self.embedders = as_embedders(embedder)

    @activity.defn(name="process_batch")
    async def process_batch(self, request: ProcessRequest) -> ProcessResult:
        tenant = current_tenant()
        batch = request.batch
        async with tenant_connection(tenant) as (_, raw):
            documents, done = await load_batch(raw, batch.batch_id)
            if done is not None:
                log.info("batch already processed; returning its result", seq=batch.seq)
                return done
            state = await index_state(raw, documents)
        beat = _beat(batch.seq)
        prepared = await prepare_batch(documents, state, self.embedders, beat)
        del documents  # the prepared batch holds what is needed; let the rest go
        return await self._write(tenant, request, prepared, beat)

    async def _write(
        self,
        tenant: str,
        request: ProcessRequest,
        prepared: PreparedBatch,
        beat: Callable[[str], None],
    ) -> ProcessResult:
        batch = request.batch
        async with tenant_connection(tenant) as (_, raw):
            done = await claim_for_write(raw, batch.batch_id)
            if done is not None:
                log.info("another try of this batch finished first", seq=batch.seq)
                return done
            result = await write_batch(raw, request.cc_pair_id, prepared, self.embedders, beat)
            await record_failures(
                raw, request.attempt_id, request.cc_pair_id, "processing", prepared.failures
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
