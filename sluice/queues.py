"""Every task queue, named after the seed platform's Celery queue it replaces.

Defined once here; workers, workflows and tests import these names.
"""

from __future__ import annotations

from enum import StrEnum


class TaskQueue(StrEnum):
    # Workflows (the seed's coordinator queue ``celery``): orchestration only, no I/O.
    PRIMARY = "primary"
    # Light
    VESPA_METADATA_SYNC = "vespa_metadata_sync"
    CONNECTOR_DELETION = "connector_deletion"
    DOC_PERMISSIONS_UPSERT = "doc_permissions_upsert"
    CHECKPOINT_CLEANUP = "checkpoint_cleanup"
    INDEX_ATTEMPT_CLEANUP = "index_attempt_cleanup"
    # Heavy
    CONNECTOR_PRUNING = "connector_pruning"
    CONNECTOR_DOC_PERMISSIONS_SYNC = "connector_doc_permissions_sync"
    CONNECTOR_EXTERNAL_GROUP_SYNC = "connector_external_group_sync"
    CSV_GENERATION = "csv_generation"
    SANDBOX = "sandbox"
    # Indexing
    DOCPROCESSING = "docprocessing"
    CONNECTOR_DOC_FETCHING = "connector_doc_fetching"
    # User files
    USER_FILE_PROCESSING = "user_file_processing"
    USER_FILE_PROJECT_SYNC = "user_file_project_sync"
    USER_FILE_DELETE = "user_file_delete"
    # Observability
    MONITORING = "monitoring"


ALL_QUEUES: tuple[TaskQueue, ...] = tuple(TaskQueue)
