"""Retention: staged batches no run needs any more, and old index attempts.

Both delete in bounded batches (``limit`` rows a statement), so a first sweep over a
large backlog never holds a long lock, and both are safe to run twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sluice.db.statuses import AttemptStatus

OPEN = [AttemptStatus.NOT_STARTED.value, AttemptStatus.IN_PROGRESS.value]


async def delete_orphan_staged_batches(raw: Any, cutoff: datetime, limit: int) -> int:
    """Staged batches created before ``cutoff`` that no run will ever read again.

    A batch of an ended attempt is kept while it may still be adopted: unprocessed and
    its attempt still the cc-pair's latest (the next attempt adopts it first). It goes
    once processed (its result is already counted), or once a later attempt exists
    (adoption happens at that attempt's start, so what is left was not adopted).
    Batches of an open attempt are never touched.
    """
    status = await raw.execute(
        """
        DELETE FROM staged_batch WHERE id IN (
            SELECT s.id FROM staged_batch s JOIN index_attempt a ON a.id = s.index_attempt_id
            WHERE s.created_at < $1 AND NOT (a.status = ANY($2::text[]))
              AND (s.processed_at IS NOT NULL OR EXISTS (
                  SELECT 1 FROM index_attempt later
                  WHERE later.cc_pair_id = a.cc_pair_id AND later.id > a.id))
            LIMIT $3)
        """,
        cutoff,
        OPEN,
        limit,
    )
    return int(status.split()[-1])


async def delete_old_attempts(raw: Any, cutoff: datetime, limit: int) -> int:
    """Ended attempts (with their errors) that finished before ``cutoff``, except each
    cc-pair's latest attempt, which the product shows as the connector's last result."""
    status = await raw.execute(
        """
        DELETE FROM index_attempt WHERE id IN (
            SELECT a.id FROM index_attempt a
            WHERE NOT (a.status = ANY($2::text[]))
              AND coalesce(a.finished_at, a.updated_at) < $1
              AND EXISTS (SELECT 1 FROM index_attempt later
                          WHERE later.cc_pair_id = a.cc_pair_id AND later.id > a.id)
            ORDER BY a.id
            LIMIT $3)
        """,
        cutoff,
        OPEN,
        limit,
    )
    return int(status.split()[-1])
