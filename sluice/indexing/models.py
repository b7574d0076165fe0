"""Messages between the connector workflow and its activities.

Everything here travels through workflow history, so it stays small: documents
never do (they are staged and passed by reference, see :mod:`sluice.indexing.staging`).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field, JsonValue

from sluice.connectors.models import Checkpoint, DocumentFailure


class RunTuning(BaseModel):
    """Knobs for one connector's runs; defaults suit production, tests shrink them."""

    batch_size: int = Field(default=200, ge=1, le=5000)
    batches_per_fetch: int = Field(default=5, ge=1, le=1000)
    max_batches_in_flight: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Batches processed at once; 2 is best on 2 cores with local embedding "
        "(bench/README.md), raise it for a remote embedding service or more cores.",
    )
    batches_before_continue_as_new: int = Field(default=500, ge=1)
    fetch_heartbeat_seconds: float = Field(default=20.0, gt=0)
    process_heartbeat_seconds: float = Field(default=20.0, gt=0)
    fetch_attempts: int = Field(
        default=0, ge=0, le=100, description="0: retry until the retry budget is spent."
    )
    retry_budget_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How long a fetch or a batch keeps retrying an infrastructure fault "
        "(schedule-to-close): long enough to ride out a database restart.",
    )
    fetch_max_seconds: float = Field(
        default=300.0,
        gt=0,
        description="A fetch returns what it has staged after this long, so a slow source's "
        "documents are processed as they come and no single activity runs for hours.",
    )
    failed_batch_retry_seconds: float = Field(
        default=300.0,
        gt=0,
        description="When an attempt left batches unprocessed, the next one starts this soon.",
    )
    max_document_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1,
        description="A larger document fails alone with a clear error (every connector).",
    )
    max_batch_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1,
        description="A batch is staged once it holds this many bytes of text, whatever "
        "its document count: worker memory is bounded by bytes, not only counts.",
    )
    failures_before_flag: int = Field(default=5, ge=1)


class ConnectorWorkflowInput(BaseModel):
    """Start (and continue-as-new) input of the connector workflow."""

    tenant_id: str
    cc_pair_id: int
    source: str
    name: str | None = Field(default=None, description="The connector's name, for the UI.")
    refresh_interval_seconds: int | None = None
    tuning: RunTuning = Field(default_factory=RunTuning)
    carried: CarriedState | None = None


class RunState(StrEnum):
    """What the connector workflow is doing (the SluiceState search attribute)."""

    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    INVALID = "invalid"
    STOPPED = "stopped"
    DELETING = "deleting"
    STUCK = "stuck"
    """Bookkeeping has been retrying for a while: Postgres is likely unreachable."""
    PRUNING = "pruning"
    """Removing documents that vanished at the source (never during an attempt)."""
    SYNCING_PERMISSIONS = "syncing_permissions"
    """Reading ACLs and groups at the source again (never during an attempt)."""


class AttemptCounts(BaseModel):
    batches: int = 0
    docs_fetched: int = 0
    docs_indexed: int = 0
    docs_skipped: int = 0
    docs_failed: int = 0
    chunks_written: int = 0

    def add(self, other: AttemptCounts) -> None:
        for name in AttemptCounts.model_fields:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class AttemptInProgress(BaseModel):
    """An attempt that spans continue-as-new: its row ID, counts and next batch number."""

    attempt_id: int
    from_beginning: bool = False
    next_seq: int = 0
    counts: AttemptCounts = Field(default_factory=AttemptCounts)
    queued: list[StagedBatchRef] = Field(
        default_factory=list, description="Batches to process before fetching (adopted)."
    )
    retry_failed: bool = Field(
        default=False,
        description="Fetches only the documents recent attempts recorded as failed, by ID, "
        "with its own checkpoint; the connector's checkpoint is left as it is.",
    )
    retry_checkpoint: Checkpoint = Field(default_factory=Checkpoint)


class AttemptOutcome(BaseModel):
    """How an attempt ended, kept in state until its row is written (survives a crash)."""

    status: str
    error: str | None = None
    errors: list[DocumentFailure] = Field(default_factory=list)
    retry: list[StagedBatchRef] = Field(
        default_factory=list, description="Batches left unprocessed: the next attempt's."
    )


class PruneInput(BaseModel):
    tenant_id: str
    cc_pair_id: int
    batch_size: int = Field(default=500, ge=1)


