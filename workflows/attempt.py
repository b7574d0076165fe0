"""One indexing attempt's fetch → process loop, run inside the connector workflow.

Deterministic orchestration only. The loop keeps one fetch in flight while the
backlog is short, processes staged batches with bounded parallelism, moves the
checkpoint only when a fetch hands back the batches it staged, and stops when
the source is exhausted, the run is paused or canceled, a fatal error arrives,
or it is time to continue-as-new (with nothing in flight).

The checkpoint never passes an unindexed document: a batch whose processing
spent its whole retry budget (an outage longer than the budget) is not dropped;
its reference goes into the outcome and the next attempt processes it first.

Why a class inside the entity and not a child workflow: the attempt's state (its
row, counts, checkpoint) must survive the entity's continue-as-new anyway, a child
would add a second history to replay and a second cancellation path, and the
entity already serialises everything it runs. See docs/architecture.md.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Protocol

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
)
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.docfetching import fetch_documents
    from activities.docprocessing import DocProcessingActivities
    from sluice.connectors.models import Checkpoint, DocumentFailure
    from sluice.db.models import AttemptStatus
    from sluice.errors import BadCredentialsError, ConfigurationError, ConnectorConfigError
    from sluice.indexing.models import (
        AttemptInProgress,
        AttemptOutcome,
        CarriedState,
        ConnectorWorkflowInput,
        FetchRequest,
        FetchResult,
        ProcessRequest,
        ProcessResult,
        StagedBatchRef,
    )
    from sluice.temporal import policies
    from workflows import patches

INVALIDATING_ERRORS = {
    BadCredentialsError.__name__,
    ConnectorConfigError.__name__,
    ConfigurationError.__name__,
}
"""Errors that mean a person must act: the connector is marked invalid at once."""


def error_type(error: BaseException) -> str | None:
    cause = error.cause if isinstance(error, ActivityError) else error
    return cause.type if isinstance(cause, ApplicationError) else None


def error_text(error: BaseException) -> str:
    """The innermost cause's message (an activity's or child workflow's own error)."""
    cause = error
    while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause:
        cause = cause.cause
    return str(cause) or type(cause).__name__


class AttemptOwner(Protocol):
    """What the pipeline needs from the connector workflow that runs it."""

    input: ConnectorWorkflowInput
    s: CarriedState
    cancel_requested: bool
    in_flight: int

    def set_details(self) -> None: ...


