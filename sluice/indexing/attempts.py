"""Index-attempt rows: the product's view of each run (status, counts, errors).

The workflow decides; these functions record. Counts written at the end come
from workflow history, so the row can never drift from what actually ran.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from sluice.connectors.models import DocumentFailure
from sluice.db.statuses import AttemptStatus
from sluice.errors import CcPairDeleted
from sluice.indexing.models import AttemptCounts, ProcessResult


async def create_attempt(
    raw: Any, cc_pair_id: int, from_beginning: bool, workflow_id: str, run_id: str
) -> int:
    """The run's attempt row: created once per ``run_id``, returned as is on a retry.
    Refused for a pair that is being deleted or is gone."""
    status = await raw.fetchval(
        "SELECT status FROM connector_credential_pair WHERE id = $1 FOR SHARE", cc_pair_id
    )
    if status is None or status == "deleting":
        raise CcPairDeleted(f"cc-pair {cc_pair_id} is {'being deleted' if status else 'gone'}")
    return int(
        await raw.fetchval(
            """
            INSERT INTO index_attempt (cc_pair_id, status, from_beginning, workflow_id, run_id,
                                       started_at)
            VALUES ($1, $2, $3, $4, $5, now())
            ON CONFLICT (run_id) WHERE run_id IS NOT NULL
                DO UPDATE SET updated_at = now()
            RETURNING id
            """,
            cc_pair_id,
            AttemptStatus.IN_PROGRESS.value,
            from_beginning,
            workflow_id,
            run_id,
        )
    )


async def interrupt_stale_attempts(raw: Any, cc_pair_id: int, keep_attempt_id: int) -> list[int]:
    """Close attempts a vanished run left ``in_progress`` (terminated, reset, crashed before
    CAN) as ``interrupted``: resumable, never counted as a failure (Airbyte's clean job state).
    """
    rows = await raw.fetch(
        """
        UPDATE index_attempt SET status = $3, finished_at = now(), updated_at = now(),
            error_message = coalesce(error_message, 'its workflow run ended without closing it')
        WHERE cc_pair_id = $1 AND id <> $2 AND status IN ('in_progress', 'not_started')
        RETURNING id
        """,
        cc_pair_id,
        keep_attempt_id,
        AttemptStatus.INTERRUPTED.value,
    )
    return [int(r["id"]) for r in rows]


async def adopt_batches(raw: Any, attempt_id: int, batch_ids: Sequence[int]) -> list[Any]:
    """Move an earlier attempt's unprocessed batches to ``attempt_id`` as seq 0, 1, ...
    (in their old order). Idempotent: a retried start finds them adopted already.
    Returns ``(id, seq, doc_count)`` rows; batches that are gone are simply not there."""
    if not batch_ids:
        return []
    await raw.execute(
        """
        WITH ordered AS (
            SELECT id, row_number() OVER (ORDER BY index_attempt_id, seq) - 1 AS n
            FROM staged_batch WHERE id = ANY($2::bigint[])
        )
        UPDATE staged_batch s SET index_attempt_id = $1, seq = o.n
        FROM ordered o WHERE s.id = o.id AND s.index_attempt_id <> $1
        """,
        attempt_id,
        list(batch_ids),
    )
    return list(
        await raw.fetch(
            """
            SELECT id, seq, doc_count FROM staged_batch
            WHERE index_attempt_id = $1 AND id = ANY($2::bigint[]) ORDER BY seq
            """,
            attempt_id,
            list(batch_ids),
        )
    )


async def forget_orphan_batches(raw: Any, cc_pair_id: int, attempt_id: int) -> int:
    """Delete the cc-pair's staged batches that belong to no attempt in progress but
    ``attempt_id`` (what a terminated run or an earlier crash left behind)."""
    status = await raw.execute(
        "DELETE FROM staged_batch WHERE cc_pair_id = $1 AND index_attempt_id <> $2",
        cc_pair_id,
        attempt_id,
    )
    return int(status.split()[-1])


async def finish_attempt(
    raw: Any, attempt_id: int, status: AttemptStatus, counts: AttemptCounts, error: str | None
) -> None:
    await raw.execute(
        """
        UPDATE index_attempt SET status = $2, error_message = $3, finished_at = now(),
            updated_at = now(), batches = $4, docs_fetched = $5, docs_indexed = $6,
            docs_skipped = $7, docs_failed = $8, chunks_written = $9
        WHERE id = $1
        """,
        attempt_id,
        status.value,
        error,
        counts.batches,
        counts.docs_fetched,
        counts.docs_indexed,
        counts.docs_skipped,
        counts.docs_failed,
        counts.chunks_written,
    )


async def add_batch_result(raw: Any, attempt_id: int, result: ProcessResult) -> None:
    """Live counts while the run goes on (same transaction as the batch's writes)."""
    await raw.execute(
        """
        UPDATE index_attempt SET batches = batches + 1, docs_indexed = docs_indexed + $2,
            docs_skipped = docs_skipped + $3, docs_failed = docs_failed + $4,
            chunks_written = chunks_written + $5, updated_at = now()
        WHERE id = $1
        """,
        attempt_id,
        result.docs_indexed,
        result.docs_skipped,
        result.docs_failed,
        result.chunks_written,
    )


def _failure_key(failure: DocumentFailure) -> str:
    key = failure.document_id or failure.document_link
    return key or hashlib.sha256(failure.message.encode()).hexdigest()


async def record_failures(
    raw: Any, attempt_id: int, cc_pair_id: int, stage: str, failures: Sequence[DocumentFailure]
) -> None:
    """Store per-document failures; recording the same one twice keeps one row."""
    if not failures:
        return
    await raw.executemany(
        """
        INSERT INTO index_attempt_error (index_attempt_id, cc_pair_id, stage, document_key,
                                         document_id, document_link, failure_message)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (index_attempt_id, stage, document_key) DO NOTHING
        """,
        [
            (
                attempt_id,
                cc_pair_id,
                stage,
                _failure_key(f),
                f.document_id,
                f.document_link,
                f.message[:4000],
            )
            for f in failures
        ],
    )


async def set_cc_pair_status(
    raw: Any,
    cc_pair_id: int,
    status: str,
    flag_reason: str | None,
    consecutive_failures: int | None,
    clear_flag: bool = False,
) -> None:
    await raw.execute(
        """
        UPDATE connector_credential_pair SET status = $2,
            flag_reason = CASE WHEN $5 THEN NULL ELSE coalesce($3, flag_reason) END,
            consecutive_failures = coalesce($4, consecutive_failures), updated_at = now()
        WHERE id = $1 AND status <> 'deleting'
        """,
        cc_pair_id,
        status,
        flag_reason,
        consecutive_failures,
        clear_flag,
    )


async def mark_indexed(raw: Any, cc_pair_id: int) -> None:
    await raw.execute(
        """
        UPDATE connector_credential_pair SET last_successful_index_at = now(),
            consecutive_failures = 0, flag_reason = NULL, updated_at = now()
        WHERE id = $1
        """,
        cc_pair_id,
    )


RETRY_FAILED_LOOKBACK = 5
"""Attempts whose per-document errors "retry failed documents" fetches again."""


async def failed_document_ids(raw: Any, cc_pair_id: int, before_attempt: int) -> list[str]:
    """Document IDs recorded as failed in the pair's last attempts before ``before_attempt``
    (not batch-level errors), sorted: the same list on every try of the same attempt."""
    rows = await raw.fetch(
        """
        SELECT DISTINCT e.document_id FROM index_attempt_error e
        WHERE e.cc_pair_id = $1 AND e.document_id IS NOT NULL
          AND e.document_id NOT LIKE 'batch:%'
          AND e.index_attempt_id IN (
              SELECT id FROM index_attempt WHERE cc_pair_id = $1 AND id < $2
              ORDER BY id DESC LIMIT $3)
        ORDER BY e.document_id
        """,
        cc_pair_id,
        before_attempt,
        RETRY_FAILED_LOOKBACK,
    )
    return [r["document_id"] for r in rows]
