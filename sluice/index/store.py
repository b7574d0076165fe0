"""The document index in Postgres: pgvector (HNSW) for meaning, tsvector (GIN) for words.

Writes are idempotent per document: a document's chunks are replaced as a whole,
its row is upserted by ID, so writing the same batch twice leaves the same rows.
Vectors go over the wire in pgvector's binary format via ``COPY``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sluice.connectors.models import Document

CHUNK_COLUMNS = ("document_id", "chunk_id", "title", "content", "link", "embedding", "acl")


@dataclass(frozen=True)
class ChunkRow:
    document_id: str
    chunk_id: int
    title: str
    content: str
    link: str | None
    acl: list[str]


async def existing_hashes(raw: Any, ids: Sequence[str]) -> dict[str, str]:
    rows = await raw.fetch("SELECT id, content_hash FROM document WHERE id = ANY($1::text[])", ids)
    return {r["id"]: r["content_hash"] for r in rows}


async def delete_chunks(raw: Any, document_ids: Sequence[str]) -> None:
    if document_ids:
        await raw.execute("DELETE FROM chunk WHERE document_id = ANY($1::text[])", document_ids)


async def copy_chunks(raw: Any, rows: Sequence[ChunkRow], vectors: np.ndarray) -> int:
    """COPY chunk rows in (binary vectors); ``vectors[i]`` belongs to ``rows[i]``."""
    if not rows:
        return 0
    records = [
        (r.document_id, r.chunk_id, r.title, r.content, r.link, vectors[i], r.acl)
        for i, r in enumerate(rows)
    ]
    await raw.copy_records_to_table("chunk", records=records, columns=CHUNK_COLUMNS)
    return len(records)


async def replace_chunks(
    raw: Any, document_ids: Sequence[str], rows: Sequence[ChunkRow], vectors: np.ndarray
) -> int:
    """Delete the documents' old chunks and COPY the new ones in (binary vectors)."""
    await delete_chunks(raw, document_ids)
    return await copy_chunks(raw, rows, vectors)


async def upsert_documents(
    raw: Any, documents: Sequence[Document], hashes: dict[str, str], chunk_counts: dict[str, int]
) -> set[str]:
    """Upsert document rows; returns the IDs written.

    A row is only replaced by a version at least as new (``updated_at``), so when the
    same document arrives in two batches processed out of order, the newest wins.
    """
    if not documents:
        return set()
    rows = await raw.fetch(
        """
        INSERT INTO document AS d (id, source, semantic_identifier, link, metadata, acl,
                                   content_hash, doc_updated_at, chunk_count, last_modified)
        SELECT t.id, t.source, t.semantic_identifier, t.link, t.metadata,
               ARRAY(SELECT jsonb_array_elements_text(t.acl)), t.content_hash,
               t.doc_updated_at, t.chunk_count, now()
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[],
                    $7::text[], $8::timestamptz[], $9::int[])
             AS t(id, source, semantic_identifier, link, metadata, acl, content_hash,
                  doc_updated_at, chunk_count)
        ON CONFLICT (id) DO UPDATE SET
            source = EXCLUDED.source, semantic_identifier = EXCLUDED.semantic_identifier,
            link = EXCLUDED.link, metadata = EXCLUDED.metadata, acl = EXCLUDED.acl,
            content_hash = EXCLUDED.content_hash, doc_updated_at = EXCLUDED.doc_updated_at,
            chunk_count = EXCLUDED.chunk_count, last_modified = now()
        WHERE d.doc_updated_at IS NULL OR EXCLUDED.doc_updated_at IS NULL
           OR EXCLUDED.doc_updated_at >= d.doc_updated_at
        RETURNING d.id
        """,
        [d.id for d in documents],
        [d.source for d in documents],
        [d.semantic_identifier for d in documents],
        [d.link for d in documents],
        [_json(d.metadata) for d in documents],
        [_json(d.acl) for d in documents],
        [hashes[d.id] for d in documents],
        [d.updated_at for d in documents],
        [chunk_counts.get(d.id, 0) for d in documents],
    )
    return {r["id"] for r in rows}


async def link_to_cc_pair(raw: Any, cc_pair_id: int, document_ids: Sequence[str]) -> None:
    await raw.execute(
        """
        INSERT INTO document_by_connector_credential_pair (document_id, cc_pair_id)
        SELECT unnest($1::text[]), $2
        ON CONFLICT DO NOTHING
        """,
        list(document_ids),
        cc_pair_id,
    )


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True)
class SearchHit:
    document_id: str
    chunk_id: int
    title: str
    content: str
    link: str | None
    score: float
    vector_rank: int | None
    text_rank: int | None


async def hybrid_search(
    raw: Any,
    query: str,
    query_vector: np.ndarray,
    *,
    limit: int = 10,
    candidates: int = 50,
    acl: Sequence[str] | None = None,
) -> list[SearchHit]:
    """Reciprocal-rank fusion of vector similarity and full-text rank (k = 60).

    ``acl``: when given, only chunks readable by one of these principals (or public).
    """
    rows = await raw.fetch(
        """
        WITH vec AS (
            SELECT c.document_id, c.chunk_id,
                   row_number() OVER (ORDER BY c.embedding <=> $1) AS rnk
            FROM chunk c JOIN document d ON d.id = c.document_id
            WHERE NOT d.hidden AND ($4::text[] IS NULL OR c.acl && $4::text[])
            ORDER BY c.embedding <=> $1
            LIMIT $3
        ),
        txt AS (
            SELECT c.document_id, c.chunk_id,
                   row_number() OVER (
                       ORDER BY ts_rank_cd(c.content_tsv, websearch_to_tsquery('english', $2)) DESC
                   ) AS rnk
            FROM chunk c JOIN document d ON d.id = c.document_id
            WHERE c.content_tsv @@ websearch_to_tsquery('english', $2)
              AND NOT d.hidden AND ($4::text[] IS NULL OR c.acl && $4::text[])
            ORDER BY ts_rank_cd(c.content_tsv, websearch_to_tsquery('english', $2)) DESC
            LIMIT $3
        ),
        fused AS (
            SELECT coalesce(v.document_id, t.document_id) AS document_id,
                   coalesce(v.chunk_id, t.chunk_id) AS chunk_id,
                   v.rnk AS vector_rank, t.rnk AS text_rank,
                   coalesce(1.0 / (60 + v.rnk), 0) + coalesce(1.0 / (60 + t.rnk), 0) AS score
            FROM vec v FULL OUTER JOIN txt t
              ON v.document_id = t.document_id AND v.chunk_id = t.chunk_id
        )
        SELECT f.*, c.title, c.content, c.link
        FROM fused f JOIN chunk c ON c.document_id = f.document_id AND c.chunk_id = f.chunk_id
        JOIN document d ON d.id = f.document_id
        ORDER BY f.score * (1 + d.boost) DESC
        LIMIT $5
        """,
        query_vector,
        query,
        candidates,
        list(acl) if acl is not None else None,
        limit,
    )
    return [
        SearchHit(
            document_id=r["document_id"],
            chunk_id=r["chunk_id"],
            title=r["title"],
            content=r["content"],
            link=r["link"],
            score=float(r["score"]),
            vector_rank=r["vector_rank"],
            text_rank=r["text_rank"],
        )
        for r in rows
    ]