class PruneResult(BaseModel):
    """What a pruning run did (its workflow's result, shown in the Web UI)."""

    listed: int = 0
    held: int = 0
    vanished: int = 0
    unlinked: int = 0
    deleted: int = 0
    refused: str | None = Field(
        default=None, description="Why nothing was pruned (an empty listing, say)."
    )


class GroupSyncResult(BaseModel):
    """What the external group sync stored (``synced=False``: the source has no groups)."""

    synced: bool = False
    groups: int = 0
    memberships: int = 0


class PermissionCollectResult(BaseModel):
    """The source's ACLs compared with the index's: how many changed (staged to write)."""

    listed: int = 0
    held: int = 0
    changed: int = 0


class PermissionUpsertResult(BaseModel):
    """One upsert batch: staged ACLs taken, and how many documents actually changed."""

    taken: int = 0
    written: int = 0


class PermissionSyncResult(BaseModel):
    """What a permission-sync run did (its workflow's result, shown in the Web UI)."""

    listed: int = 0
    held: int = 0
    changed: int = 0
    written: int = 0
    batches: int = 0
    chunks_synced_documents: int = 0
    groups: GroupSyncResult = Field(default_factory=GroupSyncResult)
    seconds: float = 0.0


class PermissionSyncInput(BaseModel):
    tenant_id: str
    cc_pair_id: int
    batch_size: int = Field(default=500, ge=1, description="Documents per upsert batch.")
    carried: PermissionSyncResult | None = Field(
        default=None, description="Counts so far, when a long sync continued-as-new."
    )


class CarriedState(BaseModel):
    """Everything the workflow knows that must survive continue-as-new (small JSON)."""

    checkpoint: Checkpoint = Field(default_factory=Checkpoint)
    paused: bool = False
    invalid_reason: str | None = None
    index_requested: bool = True
    from_beginning: bool = False
    retry_failed_requested: bool = False
    attempt: AttemptInProgress | None = None
    ending: AttemptOutcome | None = Field(
        default=None, description="Outcome of the attempt being closed (written next)."
    )
    retry_batches: list[StagedBatchRef] = Field(
        default_factory=list,
        description="Staged batches an attempt could not process: the next attempt takes "
        "them first, so the checkpoint never moves past an unindexed document.",
    )
    unexpected_errors: int = Field(
        default=0, description="Unexpected errors in a row (backs off the next run)."
    )
    deleting: bool = Field(
        default=False, description="Deletion was asked for: stop, then hand over to it."
    )
    consecutive_failures: int = 0
    last_error: str | None = None
    last_error_type: str | None = None
    attempts_started: int = 0
    last_attempt_status: str | None = None
    last_attempt_counts: AttemptCounts | None = None
    db_status: str = Field(default="active", description="cc-pair status last written.")
    next_run_at: float | None = Field(default=None, description="Epoch seconds of the next run.")
    pass_started_at: float | None = Field(
        default=None, description="When the current pass over the source began."
    )
    last_pass_started_at: float | None = Field(
        default=None, description="When the last *completed* pass began: the next `since`."
    )
    prune_requested: bool = Field(
        default=False, description="Pruning was asked for: it runs between attempts."
    )
    last_prune: PruneResult | None = None
    permission_sync_requested: bool = Field(
        default=False, description="A permission sync was asked for: it runs between attempts."
    )
    last_permission_sync: PermissionSyncResult | None = None


class SettingsUpdate(BaseModel):
    """The ``update_settings`` Update: change a running connector without restarting it.

    ``refresh_interval_seconds``: a positive number of seconds, or 0 for "index-now only";
    ``None`` leaves it. ``config``: keys to set in the connector's configuration.
    """

    refresh_interval_seconds: int | None = None
    config: dict[str, JsonValue] = Field(default_factory=dict)


class SettingsApplied(BaseModel):
    refresh_interval_seconds: int | None
    config: dict[str, JsonValue]
    next_run_in_seconds: float | None = None


class StoreSettingsRequest(BaseModel):
    cc_pair_id: int
    refresh_interval_seconds: int | None
    change_interval: bool
    config: dict[str, JsonValue]


class IndexNowRequest(BaseModel):
    from_beginning: bool = False


