"""Collection GC: everything a deleted collection left behind goes.

Documents go in batches, each one short transaction that locks the documents' rows
(so a build in flight finishes first, and a later one finds the document gone) and
deletes their search-side ``document`` rows (chunks and vectors cascade) and their
``collection_document`` rows (state rows, tasks, graph mentions and edges, summaries
cascade). The collection row goes last, with its graph entities and evaluations.
"""

from __future__ import annotations

from collections.abc import Callable

from sluice.db.session import tenant_connection

BATCH = 200


async def deleted_collections(tenant_id: str) -> list[str]:
    async with tenant_connection(tenant_id) as (_, raw):
        rows = await raw.fetch("SELECT name FROM collection WHERE status = 'deleted' ORDER BY 1")
    return [r["name"] for r in rows]


async def collect(tenant_id: str, collection: str, progress: Callable[[int], None]) -> int:
    """Delete the collection and everything in it; returns the documents deleted."""
    total = 0
    while True:
        async with tenant_connection(tenant_id) as (_, raw):
            ids = [
                r["id"]
                for r in await raw.fetch(
                    "SELECT id FROM collection_document WHERE collection = $1 "
                    "ORDER BY id LIMIT $2 FOR UPDATE",
                    collection,
                    BATCH,
                )
            ]
            await raw.execute("DELETE FROM document WHERE id = ANY($1::text[])", ids)
            await raw.execute("DELETE FROM collection_document WHERE id = ANY($1::text[])", ids)
        total += len(ids)
        progress(total)
        if len(ids) < BATCH:
            break
    async with tenant_connection(tenant_id) as (_, raw):
        await raw.execute(
            "DELETE FROM collection WHERE name = $1 AND status = 'deleted'", collection
        )
    return total
