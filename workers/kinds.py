"""Worker kinds → task queues → concurrency, defined once (the seed's worker table).

``standard`` mode runs one process per kind (except ``background``), each scaled
on its own; ``lightweight`` mode runs a single ``background`` process that polls
every queue, workflows included. Concurrency follows the seed: light 192
concurrent activities (24 workers × 8 prefetch), heavy 4, background 20.
"""

from __future__ import annotations

from dataclasses import dataclass

from sluice.config import DeploymentMode
from sluice.queues import ALL_QUEUES, TaskQueue


@dataclass(frozen=True)
class WorkerKind:
    name: str
    queues: tuple[TaskQueue, ...]
    max_concurrent_activities: int
    description: str
    max_concurrent_workflow_tasks: int = 100


WORKER_KINDS: dict[str, WorkerKind] = {
    kind.name: kind
    for kind in (
        WorkerKind(
            "primary",
            (TaskQueue.PRIMARY,),
            20,
            "Runs the workflows (the seed's coordinator); workflows only orchestrate.",
        ),
        WorkerKind(
            "light",
            (
                TaskQueue.VESPA_METADATA_SYNC,
                TaskQueue.CONNECTOR_DELETION,
                TaskQueue.DOC_PERMISSIONS_UPSERT,
                TaskQueue.CHECKPOINT_CLEANUP,
                TaskQueue.INDEX_ATTEMPT_CLEANUP,
            ),
            192,
            "Fast, short, not resource-hungry: metadata sync, deletion, cleanup.",
        ),
        WorkerKind(
            "heavy",
            (
                TaskQueue.CONNECTOR_PRUNING,
                TaskQueue.CONNECTOR_DOC_PERMISSIONS_SYNC,
                TaskQueue.CONNECTOR_EXTERNAL_GROUP_SYNC,
                TaskQueue.CSV_GENERATION,
                TaskQueue.SANDBOX,
            ),
            4,
            "Long, resource-hungry: pruning, permission and group sync, CSV, sandbox.",
        ),
        WorkerKind(
            "docprocessing",
            (TaskQueue.DOCPROCESSING,),
            4,
            "Chunk, embed, write to the document index (CPU-bound: a few at a time).",
        ),
        WorkerKind(
            "docfetching",
            (TaskQueue.CONNECTOR_DOC_FETCHING,),
            16,
            "Run connectors and stage their batches (I/O-bound).",
        ),
        WorkerKind(
            "user_file_processing",
            (
                TaskQueue.USER_FILE_PROCESSING,
                TaskQueue.USER_FILE_PROJECT_SYNC,
                TaskQueue.USER_FILE_DELETE,
            ),
            8,
            "Files uploaded by users: process, re-scope, delete.",
        ),
        WorkerKind(
            "monitoring",
            (TaskQueue.MONITORING,),
            4,
            "Queue backlogs, connector outcomes and latency, worker memory.",
        ),
        WorkerKind(
            "background",
            ALL_QUEUES,
            20,
            "Lightweight mode: one process polls every queue, workflows included.",
        ),
    )
}


def kinds_for_mode(mode: DeploymentMode) -> list[WorkerKind]:
    """The processes a deployment runs: one background, or one per specialised kind."""
    if mode is DeploymentMode.LIGHTWEIGHT:
        return [WORKER_KINDS["background"]]
    return [k for name, k in WORKER_KINDS.items() if name != "background"]


def get_kind(name: str) -> WorkerKind:
    try:
        return WORKER_KINDS[name]
    except KeyError:
        from sluice.errors import ConfigurationError

        raise ConfigurationError(
            f"unknown worker kind {name!r}; expected one of: {', '.join(WORKER_KINDS)}"
        ) from None