class ConnectorProgress(BaseModel):
    """The ``progress`` query: what a person watching the connector wants to know."""

    tenant_id: str
    cc_pair_id: int
    source: str
    state: RunState
    attempt_id: int | None = None
    attempts_started: int = 0
    last_attempt_status: str | None = None
    last_attempt_counts: AttemptCounts | None = None
    counts: AttemptCounts = Field(
        default_factory=AttemptCounts, description="Counts of the attempt in progress."
    )
    batches_in_flight: int = 0
    checkpoint: Checkpoint = Field(default_factory=Checkpoint)
    consecutive_failures: int = 0
    last_error: str | None = None
    invalid_reason: str | None = None
    next_run_in_seconds: float | None = None
    refresh_interval_seconds: int | None = None
    last_prune: PruneResult | None = None
    last_permission_sync: PermissionSyncResult | None = None


# --- activity messages ----------------------------------------------------------------


class StartAttemptRequest(BaseModel):
    """Keyed by ``run_id`` (a run starts at most one attempt), so a retried start returns
    the same row. ``adopt_batches`` are an earlier attempt's unprocessed batches."""

    cc_pair_id: int
    from_beginning: bool = False
    workflow_id: str
    run_id: str
    adopt_batches: list[int] = Field(default_factory=list)


class StartedAttempt(BaseModel):
    attempt_id: int
    adopted: list[StagedBatchRef] = Field(
        default_factory=list, description="Adopted batches, renumbered from seq 0."
    )
    interrupted: list[int] = Field(
        default_factory=list, description="Attempts a vanished run left open, now closed."
    )


class FetchRequest(BaseModel):
    cc_pair_id: int
    attempt_id: int
    checkpoint: Checkpoint
    first_seq: int
    batch_size: int
    max_batches: int
    max_seconds: float = 300.0
    retry_failed_before: int | None = Field(
        default=None,
        description="Fetch, by ID, the documents that failed in recent attempts before this "
        "attempt ID, instead of running the connector from the checkpoint.",
    )
    max_document_bytes: int = 10 * 1024 * 1024
    max_batch_bytes: int = 32 * 1024 * 1024
    skip_unchanged: bool = Field(
        default=False,
        description="Drop, before staging, documents this cc-pair holds with the same "
        "updated_at and ACL (sluice/indexing/unchanged.py); never on a from-beginning run.",
    )


class StagedBatchRef(BaseModel):
    """Claim check for one staged batch: its row ID, order and size, never its documents."""

    batch_id: int
    seq: int
    doc_count: int


class FetchResult(BaseModel):
    batches: list[StagedBatchRef]
    checkpoint: Checkpoint
    docs_fetched: int
    failures: int
    docs_unchanged: int = Field(default=0, description="Fetched but not staged: unchanged.")


class FetchHeartbeat(BaseModel):
    """Heartbeat details of the fetch activity: a retry resumes exactly here."""

    checkpoint: Checkpoint
    batches: list[StagedBatchRef]
    docs_fetched: int
    failures: int
    position: int = Field(description="Documents produced so far by this activity.")
    docs_unchanged: int = 0


class ProcessRequest(BaseModel):
    cc_pair_id: int
    attempt_id: int
    batch: StagedBatchRef


class ProcessResult(BaseModel):
    docs_indexed: int = 0
    docs_skipped: int = 0
    docs_failed: int = 0
    duplicates: int = 0
    chunks_written: int = 0


class FinishAttemptRequest(BaseModel):
    cc_pair_id: int
    attempt_id: int
    status: str
    counts: AttemptCounts
    error: str | None = None
    errors: list[DocumentFailure] = Field(default_factory=list)


class CleanupRequest(BaseModel):
    attempt_id: int
    keep: list[int] = Field(
        default_factory=list, description="Batch IDs to keep (for the next attempt)."
    )


class DeletionInput(BaseModel):
    """Start input of the connector deletion workflow."""

    tenant_id: str
    cc_pair_id: int
    batch_size: int = Field(default=500, ge=1, le=10_000)


class DeletionResult(BaseModel):
    links_removed: int = 0
    documents_deleted: int = 0
    pair_deleted: bool = False


class CcPairStatusUpdate(BaseModel):
    """The product's view of the connector; ``flag_reason=None`` leaves the flag as it is."""

    cc_pair_id: int
    status: str
    flag_reason: str | None = None
    clear_flag: bool = False
    consecutive_failures: int | None = None


ConnectorWorkflowInput.model_rebuild()

AttemptInProgress.model_rebuild()
AttemptOutcome.model_rebuild()
CarriedState.model_rebuild()
StartedAttempt.model_rebuild()
