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

The entity never dies: bookkeeping retries until Postgres answers, a batch that
could not be processed goes to the next attempt, an attempt a vanished run left
open is closed as ``interrupted`` when the next one starts, and any other failure
is recorded on the attempt before the workflow backs off and continues-as-new.

Between attempts it also prunes (``prune`` signal, sent by the pruning-check schedule or
``sluice connector prune``): a child workflow removes what vanished at the source, so
pruning and indexing of one pair never run at the same time.

It syncs permissions the same way (``sync_permissions`` signal, sent by the
permission-sync-check schedule or ``sluice connector sync-permissions``): a child workflow
stores the source's groups and writes changed ACLs, never during an attempt.

Signals: ``index_now``, ``pause``, ``resume``, ``cancel_run``, ``retry_failed``, ``prune``,
``sync_permissions``, ``delete``. Update: ``update_settings``. Query: ``progress``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import NoReturn

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ChildWorkflowError,
    FailureError,
    WorkflowAlreadyStartedError,
)
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.attempts import (
        delete_staged_batches,
        finish_index_attempt,
        set_cc_pair_status,
        start_index_attempt,
    )
    from activities.settings import store_connector_settings
    from sluice.connectors.models import Checkpoint
    from sluice.connectors.registry import config_fields
    from sluice.db.models import AttemptStatus, CcPairStatus
    from sluice.errors import CcPairDeleted
    from sluice.indexing.models import (
        AttemptCounts,
        AttemptInProgress,
        AttemptOutcome,
        CarriedState,
        CcPairStatusUpdate,
        CleanupRequest,
        ConnectorProgress,
        ConnectorWorkflowInput,
        DeletionInput,
        FinishAttemptRequest,
        IndexNowRequest,
        PermissionSyncInput,
        PruneInput,
        RunState,
        SettingsApplied,
        SettingsUpdate,
        StartAttemptRequest,
        StartedAttempt,
        StoreSettingsRequest,
    )
    from sluice.temporal import policies, search, workflow_ids
    from sluice.temporal.workflow_ids import (
        deletion_workflow_id,
        permission_sync_workflow_id,
        pruning_workflow_id,
    )
    from workflows import patches
    from workflows.attempt import INVALIDATING_ERRORS, AttemptPipeline, error_text, error_type
    from workflows.bookkeeping import ArgT, ResultT, bookkeeping
    from workflows.deletion import ConnectorDeletionWorkflow
    from workflows.permission_sync import ConnectorPermissionSyncWorkflow
    from workflows.pruning import ConnectorPruningWorkflow

UNEXPECTED_ERROR_BACKOFF = (60, 3600)
"""Seconds before a run that hit an unexpected error continues-as-new (doubling, capped)."""


