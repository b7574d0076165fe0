"""Deleting a connector's data: its documents (shared ones only lose their link), then
its rows. Every step is idempotent and takes short transactions, so a deletion can be
retried, requested twice, or resumed on another worker, and never holds locks long
enough to deadlock against indexing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sluice.db.statuses import CcPairStatus


@dataclass(frozen=True)
class DeletedBatch:
    links: int
    documents: int


async def mark_deleting(raw: Any, cc_pair_id: int) -> bool:
    """The product's view: the pair shows ``deleting`` from the moment it is asked for.
    False if the pair is gone (a deletion that already finished)."""
    updated = await raw.fetchval(
        """
        UPDATE connector_credential_pair SET status = $2, updated_at = now()
        WHERE id = $1 RETURNING id
        """,
        cc_pair_id,
        CcPairStatus.DELETING.value,
    )
    return updated is not None


async def delete_documents_batch(raw: Any, cc_pair_id: int, limit: int) -> DeletedBatch:
    """Unlink up to ``limit`` of the pair's documents and delete those no other pair holds
    (their chunks go with them). Rows are locked in ID order, as indexing writes them."""
    ids = [
        r["document_id"]
        for r in await raw.fetch(
            """
            SELECT document_id FROM document_by_connector_credential_pair
            WHERE cc_pair_id = $1 ORDER BY document_id LIMIT $2 FOR UPDATE
            """,
            cc_pair_id,
            limit,
        )
    ]
    return await unlink_documents(raw, cc_pair_id, ids)


async def unlink_documents(raw: Any, cc_pair_id: int, ids: list[str]) -> DeletedBatch:
    """Remove the pair's links to ``ids``; delete the documents no other pair still holds.

    Deletion and pruning both end here: a document another cc-pair references survives.
    """
    if not ids:
        return DeletedBatch(links=0, documents=0)
    status = await raw.execute(
        """
        DELETE FROM document_by_connector_credential_pair
        WHERE cc_pair_id = $1 AND document_id = ANY($2::text[])
        """,
        cc_pair_id,
        ids,
    )
    orphans = await raw.fetch(
        """
        SELECT d.id FROM document d
        WHERE d.id = ANY($1::text[])
          AND NOT EXISTS (SELECT 1 FROM document_by_connector_credential_pair o
                          WHERE o.document_id = d.id)
        ORDER BY d.id FOR UPDATE
        """,
        ids,
    )
    gone = [r["id"] for r in orphans]
    if gone:
        await raw.execute("DELETE FROM document WHERE id = ANY($1::text[])", gone)
    return DeletedBatch(links=int(status.split()[-1]), documents=len(gone))


async def delete_pair_rows(raw: Any, cc_pair_id: int) -> bool:
    """The pair's staged batches, attempts and their errors, the pair, its connector and
    credential (if no other pair uses them). False if it was gone already."""
    pair = await raw.fetchrow(
        "SELECT connector_id, credential_id FROM connector_credential_pair WHERE id = $1",
        cc_pair_id,
    )
    await raw.execute("DELETE FROM staged_batch WHERE cc_pair_id = $1", cc_pair_id)
    await raw.execute("DELETE FROM index_attempt_error WHERE cc_pair_id = $1", cc_pair_id)
    await raw.execute("DELETE FROM index_attempt WHERE cc_pair_id = $1", cc_pair_id)
    if pair is None:
        return False
    await raw.execute("DELETE FROM connector_credential_pair WHERE id = $1", cc_pair_id)
    await raw.execute(
        """
        DELETE FROM connector c WHERE c.id = $1
          AND NOT EXISTS (SELECT 1 FROM connector_credential_pair p WHERE p.connector_id = c.id)
        """,
        pair["connector_id"],
    )
    if pair["credential_id"] is not None:
        await raw.execute(
            """
            DELETE FROM credential c WHERE c.id = $1 AND NOT EXISTS
                (SELECT 1 FROM connector_credential_pair p WHERE p.credential_id = c.id)
            """,
            pair["credential_id"],
        )
    return True
