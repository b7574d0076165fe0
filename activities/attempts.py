"""Index-attempt bookkeeping (queue ``connector_doc_fetching``) and staged-batch cleanup
(queue ``checkpoint_cleanup``): short, idempotent writes the connector workflow asks for.
"""

from __future__ import annotations

import structlog
from temporalio import activity

from sluice.db.models import AttemptStatus, CcPairStatus
from sluice.db.session import tenant_connection
from sluice.indexing import attempts
from sluice.indexing.models import (
    CcPairStatusUpdate,
    CleanupRequest,
    FinishAttemptRequest,
    StagedBatchRef,
    StartAttemptRequest,
    StartedAttempt,
)
from sluice.indexing.staging import delete_attempt_batches
from sluice.temporal.tenant_context import current_tenant

log = structlog.get_logger(__name__)


@activity.defn(name="start_index_attempt")
async def start_index_attempt(request: StartAttemptRequest) -> StartedAttempt:
    """Open the run's attempt (idempotent per run) and first make the cc-pair's state
    clean: adopt the unprocessed batches handed over, close what vanished runs left."""
    async with tenant_connection(current_tenant()) as (_, raw):
        attempt_id = await attempts.create_attempt(
            raw, request.cc_pair_id, request.from_beginning, request.workflow_id, request.run_id
        )
        adopted = await attempts.adopt_batches(raw, attempt_id, request.adopt_batches)
        interrupted = await attempts.interrupt_stale_attempts(raw, request.cc_pair_id, attempt_id)
        orphans = await attempts.forget_orphan_batches(raw, request.cc_pair_id, attempt_id)
    log.info(
        "index attempt started",
        attempt_id=attempt_id,
        cc_pair_id=request.cc_pair_id,
        adopted_batches=len(adopted),
        interrupted=interrupted,
        orphan_batches_deleted=orphans,
    )
    return StartedAttempt(
        attempt_id=attempt_id,
        adopted=[
            StagedBatchRef(batch_id=int(r["id"]), seq=int(r["seq"]), doc_count=int(r["doc_count"]))
            for r in adopted
        ],
        interrupted=interrupted,
    )


@activity.defn(name="finish_index_attempt")
async def finish_index_attempt(request: FinishAttemptRequest) -> None:
    status = AttemptStatus(request.status)
    async with tenant_connection(current_tenant()) as (_, raw):
        await attempts.record_failures(
            raw, request.attempt_id, request.cc_pair_id, "processing", request.errors
        )
        await attempts.finish_attempt(
            raw, request.attempt_id, status, request.counts, request.error
        )
        if status in (AttemptStatus.SUCCESS, AttemptStatus.COMPLETED_WITH_ERRORS):
            await attempts.mark_indexed(raw, request.cc_pair_id)
    log.info(
        "index attempt finished",
        attempt_id=request.attempt_id,
        status=status.value,
        **request.counts.model_dump(),
    )


@activity.defn(name="set_cc_pair_status")
async def set_cc_pair_status(update: CcPairStatusUpdate) -> None:
    CcPairStatus(update.status)  # reject unknown statuses before writing
    async with tenant_connection(current_tenant()) as (_, raw):
        await attempts.set_cc_pair_status(
            raw,
            update.cc_pair_id,
            update.status,
            update.flag_reason,
            update.consecutive_failures,
            update.clear_flag,
        )


@activity.defn(name="delete_staged_batches")
async def delete_staged_batches(request: CleanupRequest) -> int:
    """Delete an ended attempt's staged batches, except those kept for the next attempt."""
    async with tenant_connection(current_tenant()) as (_, raw):
        deleted = await delete_attempt_batches(raw, request.attempt_id, request.keep)
    log.info(
        "staged batches deleted", attempt_id=request.attempt_id, deleted=deleted, kept=request.keep
    )
    return deleted
