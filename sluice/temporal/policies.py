"""Every activity's timeouts and retry policy, defined once.

These replace the time limits the seed's Celery thread pools silently lost:
``start_to_close`` bounds a single try, ``heartbeat`` notices a hung worker or
connector within seconds, and the error types named in :mod:`sluice.errors` are
never retried.

Two kinds of retry budget, on purpose:

* work that touches infrastructure (Postgres, the embedding service, the source)
  retries without an attempt limit inside a **schedule-to-close budget**, so an
  outage of several minutes is ridden out instead of burning five retries in
  fifteen seconds (that is how a database restart used to lose documents);
* bookkeeping (attempt rows, cc-pair status, cleanup) retries until it succeeds,
  bounded only by a day: the long-lived connector workflow must never fail
  because Postgres was down.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

from sluice.errors import NON_RETRYABLE_ERROR_TYPES
from sluice.queues import TaskQueue


@dataclass(frozen=True)
class ActivityPolicy:
    """Where an activity runs and how long it may take; ``options()`` feeds execute_activity.

    ``maximum_attempts=0`` means "no attempt limit": the ``schedule_to_close`` budget
    is then what ends the retries.
    """

    task_queue: TaskQueue
    start_to_close: timedelta
    heartbeat: timedelta | None
    maximum_attempts: int
    schedule_to_close: timedelta | None = None
    initial_interval: timedelta = timedelta(seconds=1)
    maximum_interval: timedelta = timedelta(seconds=30)
    backoff_coefficient: float = 2.0

    def options(self, **overrides: Any) -> dict[str, Any]:
        policy = replace(self, **overrides) if overrides else self
        return {
            "task_queue": policy.task_queue.value,
            "start_to_close_timeout": policy.start_to_close,
            "schedule_to_close_timeout": policy.schedule_to_close,
            "heartbeat_timeout": policy.heartbeat,
            "retry_policy": RetryPolicy(
                initial_interval=policy.initial_interval,
                backoff_coefficient=policy.backoff_coefficient,
                maximum_interval=policy.maximum_interval,
                maximum_attempts=policy.maximum_attempts,
                non_retryable_error_types=list(NON_RETRYABLE_ERROR_TYPES),
            ),
        }


FETCH_DOCUMENTS = ActivityPolicy(
    task_queue=TaskQueue.CONNECTOR_DOC_FETCHING,
    start_to_close=timedelta(hours=1),
    heartbeat=timedelta(seconds=20),
    maximum_attempts=0,
    schedule_to_close=timedelta(hours=1),
)
"""Runs a connector for a bounded number of batches (and at most ``fetch_max_seconds``),
heartbeating per document; a retry resumes from the last heartbeat."""

PROCESS_BATCH = ActivityPolicy(
    task_queue=TaskQueue.DOCPROCESSING,
    start_to_close=timedelta(minutes=30),
    heartbeat=timedelta(seconds=20),
    maximum_attempts=0,
    schedule_to_close=timedelta(hours=1),
)
"""Chunk, embed and write one staged batch, heartbeating inside every stage; idempotent,
so retries are safe. A batch that exhausts its budget is retried by the next attempt."""

ATTEMPT_BOOKKEEPING = ActivityPolicy(
    task_queue=TaskQueue.CONNECTOR_DOC_FETCHING,
    start_to_close=timedelta(seconds=30),
    heartbeat=None,
    maximum_attempts=0,
    schedule_to_close=timedelta(days=1),
    maximum_interval=timedelta(seconds=30),
)
"""Short, idempotent writes of index-attempt and cc-pair rows: retried until they succeed."""

STAGED_BATCH_CLEANUP = ActivityPolicy(
    task_queue=TaskQueue.CHECKPOINT_CLEANUP,
    start_to_close=timedelta(minutes=5),
    heartbeat=None,
    maximum_attempts=0,
    schedule_to_close=timedelta(days=1),
    maximum_interval=timedelta(seconds=30),
)
"""Delete a finished run's staged batches (the seed's checkpoint cleanup)."""

DELETE_DOCUMENTS = ActivityPolicy(
    task_queue=TaskQueue.CONNECTOR_DELETION,
    start_to_close=timedelta(hours=2),
    heartbeat=timedelta(seconds=30),
    maximum_attempts=0,
    schedule_to_close=timedelta(days=1),
)
"""Delete a connector's documents batch by batch; idempotent, so it retries until done."""

DELETE_ROWS = ActivityPolicy(
    task_queue=TaskQueue.CONNECTOR_DELETION,
    start_to_close=timedelta(seconds=60),
    heartbeat=None,
    maximum_attempts=0,
    schedule_to_close=timedelta(days=1),
)
"""Mark a pair deleting, or delete its remaining rows: short and idempotent."""