class AttemptPipeline:
    """Runs ``owner.s.attempt`` until it ends (an outcome) or should continue-as-new (None)."""

    def __init__(self, owner: AttemptOwner) -> None:
        assert owner.s.attempt is not None
        self.owner = owner
        self.attempt: AttemptInProgress = owner.s.attempt
        self.tuning = owner.input.tuning
        self.pending: list[StagedBatchRef] = list(self.attempt.queued)
        self.processing: dict[int, tuple[StagedBatchRef, asyncio.Task[ProcessResult]]] = {}
        self.fetch: asyncio.Task[FetchResult] | None = None
        self.batch_errors: list[DocumentFailure] = []
        self.unprocessed: list[StagedBatchRef] = []
        self.fatal: BaseException | None = None
        self.batches_this_run = 0

    # --- where the attempt is -------------------------------------------------------

    @property
    def checkpoint(self) -> Checkpoint:
        """The connector's checkpoint; a retry-failed attempt walks its own ID list."""
        if self.attempt.retry_failed:
            return self.attempt.retry_checkpoint
        return self.owner.s.checkpoint

    @checkpoint.setter
    def checkpoint(self, value: Checkpoint) -> None:
        if self.attempt.retry_failed:
            self.attempt.retry_checkpoint = value
        else:
            self.owner.s.checkpoint = value

    # --- when to do what ------------------------------------------------------------

    def stopping(self) -> bool:
        s = self.owner.s
        return self.owner.cancel_requested or s.paused or s.deleting or self.fatal is not None

    def continue_soon(self) -> bool:
        return (
            workflow.info().is_continue_as_new_suggested()
            or self.batches_this_run >= self.tuning.batches_before_continue_as_new
        )

    def _should_fetch(self) -> bool:
        backlog = len(self.pending) + len(self.processing)
        return (
            self.fetch is None
            and not self.checkpoint.done
            and not self.stopping()
            and not self.continue_soon()
            and backlog < self.tuning.max_batches_in_flight + self.tuning.batches_per_fetch
        )

    # --- the loop -------------------------------------------------------------------

    async def run(self) -> AttemptOutcome | None:
        self.attempt.queued = []  # now held in self.pending (replay rebuilds it)
        try:
            while True:
                self._dispatch()
                if self.fetch is None and not self.processing:
                    break
                await self._wait_for_progress()
                self._collect_fetch()
                self._collect_processed()
                self.owner.set_details()
                if self._drained() and self.continue_soon():
                    if not self.stopping() and not self.checkpoint.done:
                        return None
        except asyncio.CancelledError:
            await self._cancel_in_flight()
            raise
        self.owner.in_flight = 0
        return self._outcome()

    def _dispatch(self) -> None:
        if self._should_fetch():
            self.fetch = asyncio.create_task(self._fetch())
        if self.fetch is not None and self.stopping() and not self.fetch.done():
            self.fetch.cancel()
        while self.pending and len(self.processing) < self.tuning.max_batches_in_flight:
            ref = self.pending.pop(0)
            self.processing[ref.seq] = (ref, asyncio.create_task(self._process(ref)))
        self.owner.in_flight = len(self.processing)

    async def _wait_for_progress(self) -> None:
        tasks: list[asyncio.Task[Any]] = [task for _, task in self.processing.values()]
        if self.fetch is not None:
            tasks.append(self.fetch)
        was_stopping = self.stopping()
        await workflow.wait_condition(
            lambda: any(t.done() for t in tasks) or self.stopping() != was_stopping
        )

    def _drained(self) -> bool:
        return not self.processing and self.fetch is None and not self.pending

    def _collect_fetch(self) -> None:
        if self.fetch is None or not self.fetch.done():
            return
        task, self.fetch = self.fetch, None
        try:
            result = task.result()
        except asyncio.CancelledError:
            return
        except ActivityError as err:
            if not isinstance(err.cause, CancelledError):
                self.fatal = err
                self.owner.s.last_error_type = error_type(err)
            return
        self.pending.extend(result.batches)
        self.attempt.next_seq += len(result.batches)
        self.attempt.counts.docs_fetched += result.docs_fetched
        self.attempt.counts.docs_skipped += result.docs_unchanged
        self.attempt.counts.docs_failed += result.failures
        self.checkpoint = result.checkpoint
        self.batches_this_run += len(result.batches)

    def _collect_processed(self) -> None:
        counts = self.attempt.counts
        for seq, (ref, task) in list(self.processing.items()):
            if not task.done():
                continue
            del self.processing[seq]
            counts.batches += 1
            try:
                done = task.result()
            except ActivityError as err:
                self._batch_failed(ref, err)
                continue
            counts.docs_indexed += done.docs_indexed
            counts.docs_skipped += done.docs_skipped
            counts.docs_failed += done.docs_failed
            counts.chunks_written += done.chunks_written

    def _batch_failed(self, ref: StagedBatchRef, err: ActivityError) -> None:
        """The batch spent its retry budget: keep it for the next attempt. A configuration
        error (say, the embedding service refuses our key) would fail every batch, so it
        ends the attempt instead."""
        kind = error_type(err)
        self.attempt.counts.docs_failed += ref.doc_count
        if kind != "StagedBatchGone":
            self.unprocessed.append(ref)
        self.batch_errors.append(
            DocumentFailure(
                document_id=f"batch:{ref.seq}",
                message=f"batch {ref.seq} ({ref.doc_count} documents) not processed: "
                f"{error_text(err)}; the next attempt retries it",
            )
        )
        if kind in INVALIDATING_ERRORS and self.fatal is None:
            self.fatal = err
            self.owner.s.last_error_type = kind

    async def _cancel_in_flight(self) -> None:
        """The workflow itself is being canceled: stop the activities and let them settle
        before the attempt is closed."""
        running: list[asyncio.Task[Any]] = [task for _, task in self.processing.values()]
        if self.fetch is not None:
            running.append(self.fetch)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _outcome(self) -> AttemptOutcome:
        s, errors, retry = self.owner.s, self.batch_errors, self.unprocessed
        if self.fatal is not None:
            return AttemptOutcome(
                status=AttemptStatus.FAILED.value,
                error=error_text(self.fatal),
                errors=errors,
                retry=retry,
            )
        if s.deleting:
            return AttemptOutcome(
                status=AttemptStatus.CANCELED.value,
                error="the connector is being deleted",
                errors=errors,
            )
        if self.owner.cancel_requested or s.paused:
            if s.paused:
                s.index_requested = True  # resume picks up from the checkpoint
            reason = "paused by request" if s.paused else "canceled by request"
            return AttemptOutcome(
                status=AttemptStatus.CANCELED.value, error=reason, errors=errors, retry=retry
            )
        if errors or self.attempt.counts.docs_failed:
            note = f"{len(retry)} batches left for the next attempt" if retry else None
            return AttemptOutcome(
                status=AttemptStatus.COMPLETED_WITH_ERRORS.value,
                error=note,
                errors=errors,
                retry=retry,
            )
        return AttemptOutcome(status=AttemptStatus.SUCCESS.value)

    # --- activities -----------------------------------------------------------------

    async def _fetch(self) -> FetchResult:
        owner, attempt, tuning = self.owner, self.attempt, self.tuning
        cc = owner.input.cc_pair_id
        what = "failed documents" if attempt.retry_failed else "batches"
        return await workflow.execute_activity(
            fetch_documents,
            FetchRequest(
                cc_pair_id=cc,
                attempt_id=attempt.attempt_id,
                checkpoint=self.checkpoint,
                first_seq=attempt.next_seq,
                batch_size=tuning.batch_size,
                max_batches=tuning.batches_per_fetch,
                max_seconds=tuning.fetch_max_seconds,
                retry_failed_before=attempt.attempt_id if attempt.retry_failed else None,
                max_document_bytes=tuning.max_document_bytes,
                max_batch_bytes=tuning.max_batch_bytes,
                skip_unchanged=self._skip_unchanged(),
            ),
            **policies.FETCH_DOCUMENTS.options(
                heartbeat=timedelta(seconds=tuning.fetch_heartbeat_seconds),
                maximum_attempts=tuning.fetch_attempts,
                schedule_to_close=timedelta(seconds=tuning.retry_budget_seconds),
            ),
            # Wait for the activity to stop before cleaning up, so no batch is staged late.
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=(
                f"fetch {owner.input.source} cc-pair {cc}: {what} from #{attempt.next_seq} "
                f"(attempt {attempt.attempt_id})"
            ),
        )

    def _skip_unchanged(self) -> bool:
        """Drop documents the source marks unchanged before staging, except when the user
        asked for everything again (from the beginning) or for failed documents only."""
        attempt = self.attempt
        if attempt.from_beginning or attempt.retry_failed:
            return False
        return workflow.patched(patches.SKIP_UNCHANGED_BEFORE_STAGING)

    async def _process(self, ref: StagedBatchRef) -> ProcessResult:
        owner, attempt, tuning = self.owner, self.attempt, self.tuning
        cc = owner.input.cc_pair_id
        return await workflow.execute_activity_method(
            DocProcessingActivities.process_batch,
            ProcessRequest(cc_pair_id=cc, attempt_id=attempt.attempt_id, batch=ref),
            **policies.PROCESS_BATCH.options(
                heartbeat=timedelta(seconds=tuning.process_heartbeat_seconds),
                schedule_to_close=timedelta(seconds=tuning.retry_budget_seconds),
            ),
            summary=(
                f"process {owner.input.source} cc-pair {cc}: batch #{ref.seq} "
                f"({ref.doc_count} docs, attempt {attempt.attempt_id})"
            ),
        )
