"""Document metadata (ACL, document sets, boost, hidden) and its sync into the index.

Search reads ``hidden`` and ``boost`` from the document row, so they apply the moment
they are written. What the index keeps per chunk (the ACL) or derives (a document's
sets, from the sets its cc-pairs are in) is brought up to date by the metadata sync:

* every change bumps ``document.metadata_version`` (the document is then *stale*);
* :func:`sync_stale_batch` locks a batch of stale documents, recomputes their sets,
  copies their ACL to their chunks and records the version it copied.

A change made while a batch is being synced waits for that batch's row lock, then bumps
the version again: the document is stale once more and the next batch takes the newest
values. Nothing is lost and nothing is synced twice for nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sluice.errors import ConfigurationError, NotFoundError

SETS_OF = """
    SELECT coalesce(array_agg(DISTINCT s.set_name ORDER BY s.set_name), '{}')
    FROM document_by_connector_credential_pair l
    JOIN document_set_cc_pair s ON s.cc_pair_id = l.cc_pair_id
    WHERE l.document_id = d.id
"""
"""The sets a document belongs to: those holding any of its cc-pairs (``d`` = document)."""


@dataclass(frozen=True)
class DocumentMetadata:
    id: str
    hidden: bool
    boost: float
    acl: list[str]
    document_sets: list[str]
    metadata_version: int
    synced_version: int

    @property
    def stale(self) -> bool:
        return self.metadata_version > self.synced_version


async def get_metadata(raw: Any, document_id: str) -> DocumentMetadata:
    row = await raw.fetchrow(
        "SELECT id, hidden, boost, acl, document_sets, metadata_version, synced_version "
        "FROM document WHERE id = $1",
        document_id,
    )
    if row is None:
        raise NotFoundError(f"document {document_id!r} does not exist")
    return DocumentMetadata(**dict(row))


async def set_metadata(
    raw: Any,
    document_id: str,
    *,
    hidden: bool | None = None,
    boost: float | None = None,
    acl: Sequence[str] | None = None,
) -> DocumentMetadata:
    """Change a document's flags (``None`` leaves one as it is) and mark it stale."""
    if hidden is None and boost is None and acl is None:
        raise ConfigurationError("nothing to change: give hidden, boost or acl")
    if boost is not None and not -1.0 < boost <= 10.0:
        raise ConfigurationError(f"boost must be in (-1, 10], got {boost}")
    updated = await raw.fetchval(
        """
        UPDATE document SET hidden = coalesce($2, hidden), boost = coalesce($3, boost),
               acl = coalesce($4::text[], acl), metadata_version = metadata_version + 1
        WHERE id = $1 RETURNING id
        """,
        document_id,
        hidden,
        boost,
        list(acl) if acl is not None else None,
    )
    if updated is None:
        raise NotFoundError(f"document {document_id!r} does not exist")
    return await get_metadata(raw, document_id)


async def mark_pair_documents_stale(raw: Any, cc_pair_id: int) -> int:
    """A cc-pair joined or left a set: each of its documents must recompute its sets."""
    status = await raw.execute(
        """
        UPDATE document SET metadata_version = metadata_version + 1
        WHERE id IN (SELECT document_id FROM document_by_connector_credential_pair
                     WHERE cc_pair_id = $1)
        """,
        cc_pair_id,
    )
    return int(status.split()[-1])


async def refresh_sets(raw: Any, document_ids: Sequence[str]) -> None:
    """Indexing just linked these documents: their sets are computed in the same write."""
    if document_ids:
        await raw.execute(
            f"UPDATE document d SET document_sets = ({SETS_OF}) "
            f"WHERE d.id = ANY($1::text[]) AND d.document_sets IS DISTINCT FROM ({SETS_OF})",
            list(document_ids),
        )


async def stale_count(raw: Any) -> int:
    return int(
        await raw.fetchval("SELECT count(*) FROM document WHERE metadata_version > synced_version")
    )


async def sync_stale_batch(raw: Any, limit: int) -> int:
    """Sync up to ``limit`` stale documents (rows locked, others skip them); returns how
    many. Run inside a transaction: the lock is what orders it with concurrent changes."""
    ids = [
        r["id"]
        for r in await raw.fetch(
            """
            SELECT id FROM document WHERE metadata_version > synced_version
            ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
            """,
            limit,
        )
    ]
    if not ids:
        return 0
    await raw.execute(
        f"""
        UPDATE document d SET document_sets = ({SETS_OF}), synced_version = d.metadata_version,
               last_synced = now()
        WHERE d.id = ANY($1::text[])
        """,
        ids,
    )
    await raw.execute(
        """
        UPDATE chunk c SET acl = d.acl FROM document d
        WHERE d.id = c.document_id AND d.id = ANY($1::text[]) AND c.acl IS DISTINCT FROM d.acl
        """,
        ids,
    )
    return len(ids)