STORE_SETTINGS = ActivityPolicy(
    task_queue=TaskQueue.CONNECTOR_DOC_FETCHING,
    start_to_close=timedelta(seconds=30),
    heartbeat=None,
    maximum_attempts=5,
)
"""Validate and store a settings change while a person waits for the answer: bounded."""

BOOKKEEPING_STUCK_AFTER = timedelta(seconds=60)
"""A bookkeeping call still retrying after this long marks the connector ``stuck``
(the SluiceState search attribute, and a warning in the worker log)."""

MAX_HEARTBEAT_THROTTLE = timedelta(seconds=2)
"""Workers send a heartbeat at most this long after the activity reported one, so the
server's view is never more than two seconds behind: a hang is noticed within its
heartbeat timeout (not 1.8×), and cancellation (pause) reaches an activity in seconds."""

START_GENERATION = ActivityPolicy(
    task_queue=TaskQueue.DOCPROCESSING,
    start_to_close=timedelta(seconds=60),
    heartbeat=None,
    maximum_attempts=5,
)
"""Try the new embedding model on one text and create the generation: a wrong model or
endpoint should fail the swap in seconds, not retry for an hour."""

EMBED_GENERATION_PAGES = ActivityPolicy(
    task_queue=TaskQueue.DOCPROCESSING,
    start_to_close=timedelta(minutes=10),
    heartbeat=timedelta(minutes=2),
    maximum_attempts=0,
    schedule_to_close=timedelta(hours=1),
)
"""Re-embed pages of chunks for about 30 s; a page to a remote model may take a while,
hence the roomier heartbeat. An hour of failures (embedding service down) fails the swap,
which leaves the live generation untouched."""

BUILD_GENERATION_INDEX = ActivityPolicy(
    task_queue=TaskQueue.DOCPROCESSING,
    start_to_close=timedelta(hours=6),
    heartbeat=timedelta(seconds=30),
    maximum_attempts=0,
    schedule_to_close=timedelta(days=1),
)
"""One CREATE INDEX CONCURRENTLY, heartbeating while Postgres builds."""

GENERATION_BOOKKEEPING = ActivityPolicy(
    task_queue=TaskQueue.DOCPROCESSING,
    start_to_close=timedelta(seconds=60),
    heartbeat=None,
    maximum_attempts=0,
    schedule_to_close=timedelta(days=1),
)
"""Switch, abandon or drop a generation: short, idempotent, retried until done."""

SWEEP = ActivityPolicy(
    task_queue=TaskQueue.PRIMARY,  # each job names its own queue (schedules/table.py)
    start_to_close=timedelta(minutes=30),
    heartbeat=timedelta(seconds=60),
    maximum_attempts=3,
)
"""A schedule's sweep: idempotent, in batches that heartbeat. Bounded on purpose: the next
firing of the schedule is the retry that matters."""

PRUNE = ActivityPolicy(
    task_queue=TaskQueue.CONNECTOR_PRUNING,
    start_to_close=timedelta(hours=2),
    heartbeat=timedelta(seconds=60),
    maximum_attempts=0,
    schedule_to_close=timedelta(hours=6),
)
"""List the source and unlink what vanished; a retry lists again (idempotent)."""

# --- seed 002: document indexes (workflows/document_index.py) -----------------------------

DOCUMENT_BOOKKEEPING = ActivityPolicy(
    task_queue=TaskQueue.USER_FILE_PROCESSING,
    start_to_close=timedelta(seconds=30),
    heartbeat=None,
    maximum_attempts=0,
    schedule_to_close=timedelta(days=1),
)
"""Claim a round's work, record a failure, publish the outcome: short and idempotent,
retried until Postgres answers (a state row must never stay ``creating``)."""

SEED_RETRY = {
    "maximum_attempts": 4,
    "initial_interval": timedelta(seconds=60),
    "maximum_interval": timedelta(seconds=60),
    "backoff_coefficient": 1.0,
}
"""The seed's retries: 3 more attempts, 60 s apart, then the failure handler."""

DOCUMENT_PARSE = ActivityPolicy(
    task_queue=TaskQueue.USER_FILE_PROCESSING,
    start_to_close=timedelta(minutes=5),
    heartbeat=None,
    **SEED_RETRY,  # type: ignore[arg-type]
)
"""Parse an uploaded document's bytes (user files: the queue the seed's uploads use)."""

DOCUMENT_INDEX_STEP = ActivityPolicy(
    task_queue=TaskQueue.DOCPROCESSING,
    start_to_close=timedelta(minutes=30),
    heartbeat=timedelta(seconds=60),
    **SEED_RETRY,  # type: ignore[arg-type]
)
"""Build one index type of one document (vector, fulltext and summary: docprocessing, where
the embedding model is loaded; graph: ``sandbox`` on the heavy worker). Heartbeats every
few seconds while it works."""

