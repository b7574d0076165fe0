"""The connector workflow survives an activity that gives up (time-skipping server).

Stub activities (as the Temporal samples do) play a bookkeeping write that fails
for good once, the way one would after Postgres was unreachable for its whole
one-day budget. The workflow records the error, backs off on a durable timer,
continues-as-new and finishes the job; it never fails.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from sluice.connectors.models import Checkpoint
from sluice.indexing.models import (
    CcPairStatusUpdate,
    CleanupRequest,
    ConnectorProgress,
    ConnectorWorkflowInput,
    FetchRequest,
    FetchResult,
    FinishAttemptRequest,
    ProcessRequest,
    ProcessResult,
    StagedBatchRef,
    StartAttemptRequest,
    StartedAttempt,
)
from sluice.queues import TaskQueue
from workers.collector import collector_paused
from workflows.connector import ConnectorWorkflow


class Stubs:
    """In-memory activities; ``fail_once`` names the one that gives up the first time."""

    def __init__(self, fail_once: str) -> None:
        self.fail_once = fail_once
        self.calls: dict[str, int] = {}
        self.finished: list[str] = []

    def _called(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if name == self.fail_once and self.calls[name] == 1:
            raise ApplicationError(
                "connection refused: Postgres unreachable for the whole retry budget",
                type="ConnectionRefusedError",
                non_retryable=True,
            )

    def activities(self) -> dict[TaskQueue, list[Callable[..., Any]]]:
        @activity.defn(name="start_index_attempt")
        async def start(request: StartAttemptRequest) -> StartedAttempt:
            self._called("start_index_attempt")
            return StartedAttempt(attempt_id=7)

        @activity.defn(name="set_cc_pair_status")
        async def set_status(update: CcPairStatusUpdate) -> None:
            self._called("set_cc_pair_status")

        @activity.defn(name="fetch_documents")
        async def fetch(request: FetchRequest) -> FetchResult:
            self._called("fetch_documents")
            ref = StagedBatchRef(batch_id=1, seq=request.first_seq, doc_count=3)
            return FetchResult(
                batches=[ref], checkpoint=Checkpoint(done=True), docs_fetched=3, failures=0
            )

        @activity.defn(name="process_batch")
        async def process(request: ProcessRequest) -> ProcessResult:
            self._called("process_batch")
            return ProcessResult(docs_indexed=request.batch.doc_count)

        @activity.defn(name="finish_index_attempt")
        async def finish(request: FinishAttemptRequest) -> None:
            self._called("finish_index_attempt")
            self.finished.append(request.status)

        @activity.defn(name="delete_staged_batches")
        async def cleanup(request: CleanupRequest) -> int:
            self._called("delete_staged_batches")
            return 1

        return {
            TaskQueue.CONNECTOR_DOC_FETCHING: [start, set_status, fetch, finish],
            TaskQueue.DOCPROCESSING: [process],
            TaskQueue.CHECKPOINT_CLEANUP: [cleanup],
        }


@asynccontextmanager
async def stub_workers(client: Client, stubs: Stubs) -> AsyncIterator[None]:
    with collector_paused():
        workers = [
            Worker(client, task_queue=TaskQueue.PRIMARY.value, workflows=[ConnectorWorkflow])
        ]
        for queue, found in stubs.activities().items():
            workers.append(Worker(client, task_queue=queue.value, activities=found))
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield
    finally:
        await asyncio.gather(*(w.shutdown() for w in workers))
        await asyncio.gather(*tasks, return_exceptions=True)


async def skip_time(env: WorkflowEnvironment, by: timedelta) -> None:
    """Skip ``by`` of workflow time; a slow machine may time the skip RPC out.

    The test server answers ``Timeout expired`` when the skip cannot finish in
    its own deadline (a busy 2-core CI box); the loop that calls this polls
    again, so a timed-out skip is just one more poll.
    """
    try:
        await env.sleep(by)
    except RPCError as err:
        if "Timeout expired" not in str(err):
            raise
        await asyncio.sleep(1)


async def run_until_recovered(env: WorkflowEnvironment, stubs: Stubs) -> ConnectorProgress:
    client = env.client
    tenant = "t_" + uuid.uuid4().hex[:10]
    async with stub_workers(client, stubs):
        handle = await client.start_workflow(
            ConnectorWorkflow.run,
            ConnectorWorkflowInput(tenant_id=tenant, cc_pair_id=1, source="synthetic"),
            id=f"connector/{tenant}/1",
            task_queue=TaskQueue.PRIMARY.value,
        )
        progress: ConnectorProgress | None = None
        for _ in range(40):  # the back-off is a 60 s durable timer: skip past it
            try:
                progress = await handle.query(
                    ConnectorWorkflow.progress, rpc_timeout=timedelta(seconds=5)
                )
            except RPCError:  # a run that just continued-as-new may not answer yet
                progress = None
            if progress is not None and progress.last_attempt_status is not None:
                break
            await skip_time(env, timedelta(seconds=30))
        described = await handle.describe()
    assert described.status == WorkflowExecutionStatus.RUNNING
    assert progress is not None
    return progress


async def test_a_finish_that_gives_up_is_written_later_and_the_workflow_lives(
    ts_env: WorkflowEnvironment,
) -> None:
    stubs = Stubs(fail_once="finish_index_attempt")
    progress = await run_until_recovered(ts_env, stubs)
    # The outcome was kept in state through the failure, back-off and continue-as-new.
    assert stubs.finished == ["success"]
    assert stubs.calls["finish_index_attempt"] == 2
    assert stubs.calls["fetch_documents"] == 1  # the attempt was not run again
    assert progress.last_attempt_status == "success"
    assert progress.attempts_started == 1


async def test_a_start_that_gives_up_is_retried_by_the_next_run(
    ts_env: WorkflowEnvironment,
) -> None:
    stubs = Stubs(fail_once="start_index_attempt")
    progress = await run_until_recovered(ts_env, stubs)
    assert stubs.calls["start_index_attempt"] == 2
    assert stubs.finished == ["success"]
    assert progress.attempts_started == 1
    assert progress.last_error is None  # cleared by the successful attempt
