"""Pruning: documents that vanished at the source leave the index.

The source lists its IDs (cheap: no content); what the cc-pair holds and the source no
longer lists is unlinked, and deleted unless another cc-pair still holds it. A listing
that comes back empty while the pair holds documents is refused, not obeyed: an
unmounted folder or a site returning an empty sitemap must not wipe the index.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sluice.db.statuses import CcPairStatus


async def vanished_documents(raw: Any, cc_pair_id: int, listed: Iterable[str]) -> list[str]:
    """The pair's documents the source did not list (via a temporary table: a listing
    may hold millions of IDs)."""
    await raw.execute(
        "CREATE TEMP TABLE IF NOT EXISTS _listed (id text PRIMARY KEY) ON COMMIT DROP"
    )
    await raw.copy_records_to_table("_listed", records=[(i,) for i in set(listed)])
    rows = await raw.fetch(
        """
        SELECT l.document_id FROM document_by_connector_credential_pair l
        WHERE l.cc_pair_id = $1
          AND NOT EXISTS (SELECT 1 FROM _listed s WHERE s.id = l.document_id)
        ORDER BY l.document_id
        """,
        cc_pair_id,
    )
    return [r["document_id"] for r in rows]


async def linked_count(raw: Any, cc_pair_id: int) -> int:
    return int(
        await raw.fetchval(
            "SELECT count(*) FROM document_by_connector_credential_pair WHERE cc_pair_id = $1",
            cc_pair_id,
        )
    )


async def mark_pruned(raw: Any, cc_pair_id: int) -> None:
    await raw.execute(
        "UPDATE connector_credential_pair SET last_pruned_at = now() WHERE id = $1", cc_pair_id
    )


async def pairs_due_for_pruning(raw: Any, as_of: datetime, default_interval: int) -> list[int]:
    """Active pairs whose prune interval (or the default) has passed since the last prune."""
    rows = await raw.fetch(
        """
        SELECT id FROM connector_credential_pair
        WHERE status = $1
          AND coalesce(prune_interval_seconds, $3) > 0
          AND (last_pruned_at IS NULL OR last_pruned_at
               + make_interval(secs => coalesce(prune_interval_seconds, $3)) <= $2)
        ORDER BY id
        """,
        CcPairStatus.ACTIVE.value,
        as_of,
        default_interval,
    )
    return [int(r["id"]) for r in rows]