GRAPH_QUEUE = TaskQueue.SANDBOX
"""The graph step's queue: the heavy worker (few slots, CPU-bound extraction and per
collection serialised merges), so it never holds docprocessing's embedding slots."""

DOCUMENT_DELETE = ActivityPolicy(
    task_queue=TaskQueue.CONNECTOR_DELETION,
    start_to_close=timedelta(minutes=5),
    heartbeat=None,
    maximum_attempts=0,
    schedule_to_close=timedelta(days=1),
)
"""Remove index data and state rows of one document: idempotent, retried until done."""

USER_FILE_PROCESS = ActivityPolicy(
    task_queue=TaskQueue.USER_FILE_PROCESSING,
    start_to_close=timedelta(minutes=10),
    heartbeat=timedelta(seconds=60),
    maximum_attempts=0,
    schedule_to_close=timedelta(hours=1),
)
"""Parse, chunk, embed and index one upload (at most ``USER_FILE_MAX_BYTES``), heartbeating
per slice; idempotent (the write checks the file's row under its lock), so retries ride out
a database outage. What no retry can fix (type, size, encoding) is a failed status, not an
error."""

USER_FILE_CHANGE = ActivityPolicy(
    task_queue=TaskQueue.USER_FILE_PROJECT_SYNC,
    start_to_close=timedelta(seconds=60),
    heartbeat=None,
    maximum_attempts=0,
    schedule_to_close=timedelta(hours=1),
)
"""Move (re-scope) or delete one file: a few short, idempotent writes; the queue is
overridden to ``user_file_delete`` for deletions."""

CSV_EXPORT = ActivityPolicy(
    task_queue=TaskQueue.CSV_GENERATION,
    start_to_close=timedelta(hours=2),
    heartbeat=timedelta(seconds=30),
    maximum_attempts=0,
    schedule_to_close=timedelta(hours=6),
)
"""Stream rows page by page into a file, heartbeating (last key, byte offset) after each
page; a retry truncates the file to the heartbeated offset and carries on after the key."""

SANDBOX_HEARTBEAT = timedelta(seconds=10)
SANDBOX_GRACE = timedelta(seconds=30)
"""A sandbox activity's start-to-close is the run's own time limit plus this grace."""


def sandbox_policy(timeout_seconds: float) -> ActivityPolicy:
    """A command is not idempotent: one attempt. The run's own wall-clock limit kills it
    first; start-to-close (limit + grace) and the heartbeat are the backstops that end the
    activity, and with it the process group, if the worker hangs or dies."""
    return ActivityPolicy(
        task_queue=TaskQueue.SANDBOX,
        start_to_close=timedelta(seconds=timeout_seconds) + SANDBOX_GRACE,
        heartbeat=SANDBOX_HEARTBEAT,
        maximum_attempts=1,
    )


PERMISSION_COLLECT = ActivityPolicy(
    task_queue=TaskQueue.CONNECTOR_DOC_PERMISSIONS_SYNC,
    start_to_close=timedelta(hours=2),
    heartbeat=timedelta(seconds=60),
    maximum_attempts=0,
    schedule_to_close=timedelta(hours=6),
)
"""List every document's ACL at the source and stage the changed ones; a retry lists again."""

GROUP_SYNC = ActivityPolicy(
    task_queue=TaskQueue.CONNECTOR_EXTERNAL_GROUP_SYNC,
    start_to_close=timedelta(minutes=10),
    heartbeat=None,
    maximum_attempts=0,
    schedule_to_close=timedelta(hours=1),
)
"""Read the source's groups and replace the stored ones (one transaction; idempotent)."""

PERMISSION_UPSERT = ActivityPolicy(
    task_queue=TaskQueue.DOC_PERMISSIONS_UPSERT,
    start_to_close=timedelta(seconds=60),
    heartbeat=None,
    maximum_attempts=0,
    schedule_to_close=timedelta(hours=1),
)
"""Write one batch of staged ACLs: short, one transaction, a retry takes the batch again."""

METADATA_SYNC_NOW = ActivityPolicy(
    task_queue=TaskQueue.VESPA_METADATA_SYNC,
    start_to_close=timedelta(minutes=30),
    heartbeat=timedelta(seconds=60),
    maximum_attempts=0,
    schedule_to_close=timedelta(hours=2),
)
"""The metadata sync a permission sync runs at its end, so chunks carry the new ACLs when
it finishes (the ``metadata-sync`` schedule stays the safety net)."""
