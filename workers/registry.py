"""Which workflows and activities each task queue serves (one table, used by every worker)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from temporalio.client import Client

from activities import (
    attempts,
    bulk,
    deletion,
    docfetching,
    exports,
    permissions,
    probe,
    pruning,
    sandbox,
    settings,
)
from activities.docprocessing import DocProcessingActivities
from activities.document_index import DocumentIndexActivities
from activities.document_sweeps import DocumentSweepActivities
from activities.generations import GenerationActivities
from activities.sweeps import SweepActivities
from activities.user_files import UserFileActivities
from schedules.table import JOBS
from sluice.index.embedders import Embedders
from sluice.index.embedding import EmbeddingProvider
from sluice.queues import TaskQueue
from workflows.bulk import BulkConnectorsWorkflow
from workflows.connector import ConnectorWorkflow
from workflows.deletion import ConnectorDeletionWorkflow
from workflows.document_index import DocumentIndexWorkflow
from workflows.export import CsvExportWorkflow
from workflows.model_swap import ModelSwapWorkflow
from workflows.permission_sync import ConnectorPermissionSyncWorkflow
from workflows.pruning import ConnectorPruningWorkflow
from workflows.sandbox import SandboxWorkflow
from workflows.sweep import SweepWorkflow
from workflows.user_files import UserFileDeleteWorkflow, UserFileMoveWorkflow, UserFileWorkflow

WORKFLOWS: dict[TaskQueue, Sequence[type]] = {
    TaskQueue.PRIMARY: [
        ConnectorWorkflow,
        ConnectorDeletionWorkflow,
        BulkConnectorsWorkflow,
        ModelSwapWorkflow,
        SweepWorkflow,
        ConnectorPruningWorkflow,
        DocumentIndexWorkflow,
        UserFileWorkflow,
        UserFileMoveWorkflow,
        UserFileDeleteWorkflow,
        SandboxWorkflow,
        CsvExportWorkflow,
        ConnectorPermissionSyncWorkflow,
    ],
}


def sweep_activities(queue: TaskQueue, client: Client) -> list[Callable[..., Any]]:
    """The schedules' sweep activities that run on ``queue`` (the table routes them).

    A job's activity is a method of one of the sweep classes (seed 000's, seed 002's),
    found by name.
    """
    owners: tuple[object, ...] = (SweepActivities(client), DocumentSweepActivities(client))
    return [
        _sweep_method(owners, job.activity)
        for job in JOBS
        if job.enabled and job.task_queue is queue
    ]


def _sweep_method(owners: tuple[object, ...], name: str) -> Callable[..., Any]:
    for owner in owners:
        method = getattr(owner, name, None)
        if method is not None:
            return method  # type: ignore[no-any-return]
    raise LookupError(f"no sweep activity named {name!r} (schedules/table.py)")


def document_index_activities(
    queue: TaskQueue, embedders: Callable[[], Embedders]
) -> list[Callable[..., Any]]:
    """Seed 002's document-index activities on ``queue`` (see sluice/temporal/policies.py)."""
    if queue not in DOCUMENT_INDEX_QUEUES:
        return []
    acts = DocumentIndexActivities(embedders())
    by_queue: dict[TaskQueue, list[Callable[..., Any]]] = {
        TaskQueue.USER_FILE_PROCESSING: [
            acts.claim_document_work,
            acts.parse_document,
            acts.record_index_failure,
            acts.notify_document_indexed,
        ],
        TaskQueue.DOCPROCESSING: [
            acts.build_vector_index,
            acts.build_fulltext_index,
            acts.build_summary_index,
        ],
        TaskQueue.SANDBOX: [acts.build_graph_index],
        TaskQueue.CONNECTOR_DELETION: [acts.delete_document_indexes],
    }
    return by_queue[queue]


DOCUMENT_INDEX_QUEUES = (
    TaskQueue.USER_FILE_PROCESSING,
    TaskQueue.DOCPROCESSING,
    TaskQueue.SANDBOX,
    TaskQueue.CONNECTOR_DELETION,
)


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
        TaskQueue.SANDBOX: [sandbox.run_sandbox],
        TaskQueue.CSV_GENERATION: [exports.export_csv],
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
    shared: list[Embedders] = []

    def embedders() -> Embedders:
        # One provider cache per queue's worker: indexing, re-embedding and the document
        # indexes share loaded models; built only for queues that embed.
        if not shared:
            shared.append(Embedders(embedder_factory()))
        return shared[0]

    found += _user_file_activities(queue, embedder_factory, client)
    if queue is TaskQueue.DOCPROCESSING:
        generations = GenerationActivities(embedders())
        found += [
            DocProcessingActivities(embedders()).process_batch,
            generations.start_generation,
            generations.embed_generation_pages,
            generations.build_generation_index,
            generations.switch_generation,
            generations.abandon_generation,
            generations.drop_generation_vectors,
        ]
    found += document_index_activities(queue, embedders)
    return [*found, *sweep_activities(queue, client), probe.queue_probe]


def _user_file_activities(
    queue: TaskQueue, embedder_factory: Callable[[], EmbeddingProvider], client: Client
) -> list[Callable[..., Any]]:
    """Each user-file queue's one activity; only processing embeds (built on first use)."""

    @cache
    def embedders() -> Embedders:
        return Embedders(embedder_factory())

    files = UserFileActivities(embedders, client)
    return {
        TaskQueue.USER_FILE_PROCESSING: [files.process_user_file],
        TaskQueue.USER_FILE_PROJECT_SYNC: [files.move_user_file],
        TaskQueue.USER_FILE_DELETE: [files.delete_user_file],
    }.get(queue, [])
