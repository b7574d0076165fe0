"""Every activity's timeouts and retry policy, defined once.

These replace the time limits the seed's Celery thread pools silently lost:
``start_to_close`` bounds a single try, ``heartbeat`` notices a hung worker or
connector within seconds, retries are bounded, and the error types named in
:mod:`sluice.errors` are never retried.
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
    """Where an activity runs and how long it may take; ``options()`` feeds execute_activity."""

    task_queue: TaskQueue
    start_to_close: timedelta
    heartbeat: timedelta | None
    maximum_attempts: int
    initial_interval: timedelta = timedelta(seconds=1)
    maximum_interval: timedelta = timedelta(seconds=60)

    def options(self, **overrides: Any) -> dict[str, Any]:
        policy = replace(self, **overrides) if overrides else self
        return {
            "task_queue": policy.task_queue.value,
            "start_to_close_timeout": policy.start_to_close,
            "heartbeat_timeout": policy.heartbeat,
            "retry_policy": RetryPolicy(
                initial_interval=policy.initial_interval,
                backoff_coefficient=2.0,
                maximum_interval=policy.maximum_interval,
                maximum_attempts=policy.maximum_attempts,
                non_retryable_error_types=list(NON_RETRYABLE_ERROR_TYPES),
            ),
        }


FETCH_DOCUMENTS = ActivityPolicy(
    task_queue=TaskQueue.CONNECTOR_DOC_FETCHING,
    start_to_close=timedelta(hours=2),
    heartbeat=timedelta(seconds=60),
    maximum_attempts=5,
)
"""Runs a connector for a bounded number of batches, heartbeating per document."""

PROCESS_BATCH = ActivityPolicy(
    task_queue=TaskQueue.DOCPROCESSING,
    start_to_close=timedelta(minutes=30),
    heartbeat=timedelta(seconds=120),
    maximum_attempts=5,
)
"""Chunk, embed and write one staged batch; idempotent, so retries are safe."""

ATTEMPT_BOOKKEEPING = ActivityPolicy(
    task_queue=TaskQueue.CONNECTOR_DOC_FETCHING,
    start_to_close=timedelta(seconds=30),
    heartbeat=None,
    maximum_attempts=10,
)
"""Short writes of index-attempt and cc-pair rows."""

STAGED_BATCH_CLEANUP = ActivityPolicy(
    task_queue=TaskQueue.CHECKPOINT_CLEANUP,
    start_to_close=timedelta(minutes=5),
    heartbeat=None,
    maximum_attempts=10,
)
"""Delete a finished run's staged batches (the seed's checkpoint cleanup)."""

WORKER_GRACEFUL_SHUTDOWN = timedelta(seconds=10)
"""How long running activities may finish after a worker is told to stop (deploys)."""
