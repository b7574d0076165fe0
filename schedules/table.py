"""Every periodic job, declared once: the seeds' Beat schedules as Temporal Schedules.

Each row is synced per tenant (:mod:`schedules.sync`) into a server-side Schedule
``{tenant}/{job}`` that starts :class:`~workflows.sweep.SweepWorkflow` for the job on the
``primary`` queue; the workflow runs the job's one sweep activity on the job's queue.

These are **safety nets**, not the main path: work that Sluice itself causes starts its
workflow at once (a connector's own timer and signals, a deletion request, a settings
change). A sweep finds what was missed (a workflow terminated by hand, a request lost
in a crash) and, when it finds nothing, ends after one short activity.

``arrives_with`` names the issue whose work the job runs; such a job is declared here,
with the seed's interval, and left out of the sync until its work exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sluice.queues import TaskQueue
from sluice.temporal import workflow_ids


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    seed_task: str
    interval: timedelta
    """The seed's interval: the default, overridable per job (``SCHEDULE_INTERVALS``)."""
    activity: str
    """The sweep activity :class:`~workflows.sweep.SweepWorkflow` runs."""
    task_queue: TaskQueue
    """The queue that activity runs on (the workflow itself runs on ``primary``)."""
    description: str
    arrives_with: str | None = None
    """``None``: synced now. Otherwise the issue that brings the job's work."""

    @property
    def enabled(self) -> bool:
        return self.arrives_with is None


WORKFLOW = workflow_ids.SWEEP
"""The workflow every job's schedule starts (one sweep activity, named by the job)."""

JOBS: tuple[PeriodicJob, ...] = (
    # --- seed 000 ---------------------------------------------------------------------
    PeriodicJob(
        "connector-reconcile",
        "check_for_indexing",
        timedelta(seconds=15),
        "reconcile_connectors",
        TaskQueue.CONNECTOR_DOC_FETCHING,
        "every active cc-pair has its long-lived workflow; a terminated or failed one "
        "comes back (signal-with-start: a running one is left alone)",
    ),
    PeriodicJob(
        "connector-deletion-check",
        "check_for_connector_deletion",
        timedelta(seconds=20),
        "resume_deletions",
        TaskQueue.CONNECTOR_DELETION,
        "a cc-pair marked deleting whose deletion was lost gets it again",
    ),
    PeriodicJob(
        "checkpoint-cleanup",
        "check_for_checkpoint_cleanup",
        timedelta(hours=1),
        "cleanup_staged_batches",
        TaskQueue.CHECKPOINT_CLEANUP,
        "staged batches no open attempt owns, older than STAGED_BATCH_ORPHAN_SECONDS",
    ),
    PeriodicJob(
        "index-attempt-cleanup",
        "check_for_index_attempt_cleanup",
        timedelta(minutes=30),
        "cleanup_index_attempts",
        TaskQueue.INDEX_ATTEMPT_CLEANUP,
        "attempts and their errors older than INDEX_ATTEMPT_RETENTION_DAYS, keeping each "
        "cc-pair's latest",
    ),
    PeriodicJob(
        "metadata-sync",
        "check_for_vespa_sync_task",
        timedelta(seconds=20),
        "sync_stale_documents",
        TaskQueue.VESPA_METADATA_SYNC,
        "documents whose ACL or sets changed reach their chunks (a change also starts "
        "a sync at once: this is the safety net)",
    ),
    PeriodicJob(
        "pruning-check",
        "check_for_pruning",
        timedelta(seconds=20),
        "request_due_prunes",
        TaskQueue.CONNECTOR_PRUNING,
        "cc-pairs whose prune interval has passed are asked to prune (their connector "
        "workflow prunes between attempts)",
    ),
    # The seed names the task but gives no interval: 30 s (each pair has its own interval,
    # PERMISSION_SYNC_INTERVAL_SECONDS by default; the check only asks those that are due).
    PeriodicJob(
        "permission-sync-check",
        "check_for_doc_permissions_sync",
        timedelta(seconds=30),
        "request_due_permission_syncs",
        TaskQueue.CONNECTOR_DOC_PERMISSIONS_SYNC,
        "cc-pairs whose permission-sync interval has passed are asked to sync ACLs and "
        "groups (their connector workflow syncs between attempts)",
    ),
    PeriodicJob(
        "user-file-processing-check",
        "check_for_user_file_processing",
        timedelta(seconds=20),
        "process_pending_user_files",
        TaskQueue.USER_FILE_PROCESSING,
        "uploaded files still processing with no running workflow get it started again",
    ),
    PeriodicJob(
        "monitoring",
        "monitoring_task",
        timedelta(minutes=1),
        "collect_metrics",
        TaskQueue.MONITORING,
        "queue backlogs, connector outcomes, index size: logged, alerts named, and "
        "published on the monitoring worker's /metrics",
    ),
    # --- seed 002 ---------------------------------------------------------------------
    PeriodicJob(
        "reconcile-indexes",
        "reconcile_indexes",
        timedelta(hours=1),
        "reconcile_document_indexes",
        TaskQueue.DOCPROCESSING,
        "documents whose vector, fulltext or graph index lags its desired version (pending, "
        "creating, deleting) and whose index workflow is gone get it started again",
    ),
    PeriodicJob(
        "reconcile-summaries",
        "reconcile_summaries",
        timedelta(minutes=1),
        "reconcile_document_summaries",
        TaskQueue.DOCPROCESSING,
        "documents whose summary index lags its desired version and whose index workflow "
        "is gone get it started again",
    ),
    PeriodicJob(
        "collection-gc",
        "collection_gc",
        timedelta(minutes=10),
        "collect_deleted_collections",
        TaskQueue.CONNECTOR_DELETION,
        "collections marked deleted lose their documents, chunks, vectors, graph rows, "
        "summaries, state rows and evaluations",
    ),
    PeriodicJob(
        "reconcile-evaluations",
        "reconcile_evaluations",
        timedelta(minutes=5),
        "run_pending_evaluations",
        TaskQueue.DOCPROCESSING,
        "pending evaluations of a collection (questions with expected documents) are run "
        "and their hits@k and MRR stored",
    ),
)

JOBS_BY_NAME: dict[str, PeriodicJob] = {job.name: job for job in JOBS}

CATCHUP_WINDOW = timedelta(minutes=5)
"""Missed runs older than this are dropped: a server down for a day fires once, not 5,000
times (each job is a sweep: one run catches up everything)."""


def jitter_for(interval: timedelta) -> timedelta:
    """Spread tenants' runs over a tenth of the interval (at most a minute), so a thousand
    tenants do not all sweep in the same second."""
    return min(interval / 10, timedelta(minutes=1))