@workflow.defn(name=workflow_ids.CONNECTOR)
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
        self._state_before_stuck: RunState | None = None
        self.settings_version = 0

    # --- signals and queries ----------------------------------------------------------

    @workflow.signal
    def index_now(self, request: IndexNowRequest | None = None) -> None:
        """Run an attempt now (``from_beginning`` re-fetches everything)."""
        self.s.index_requested = True
        if request is not None and request.from_beginning:
            self.s.from_beginning = True
        if self.s.invalid_reason is not None:  # a person asked: give it another try
            self.s.invalid_reason = None

    @workflow.signal(name="delete")
    def delete_connector(self) -> None:
        """Stop for good: the running attempt ends as canceled, then the connector's
        deletion workflow takes over and this workflow completes (never terminate)."""
        self.s.deleting = True

    @workflow.signal
    def retry_failed(self) -> None:
        """Run an attempt that fetches again, by ID, only the documents recent attempts
        recorded as failed (no from-the-beginning run)."""
        self.s.retry_failed_requested = True
        self.s.index_requested = True

    @workflow.signal
    def prune(self) -> None:
        """Remove documents that vanished at the source, before the next attempt."""
        if not self.s.deleting:
            self.s.prune_requested = True

    @workflow.signal
    def sync_permissions(self) -> None:
        """Read ACLs and groups at the source again, before the next attempt."""
        if not self.s.deleting:
            self.s.permission_sync_requested = True

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

    @workflow.update
    async def update_settings(self, change: SettingsUpdate) -> SettingsApplied:
        """Change the refresh interval or the connector's config while it runs: stored
        (and validated against the source) by an activity, picked up without a restart.
        The next due time moves with the interval; a running attempt keeps its config,
        the next one reads the new one."""
        cc = self.input.cc_pair_id
        applied = await workflow.execute_activity(
            store_connector_settings,
            StoreSettingsRequest(
                cc_pair_id=cc,
                refresh_interval_seconds=change.refresh_interval_seconds,
                change_interval=change.refresh_interval_seconds is not None,
                config=change.config,
            ),
            **policies.STORE_SETTINGS.options(),
            summary=f"store new settings of cc-pair {cc}",
        )
        old = self.input.refresh_interval_seconds
        new = applied.refresh_interval_seconds
        self.input = self.input.model_copy(update={"refresh_interval_seconds": new})
        self._reschedule(old, new)
        self.settings_version += 1
        due = self.s.next_run_at
        applied.next_run_in_seconds = (
            None if due is None else max(0.0, due - workflow.now().timestamp())
        )
        return applied

    @update_settings.validator
    def _validate_settings(self, change: SettingsUpdate) -> None:
        """Reject before anything is written (the caller sees the field named)."""
        if self.s.deleting:
            raise ValueError("the connector is being deleted")
        interval = change.refresh_interval_seconds
        if interval is None and not change.config:
            raise ValueError("nothing to change: give refresh_interval_seconds or config")
        if interval is not None and interval < 0:
            raise ValueError(
                f"refresh_interval_seconds must be a positive number of seconds "
                f"(0: index-now only), got {interval}"
            )
        unknown = sorted(set(change.config) - set(config_fields(self.input.source)))
        if unknown:
            raise ValueError(
                f"connector config field {unknown[0]!r}: not a setting of "
                f"the {self.input.source} connector"
            )

    def _reschedule(self, old: int | None, new: int | None) -> None:
        """Keep the time since the last attempt: due = last end + the new interval."""
        s = self.s
        now = workflow.now().timestamp()
        base = s.next_run_at - old if s.next_run_at is not None and old else now
        s.next_run_at = base + new if new else None

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
            state=self._reported_state(),
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
            refresh_interval_seconds=self.input.refresh_interval_seconds,
            last_prune=self.s.last_prune,
            last_permission_sync=self.s.last_permission_sync,
        )

    # --- the state machine ------------------------------------------------------------

    @workflow.run
    async def run(self, input: ConnectorWorkflowInput) -> None:
        try:
            await self._step()
            if self.s.deleting and self.s.attempt is None:
                await self._hand_over_to_deletion()
                return
        except asyncio.CancelledError:
            # Canceling the workflow stops the connector for good: close the attempt
            # (canceled, its staged batches deleted) so nothing is left in progress.
            await self._close_on_cancel()
            raise
        except FailureError as err:
            # An activity or a bookkeeping write gave up: record it and carry on. (A bug in
            # this code raises a plain exception instead, which fails only the workflow
            # *task*: Temporal retries it and the connector waits for the fix, alive.)
            await self._recover_from(err)
        await self._finish_handlers_then_continue_as_new()

    async def _step(self) -> None:
        """One run: wait, start an attempt, run it, close it. Returning continues-as-new."""
        if self.s.ending is None:
            if self.s.attempt is None:
                await self._wait_until_due()
                if self.s.deleting:
                    return
                if self._prune_ready() and workflow.patched(patches.PRUNING_BETWEEN_ATTEMPTS):
                    await self._prune()
                    return
                if self._permission_sync_ready() and workflow.patched(
                    patches.PERMISSION_SYNC_BETWEEN_ATTEMPTS
                ):
                    await self._sync_permissions()
                    return
                if not await self._start_attempt():
                    return
            if workflow.patched(patches.RUNNING_STATE_DURING_ATTEMPT):
                self._set_state(RunState.RUNNING)
            outcome = await AttemptPipeline(self).run()
            if outcome is None:  # the attempt goes on in a fresh run
                return
            self.s.ending = outcome
        await self._end_attempt()
        self.s.unexpected_errors = 0

    async def _hand_over_to_deletion(self) -> None:
        """Start the pair's deletion workflow (it outlives this one) and stop here."""
        self._set_state(RunState.DELETING)
        tenant, cc = self.input.tenant_id, self.input.cc_pair_id
        try:
            await workflow.start_child_workflow(
                ConnectorDeletionWorkflow.run,
                DeletionInput(tenant_id=tenant, cc_pair_id=cc),
                id=deletion_workflow_id(tenant, cc),
                task_queue=workflow.info().task_queue,
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary=f"delete {self.input.source} cc-pair {cc}",
            )
        except WorkflowAlreadyStartedError:
            pass  # asked twice: the first deletion is running

    async def _prune(self) -> None:
        """Run the pruning child and wait for it; a failure is recorded, never fatal."""
        s = self.s
        self._set_state(RunState.PRUNING)
        tenant, cc = self.input.tenant_id, self.input.cc_pair_id
        # Served now: a request signalled while the child runs must stay for the next run
        # (signals are applied before the child's result in the same activation).
        s.prune_requested = False
        try:
            s.last_prune = await workflow.execute_child_workflow(
                ConnectorPruningWorkflow.run,
                PruneInput(tenant_id=tenant, cc_pair_id=cc),
                id=pruning_workflow_id(tenant, cc),
                task_queue=workflow.info().task_queue,
                static_summary=f"prune {self.input.source} cc-pair {cc}",
            )
        except (ChildWorkflowError, WorkflowAlreadyStartedError) as err:
            s.last_error = f"pruning failed: {error_text(err)}"
            workflow.logger.warning("pruning failed: %s", s.last_error)

    async def _sync_permissions(self) -> None:
        """Run the permission-sync child and wait for it; a failure is recorded, never fatal."""
        s = self.s
        self._set_state(RunState.SYNCING_PERMISSIONS)
        tenant, cc = self.input.tenant_id, self.input.cc_pair_id
        s.permission_sync_requested = False  # served now; a new request waits (see _prune)
        try:
            s.last_permission_sync = await workflow.execute_child_workflow(
                ConnectorPermissionSyncWorkflow.run,
                PermissionSyncInput(tenant_id=tenant, cc_pair_id=cc),
                id=permission_sync_workflow_id(tenant, cc),
                task_queue=workflow.info().task_queue,
                static_summary=f"sync permissions of {self.input.source} cc-pair {cc}",
            )
        except (ChildWorkflowError, WorkflowAlreadyStartedError) as err:
            s.last_error = f"permission sync failed: {error_text(err)}"
            workflow.logger.warning("permission sync failed: %s", s.last_error)

    async def _close_on_cancel(self) -> None:
        s = self.s
        if s.attempt is not None:
            if s.ending is None:
                s.ending = AttemptOutcome(
                    status=AttemptStatus.CANCELED.value, error="connector workflow canceled"
                )
            await self._end_attempt()
        self._set_state(RunState.STOPPED)

    async def _recover_from(self, err: FailureError) -> None:
        """Record an unexpected failure on the attempt, then back off before the next run."""
        s = self.s
        message = error_text(err)
        workflow.logger.error("connector run failed unexpectedly: %s", message)
        s.last_error = message
        s.unexpected_errors += 1
        if s.attempt is not None and s.ending is None:
            s.ending = AttemptOutcome(
                status=AttemptStatus.FAILED.value, error=f"unexpected: {message}"
            )
        first, cap = UNEXPECTED_ERROR_BACKOFF
        delay = min(cap, first * 2 ** (s.unexpected_errors - 1))
        await workflow.sleep(timedelta(seconds=delay), summary="back off after an error")

    def _ready(self) -> bool:
        return self.s.index_requested and not self.s.paused and self.s.invalid_reason is None

    def _prune_ready(self) -> bool:
        s = self.s
        return s.prune_requested and not s.paused and s.invalid_reason is None

    def _permission_sync_ready(self) -> bool:
        s = self.s
        return s.permission_sync_requested and not s.paused and s.invalid_reason is None

    def _go(self) -> bool:
        """Leave the wait: an attempt, a prune or a permission sync is due, or the
        connector is being deleted."""
        return (
            self._ready() or self._prune_ready() or self._permission_sync_ready() or self.s.deleting
        )

    async def _wait_until_due(self) -> None:
        """Until an attempt is due (timer) or asked for, and neither paused nor invalid."""
        while True:
            if self.s.deleting:
                break
            await self._sync_db_status()
            if self._ready() or self._prune_ready() or self._permission_sync_ready():
                break
            self._set_state(self._resting_state())
            due = self._due_at()
            self.next_run_at = due
            timeout = None if due is None else max(0.0, due - workflow.now().timestamp())
            was = self._wait_inputs()

            def due_or_changed(was: tuple[object, ...] = was) -> bool:
                return self._go() or self._wait_inputs() != was

            try:
                await workflow.wait_condition(
                    due_or_changed,
                    timeout=timedelta(seconds=timeout) if timeout is not None else None,
                    timeout_summary="refresh interval",
                )
            except TimeoutError:
                self.s.index_requested = True
        self.next_run_at = None

    def _reported_state(self) -> RunState:
        """The state a query reports. A run that has just closed its attempt is about to
        continue-as-new and still says ``running``; a query answered from that closed
        run (it races the hand-over) must not, so without an attempt it is at rest."""
        if self.s.attempt is None and self.state in (None, RunState.RUNNING):
            return self._resting_state()
        return self.state or RunState.IDLE

    def _wait_inputs(self) -> tuple[object, ...]:
        """What, when it changes, means the wait must be worked out again."""
        return (self.s.paused, self.s.invalid_reason, self.settings_version)

    def _resting_state(self) -> RunState:
        if self.s.paused:
            return RunState.PAUSED
        return RunState.INVALID if self.s.invalid_reason else RunState.IDLE

    def _due_at(self) -> float | None:
        """When the next attempt is due on its own: the refresh interval, or sooner when
        batches wait to be retried; never while paused or invalid."""
        s = self.s
        if s.paused or s.invalid_reason is not None:
            return None
        if not self.input.refresh_interval_seconds and not s.retry_batches:
            return None
        return s.next_run_at or workflow.now().timestamp()

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
        await self._book(
            set_cc_pair_status,
            CcPairStatusUpdate(
                cc_pair_id=self.input.cc_pair_id,
                status=wanted,
                clear_flag=s.db_status == CcPairStatus.INVALID.value,
            ),
            summary=f"cc-pair {self.input.cc_pair_id} is now {wanted}",
        )
        s.db_status = wanted

    def _position_checkpoint(self) -> None:
        """From the beginning, incrementally after a finished pass, or resume as is."""
        s = self.s
        if s.from_beginning:
            s.checkpoint = Checkpoint()
        elif s.checkpoint.done:
            # The last pass finished: the next one is incremental from when it began.
            s.checkpoint = Checkpoint(since=s.last_pass_started_at)
        if s.checkpoint.cursor is None:
            s.pass_started_at = workflow.now().timestamp()

    async def _start_attempt(self) -> bool:
        """Open the next attempt; False when the pair turned out to be deleted."""
        s = self.s
        # A retry-failed attempt walks its own list: the connector's checkpoint stays put.
        retry_failed = s.retry_failed_requested and not s.from_beginning
        if not retry_failed:
            self._position_checkpoint()
        info = workflow.info()
        try:
            started: StartedAttempt = await self._book(
                start_index_attempt,
                StartAttemptRequest(
                    cc_pair_id=self.input.cc_pair_id,
                    from_beginning=s.from_beginning,
                    workflow_id=info.workflow_id,
                    run_id=info.run_id,
                    adopt_batches=[ref.batch_id for ref in s.retry_batches],
                ),
                summary=f"start index attempt for cc-pair {self.input.cc_pair_id}",
            )
        except ActivityError as err:
            if error_type(err) != CcPairDeleted.__name__:
                raise
            s.deleting = True  # deleted underneath us: let the deletion finish the job
            return False
        s.attempt = AttemptInProgress(
            attempt_id=started.attempt_id,
            from_beginning=s.from_beginning,
            queued=started.adopted,
            next_seq=len(started.adopted),
            retry_failed=retry_failed,
        )
        s.retry_failed_requested = False
        s.retry_batches = []
        s.last_error_type = None
        s.attempts_started += 1
        s.index_requested = False
        s.from_beginning = False
        return True

    async def _end_attempt(self) -> None:
        """Write the outcome (kept in state until written), delete the staged batches
        except those the next attempt must process, and plan the next run."""
        s = self.s
        assert s.attempt is not None and s.ending is not None
        attempt, outcome = s.attempt, s.ending
        status = AttemptStatus(outcome.status)
        await self._book(
            finish_index_attempt,
            FinishAttemptRequest(
                cc_pair_id=self.input.cc_pair_id,
                attempt_id=attempt.attempt_id,
                status=status.value,
                counts=attempt.counts,
                error=outcome.error,
                errors=outcome.errors,
            ),
            summary=f"finish attempt {attempt.attempt_id}: {status.value}",
        )
        keep = [ref.batch_id for ref in outcome.retry]
        await self._book(
            delete_staged_batches,
            CleanupRequest(attempt_id=attempt.attempt_id, keep=keep),
            policy=policies.STAGED_BATCH_CLEANUP,
            summary=f"delete staged batches of attempt {attempt.attempt_id}",
        )
        s.retry_batches = list(outcome.retry)
        s.last_attempt_status = status.value
        s.last_attempt_counts = attempt.counts
        s.attempt = None
        s.ending = None
        self.cancel_requested = False
        self._plan_next_run()
        if status in (AttemptStatus.SUCCESS, AttemptStatus.COMPLETED_WITH_ERRORS):
            s.consecutive_failures = 0
            s.last_error = None
            if s.checkpoint.done and not attempt.retry_failed:
                s.last_pass_started_at = s.pass_started_at
        elif status is AttemptStatus.FAILED:
            await self._record_failure(outcome.error or "unknown error")

    def _plan_next_run(self) -> None:
        """The refresh interval from now; sooner when batches wait to be retried."""
        s = self.s
        now = workflow.now().timestamp()
        interval = self.input.refresh_interval_seconds
        s.next_run_at = now + interval if interval else None
        if s.retry_batches:
            retry_at = now + self.input.tuning.failed_batch_retry_seconds
            s.next_run_at = min(s.next_run_at or retry_at, retry_at)

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
            await self._book(
                set_cc_pair_status,
                CcPairStatusUpdate(
                    cc_pair_id=self.input.cc_pair_id,
                    status=CcPairStatus.INVALID.value if invalid else CcPairStatus.ACTIVE.value,
                    flag_reason=reason,
                    consecutive_failures=s.consecutive_failures,
                ),
                summary=f"flag cc-pair {self.input.cc_pair_id}",
            )

    # --- helpers ----------------------------------------------------------------------

    async def _book(
        self,
        activity: Callable[[ArgT], Awaitable[ResultT]],
        arg: ArgT,
        *,
        summary: str,
        policy: policies.ActivityPolicy = policies.ATTEMPT_BOOKKEEPING,
    ) -> ResultT:
        """A bookkeeping write that never gives up; the connector shows ``stuck`` meanwhile."""
        return await bookkeeping(
            activity, arg, summary=summary, policy=policy, on_stuck=self._mark_stuck
        )

    def _mark_stuck(self, stuck: bool) -> None:
        if stuck:
            self._state_before_stuck = self.state
            self._set_state(RunState.STUCK)
        elif self.state is RunState.STUCK:
            self._set_state(self._state_before_stuck or RunState.IDLE)

    def _set_state(self, state: RunState) -> None:
        if state != self.state:
            self.state = state
            workflow.upsert_search_attributes([search.STATE.value_set(state.value)])
        self.set_details()

    def set_details(self) -> None:
        """The Web UI's live line. Static summaries do not survive continue-as-new, so the
        line itself names the connector on every run."""
        workflow.set_current_details(f"{self._title()}\n{self._status_line()}")

    def _title(self) -> str:
        name = f" '{self.input.name}'" if self.input.name else ""
        every = self.input.refresh_interval_seconds
        refresh = f"refresh every {every} s" if every else "index-now only"
        return f"{self.input.source} connector{name} (cc-pair {self.input.cc_pair_id}), {refresh}"

    def _status_line(self) -> str:
        attempt = self.s.attempt
        state = (self.state or RunState.IDLE).value
        if attempt is None:
            return f"{state}; last attempt: {self.s.last_attempt_status or 'none yet'}"
        c = attempt.counts
        return (
            f"{state}: attempt {attempt.attempt_id}, {c.batches} batches, "
            f"{c.docs_fetched} fetched, {c.docs_indexed} indexed, {c.docs_skipped} unchanged, "
            f"{c.docs_failed} failed, {self.in_flight} in flight"
        )

    async def _finish_handlers_then_continue_as_new(self) -> NoReturn:
        """An Update being handled must answer before the run hands over. (Only waits when
        one is: an await would end the workflow task, and a query in between would see
        the finished attempt with the run's old state.)"""
        if not workflow.all_handlers_finished():
            await workflow.wait_condition(workflow.all_handlers_finished)
        self._continue_as_new()

    def _continue_as_new(self) -> NoReturn:
        # Signals are synchronous handlers, so nothing is half-handled here.
        workflow.continue_as_new(self.input.model_copy(update={"carried": self.s}))
