"""Which workflows and activities each task queue serves (one table, used by every worker)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from temporalio.client import Client

from activities import (
    attempts,
    bulk,
    deletion,
    docfetching,
    permissions,
    probe,
    pruning,
    settings,
)
from activities.docprocessing import DocProcessingActivities
from activities.generations import GenerationActivities
from activities.sweeps import SweepActivities
from schedules.table import JOBS
from sluice.index.embedders import Embedders
from sluice.index.embedding import EmbeddingProvider
from sluice.queues import TaskQueue
from workflows.bulk import BulkConnectorsWorkflow
from workflows.connector import ConnectorWorkflow
from workflows.deletion import ConnectorDeletionWorkflow
from workflows.model_swap import ModelSwapWorkflow
from workflows.permission_sync import ConnectorPermissionSyncWorkflow
from workflows.pruning import ConnectorPruningWorkflow
from workflows.sweep import SweepWorkflow

WORKFLOWS: dict[TaskQueue, Sequence[type]] = {
    TaskQueue.PRIMARY: [
        ConnectorWorkflow,
        ConnectorDeletionWorkflow,
        BulkConnectorsWorkflow,
        ModelSwapWorkflow,
        SweepWorkflow,
        ConnectorPruningWorkflow,
        ConnectorPermissionSyncWorkflow,
    ],
}


def sweep_activities(queue: TaskQueue, client: Client) -> list[Callable[..., Any]]:
    """The schedules' sweep activities that run on ``queue`` (the table routes them)."""
    sweeps = SweepActivities(client)
    return [
        getattr(sweeps, job.activity) for job in JOBS if job.enabled and job.task_queue is queue
    ]


def activities_for(
    queue: TaskQueue, embedder_factory: Callable[[], EmbeddingProvider], client: Client
) -> list[Callable[..., Any]]:
    """The activities ``queue`` serves; the embedder is built only where it is needed."""
    table: dict[TaskQueue, list[Callable[..., Any]]] = {
        TaskQueue.CONNECTOR_DOC_FETCHING: [
            docfetching.fetch_documents,
            attempts.start_index_attempt,
            attempts.finish_index_attempt,
            attempts.set_cc_pair_status,
            settings.store_connector_settings,
            bulk.select_connectors,
        ],
        TaskQueue.CHECKPOINT_CLEANUP: [attempts.delete_staged_batches],
        TaskQueue.CONNECTOR_PRUNING: [pruning.prune_connector],
        TaskQueue.CONNECTOR_DOC_PERMISSIONS_SYNC: [permissions.collect_doc_permissions],
        TaskQueue.CONNECTOR_EXTERNAL_GROUP_SYNC: [permissions.sync_external_groups],
        TaskQueue.DOC_PERMISSIONS_UPSERT: [permissions.upsert_doc_permissions],
        TaskQueue.CONNECTOR_DELETION: [
            deletion.mark_cc_pair_deleting,
            deletion.delete_connector_documents,
            deletion.delete_connector_rows,
        ],
    }
    found = list(table.get(queue, []))
    if queue is TaskQueue.DOCPROCESSING:
        # One provider cache per worker: indexing and re-embedding share loaded models.
        embedders = Embedders(embedder_factory())
        generations = GenerationActivities(embedders)
        found += [
            DocProcessingActivities(embedders).process_batch,
            generations.start_generation,
            generations.embed_generation_pages,
            generations.build_generation_index,
            generations.switch_generation,
            generations.abandon_generation,
            generations.drop_generation_vectors,
        ]
    return [*found, *sweep_activities(queue, client), probe.queue_probe]
