"""The connector workflow: one long-lived workflow per connector-credential pair.

Reads top to bottom as a state machine (after Airbyte's connection manager):

1. wait until indexing is due (refresh timer) or asked for (``index_now``),
   unless paused or marked invalid;
2. run one indexing attempt: fetch batches from the checkpoint (docfetching),
   process them with bounded parallelism (docprocessing), keep the newest
   checkpoint in a workflow variable — the checkpoint lives in history, there is
   no checkpoints table;
3. record the outcome, delete the run's staged batches, continue-as-new.

A long attempt also continues-as-new part-way (when the server suggests it, or
after ``batches_before_continue_as_new`` batches), carrying the attempt and its
checkpoint in the new run's input.

Signals: ``index_now``, ``pause``, ``resume``, ``cancel_run``. Query: ``progress``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.attempts import (
        delete_staged_batches,
        finish_index_attempt,
        set_cc_pair_status,
        start_index_attempt,
    )
    from activities.docfetching import fetch_documents
    from activities.docprocessing import DocProcessingActivities
    from sluice.connectors.models import Checkpoint, DocumentFailure
    from sluice.db.models import AttemptStatus, CcPairStatus
    from sluice.errors import BadCredentialsError, ConfigurationError, ConnectorConfigError
    from sluice.indexing.models import (
        AttemptCounts,
        AttemptInProgress,
        CarriedState,
        CcPairStatusUpdate,
        ConnectorProgress,
        ConnectorWorkflowInput,
        FetchRequest,
        FetchResult,
        FinishAttemptRequest,
        IndexNowRequest,
        ProcessRequest,
        ProcessResult,
        RunState,
        StagedBatchRef,
        StartAttemptRequest,
    )
    from sluice.temporal import policies, search

INVALIDATING_ERRORS = {
    BadCredentialsError.__name__,
    ConnectorConfigError.__name__,
    ConfigurationError.__name__,
}


def connector_workflow_id(tenant_id: str, cc_pair_id: int) -> str:
    """Readable, deterministic ID: one connector workflow per cc-pair, ever."""
    return f"connector/{tenant_id}/{cc_pair_id}"


def _error_type(error: BaseException) -> str | None:
    cause = error.cause if isinstance(error, ActivityError) else error
    return cause.type if isinstance(cause, ApplicationError) else None


def _error_text(error: BaseException) -> str:
    cause = error.cause if isinstance(error, ActivityError) and error.cause else error
    return str(cause) or type(cause).__name__


@workflow.defn(name="ConnectorWorkflow")
class ConnectorWorkflow:
    @workflow.init
    def __init__(self, input: ConnectorWorkflowInput) -> None:
        self.input = input
        self.tuning = input.tuning
        self.s: CarriedState = input.carried or CarriedState()
        self.state: RunState | None = None  # unknown until set: the first set always upserts
        self.in_flight = 0
        self.cancel_requested = False
        self.next_run_at: float | None = None

    # --- signals and queries ----------------------------------------------------------

    @workflow.signal
    def index_now(self, request: IndexNowRequest | None = None) -> None:
        """Run an attempt now (``from_beginning`` re-fetches everything)."""
        self.s.index_requested = True
        if request is not None and request.from_beginning:
            self.s.from_beginning = True
        if self.s.invalid_reason is not None:  # a person asked: give it another try
            self.s.invalid_reason = None

    @workflow.signal
    def pause(self) -> None:
        """Stop fetching; the running attempt ends as canceled, resumable from its checkpoint."""
        self.s.paused = True

    @workflow.signal
    def resume(self) -> None:
        self.s.paused = False
        self.s.invalid_reason = None

    @workflow.signal
    def cancel_run(self) -> None:
        """End the running attempt as canceled; the next one resumes from the checkpoint."""
        if self.s.attempt is not None:
            self.cancel_requested = True

    @workflow.query
    def progress(self) -> ConnectorProgress:
        attempt = self.s.attempt
        next_in = None
        if self.next_run_at is not None:
            next_in = max(0.0, self.next_run_at - workflow.now().timestamp())
        return ConnectorProgress(
            tenant_id=self.input.tenant_id,
            cc_pair_id=self.input.cc_pair_id,
            source=self.input.source,
            state=self.state or RunState.IDLE,
            attempt_id=attempt.attempt_id if attempt else None,
            attempts_started=self.s.attempts_started,
            last_attempt_status=self.s.last_attempt_status,
            last_attempt_counts=self.s.last_attempt_counts,
            counts=attempt.counts if attempt else AttemptCounts(),
            batches_in_flight=self.in_flight,
            checkpoint=self.s.checkpoint,
            consecutive_failures=self.s.consecutive_failures,
            last_error=self.s.last_error,
            invalid_reason=self.s.invalid_reason,
            next_run_in_seconds=next_in,
        )

    # --- the state machine ------------------------------------------------------------

    @workflow.run
    async def run(self, input: ConnectorWorkflowInput) -> None:
        try:
            if self.s.attempt is None:
                await self._wait_until_due()
                await self._start_attempt()
            outcome = await self._run_attempt()
        except asyncio.CancelledError:
            # Canceling the workflow stops the connector for good: close the attempt
            # (canceled, its staged batches deleted) so nothing is left in progress.
            if self.s.attempt is not None:
                await self._end_attempt(AttemptStatus.CANCELED, "connector workflow canceled", [])
            self._set_state(RunState.STOPPED)
            raise
        if outcome is None:  # the attempt goes on in a fresh run
            self._continue_as_new()
        await self._end_attempt(*outcome)
        self._continue_as_new()

    def _ready(self) -> bool:
        return self.s.index_requested and not self.s.paused and self.s.invalid_reason is None

    async def _wait_until_due(self) -> None:
        while True:
            await self._sync_db_status()
            if self._ready():
                break
            self._set_state(
                RunState.PAUSED
                if self.s.paused
                else RunState.INVALID
                if self.s.invalid_reason
                else RunState.IDLE
            )
            timeout = None
            interval = self.input.refresh_interval_seconds
            if interval and not self.s.paused and self.s.invalid_reason is None:
                due = self.s.next_run_at or workflow.now().timestamp()
                timeout = max(0.0, due - workflow.now().timestamp())
                self.next_run_at = due
            else:
                self.next_run_at = None
            was = (self.s.paused, self.s.invalid_reason)

            def due_or_changed(was: tuple[bool, str | None] = was) -> bool:
                return self._ready() or (self.s.paused, self.s.invalid_reason) != was

            try:
                await workflow.wait_condition(
                    due_or_changed,
                    timeout=timedelta(seconds=timeout) if timeout is not None else None,
                    timeout_summary="refresh interval",
                )
            except TimeoutError:
                self.s.index_requested = True
        self.next_run_at = None

    async def _sync_db_status(self) -> None:
        """Keep the cc-pair row's status (the product's view) in step with signals."""
        s = self.s
        wanted = (
            CcPairStatus.PAUSED
            if s.paused
            else CcPairStatus.INVALID
            if s.invalid_reason
            else CcPairStatus.ACTIVE
        ).value
        if wanted == s.db_status:
            return
        await workflow.execute_activity(
            set_cc_pair_status,
            CcPairStatusUpdate(
                cc_pair_id=self.input.cc_pair_id,
                status=wanted,
                clear_flag=s.db_status == CcPairStatus.INVALID.value,
            ),
            **policies.ATTEMPT_BOOKKEEPING.options(),
            summary=f"cc-pair {self.input.cc_pair_id} is now {wanted}",
        )
        s.db_status = wanted

    async def _start_attempt(self) -> None:
        s = self.s
        if s.from_beginning:
            s.checkpoint = Checkpoint()
        elif s.checkpoint.done:
            # The last pass finished: the next one is incremental from when it began.
            s.checkpoint = Checkpoint(since=s.last_pass_started_at)
        if s.checkpoint.cursor is None:
            s.pass_started_at = workflow.now().timestamp()
        info = workflow.info()
        attempt_id = await workflow.execute_activity(
            start_index_attempt,
            StartAttemptRequest(
                cc_pair_id=self.input.cc_pair_id,
                from_beginning=s.from_beginning,
                workflow_id=info.workflow_id,
                run_id=info.run_id,
            ),
            **policies.ATTEMPT_BOOKKEEPING.options(),
            summary=f"start index attempt for cc-pair {self.input.cc_pair_id}",
        )
        s.attempt = AttemptInProgress(attempt_id=attempt_id, from_beginning=s.from_beginning)
        s.last_error_type = None
        s.attempts_started += 1
        s.index_requested = False
        s.from_beginning = False

    async def _run_attempt(self) -> tuple[AttemptStatus, str | None, list[DocumentFailure]] | None:
        """Fetch and process until the source is exhausted, the run is stopped, or it is time
        to continue-as-new (returns ``None`` then, with nothing in flight)."""
        assert self.s.attempt is not None
        attempt = self.s.attempt
        self._set_state(RunState.RUNNING)
        pending: list[StagedBatchRef] = []
        processing: dict[int, asyncio.Task[ProcessResult]] = {}
        fetch: asyncio.Task[FetchResult] | None = None
        refs: dict[int, StagedBatchRef] = {}
        batch_errors: list[DocumentFailure] = []
        fatal: BaseException | None = None  # ends the attempt as failed
        batches_this_run = 0
        backlog_limit = self.tuning.max_batches_in_flight + self.tuning.batches_per_fetch

        def stopping() -> bool:
            return self.cancel_requested or self.s.paused or fatal is not None

        def continue_soon() -> bool:
            return (
                workflow.info().is_continue_as_new_suggested()
                or batches_this_run >= self.tuning.batches_before_continue_as_new
            )

        try:
            while True:
                if (
                    fetch is None
                    and not self.s.checkpoint.done
                    and not stopping()
                    and not continue_soon()
                    and len(pending) + len(processing) < backlog_limit
                ):
                    fetch = asyncio.create_task(self._fetch(attempt))
                if fetch is not None and stopping() and not fetch.done():
                    fetch.cancel()
                while pending and len(processing) < self.tuning.max_batches_in_flight:
                    ref = pending.pop(0)
                    refs[ref.seq] = ref
                    processing[ref.seq] = asyncio.create_task(self._process(attempt, ref))
                self.in_flight = len(processing)
                if fetch is None and not processing:
                    break
                tasks: list[asyncio.Task[object]] = list(processing.values())  # type: ignore[arg-type]
                if fetch is not None:
                    tasks.append(fetch)  # type: ignore[arg-type]
                was_stopping = stopping()

                def progressed(
                    tasks: list[asyncio.Task[object]] = tasks, was: bool = was_stopping
                ) -> bool:
                    return any(t.done() for t in tasks) or stopping() != was

                await workflow.wait_condition(progressed)
                if fetch is not None and fetch.done():
                    try:
                        result = fetch.result()
                    except asyncio.CancelledError:
                        pass
                    except ActivityError as err:
                        if not isinstance(err.cause, CancelledError):
                            fatal = err
                            self.s.last_error_type = _error_type(err)
                    else:
                        pending.extend(result.batches)
                        attempt.next_seq += len(result.batches)
                        attempt.counts.docs_fetched += result.docs_fetched
                        attempt.counts.docs_failed += result.failures
                        self.s.checkpoint = result.checkpoint
                        batches_this_run += len(result.batches)
                    fetch = None
                for seq, task in list(processing.items()):
                    if not task.done():
                        continue
                    del processing[seq]
                    try:
                        done = task.result()
                    except ActivityError as err:
                        # Retries are spent: the batch's documents count as failed. A
                        # configuration error (say, the embedding service refuses our key)
                        # would fail every batch, so it ends the attempt instead.
                        batch_errors.append(
                            DocumentFailure(
                                document_id=f"batch:{seq}",
                                message=f"batch {seq}: {_error_text(err)}",
                            )
                        )
                        attempt.counts.batches += 1
                        attempt.counts.docs_failed += refs[seq].doc_count
                        if _error_type(err) in INVALIDATING_ERRORS and fatal is None:
                            fatal = err
                        continue
                    attempt.counts.batches += 1
                    attempt.counts.docs_indexed += done.docs_indexed
                    attempt.counts.docs_skipped += done.docs_skipped
                    attempt.counts.docs_failed += done.docs_failed
                    attempt.counts.chunks_written += done.chunks_written
                self._set_details()
                if not processing and fetch is None and not pending and continue_soon():
                    if not stopping() and not self.s.checkpoint.done:
                        return None
        except asyncio.CancelledError:
            # The workflow itself is being canceled (Web UI, `temporal workflow cancel`):
            # stop the activities and let them settle before the attempt is closed.
            running: list[asyncio.Task[Any]] = [*processing.values()]
            if fetch is not None:
                running.append(fetch)
            for pending_task in running:
                pending_task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise

        self.in_flight = 0
        if fatal is not None:
            return AttemptStatus.FAILED, _error_text(fatal), batch_errors
        if self.cancel_requested or self.s.paused:
            reason = "paused by request" if self.s.paused else "canceled by request"
            if self.s.paused:
                self.s.index_requested = True  # resume picks up from the checkpoint
            return AttemptStatus.CANCELED, reason, batch_errors
        if batch_errors or attempt.counts.docs_failed:
            return AttemptStatus.COMPLETED_WITH_ERRORS, None, batch_errors
        return AttemptStatus.SUCCESS, None, batch_errors

    async def _fetch(self, attempt: AttemptInProgress) -> FetchResult:
        cc = self.input.cc_pair_id
        return await workflow.execute_activity(
            fetch_documents,
            FetchRequest(
                cc_pair_id=cc,
                attempt_id=attempt.attempt_id,
                checkpoint=self.s.checkpoint,
                first_seq=attempt.next_seq,
                batch_size=self.tuning.batch_size,
                max_batches=self.tuning.batches_per_fetch,
            ),
            **policies.FETCH_DOCUMENTS.options(
                heartbeat=timedelta(seconds=self.tuning.fetch_heartbeat_seconds),
                maximum_attempts=self.tuning.fetch_attempts,
            ),
            # Wait for the activity to stop before cleaning up, so no batch is staged late.
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=(
                f"fetch {self.input.source} cc-pair {cc}: batches from #{attempt.next_seq} "
                f"(attempt {attempt.attempt_id})"
            ),
        )

    async def _process(self, attempt: AttemptInProgress, ref: StagedBatchRef) -> ProcessResult:
        cc = self.input.cc_pair_id
        return await workflow.execute_activity_method(
            DocProcessingActivities.process_batch,
            ProcessRequest(cc_pair_id=cc, attempt_id=attempt.attempt_id, batch=ref),
            **policies.PROCESS_BATCH.options(
                heartbeat=timedelta(seconds=self.tuning.process_heartbeat_seconds)
            ),
            summary=(
                f"process {self.input.source} cc-pair {cc}: batch #{ref.seq} "
                f"({ref.doc_count} docs, attempt {attempt.attempt_id})"
            ),
        )

    async def _end_attempt(
        self, status: AttemptStatus, error: str | None, errors: list[DocumentFailure]
    ) -> None:
        s = self.s
        assert s.attempt is not None
        attempt = s.attempt
        cc = self.input.cc_pair_id
        await workflow.execute_activity(
            finish_index_attempt,
            FinishAttemptRequest(
                cc_pair_id=cc,
                attempt_id=attempt.attempt_id,
                status=status.value,
                counts=attempt.counts,
                error=error,
                errors=errors,
            ),
            **policies.ATTEMPT_BOOKKEEPING.options(),
            summary=f"finish attempt {attempt.attempt_id}: {status.value}",
        )
        await workflow.execute_activity(
            delete_staged_batches,
            attempt.attempt_id,
            **policies.STAGED_BATCH_CLEANUP.options(),
            summary=f"delete staged batches of attempt {attempt.attempt_id}",
        )
        s.last_attempt_status = status.value
        s.last_attempt_counts = attempt.counts
        s.attempt = None
        self.cancel_requested = False
        now = workflow.now().timestamp()
        interval = self.input.refresh_interval_seconds
        s.next_run_at = now + interval if interval else None
        if status in (AttemptStatus.SUCCESS, AttemptStatus.COMPLETED_WITH_ERRORS):
            s.consecutive_failures = 0
            s.last_error = None
            if s.checkpoint.done:
                s.last_pass_started_at = s.pass_started_at
        elif status is AttemptStatus.FAILED:
            await self._record_failure(error or "unknown error")

    async def _record_failure(self, error: str) -> None:
        """Escalate without flapping: bad config/credentials at once, others after N in a row."""
        s = self.s
        s.consecutive_failures += 1
        s.last_error = error
        invalid = s.last_error_type in INVALIDATING_ERRORS
        flagged = s.consecutive_failures >= self.tuning.failures_before_flag
        if invalid:
            s.invalid_reason = error
            s.db_status = CcPairStatus.INVALID.value
        if invalid or flagged:
            reason = (
                error if invalid else f"{s.consecutive_failures} failed attempts in a row: {error}"
            )
            await workflow.execute_activity(
                set_cc_pair_status,
                CcPairStatusUpdate(
                    cc_pair_id=self.input.cc_pair_id,
                    status=CcPairStatus.INVALID.value if invalid else CcPairStatus.ACTIVE.value,
                    flag_reason=reason,
                    consecutive_failures=s.consecutive_failures,
                ),
                **policies.ATTEMPT_BOOKKEEPING.options(),
                summary=f"flag cc-pair {self.input.cc_pair_id}",
            )

    # --- helpers ----------------------------------------------------------------------

    def _set_state(self, state: RunState) -> None:
        if state != self.state:
            self.state = state
            workflow.upsert_search_attributes([search.STATE.value_set(state.value)])
        self._set_details()

    def _set_details(self) -> None:
        attempt = self.s.attempt
        if attempt is None:
            workflow.set_current_details(
                f"{(self.state or RunState.IDLE).value}; last: {self.s.last_attempt_status}"
            )
            return
        c = attempt.counts
        state = (self.state or RunState.IDLE).value
        workflow.set_current_details(
            f"{state}: attempt {attempt.attempt_id}, {c.batches} batches, "
            f"{c.docs_fetched} fetched, {c.docs_indexed} indexed, {c.docs_skipped} unchanged, "
            f"{c.docs_failed} failed, {self.in_flight} in flight"
        )

    def _continue_as_new(self) -> NoReturn:
        # Signals are synchronous handlers, so nothing is half-handled here.
        workflow.continue_as_new(self.input.model_copy(update={"carried": self.s}))
