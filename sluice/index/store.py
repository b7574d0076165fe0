"""The document index in Postgres: pgvector (HNSW) for meaning, tsvector (GIN) for words.

Writes are idempotent per document: a document's chunks are replaced as a whole,
its row is upserted by ID, so writing the same batch twice leaves the same rows.
Vectors go over the wire in pgvector's binary format via ``COPY``, into the vector
table of each writable index generation (``sluice/index/generations.py``).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sluice.connectors.models import Document
from sluice.index.dfcache import DF_CACHE
from sluice.index.dfcache import MIN_CHUNKS as DF_CACHE_MIN_CHUNKS

CHUNK_COLUMNS = ("document_id", "chunk_id", "title", "content", "link", "acl")
VECTOR_COLUMNS = ("document_id", "chunk_id", "embedding")


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


async def copy_chunks(raw: Any, rows: Sequence[ChunkRow]) -> int:
    """COPY chunk rows in (text and metadata; vectors go per generation)."""
    if not rows:
        return 0
    records = [(r.document_id, r.chunk_id, r.title, r.content, r.link, r.acl) for r in rows]
    await raw.copy_records_to_table("chunk", records=records, columns=CHUNK_COLUMNS)
    return len(records)


async def copy_vectors(raw: Any, table: str, rows: Sequence[ChunkRow], vectors: np.ndarray) -> None:
    """COPY one generation's vectors (binary); ``vectors[i]`` belongs to ``rows[i]``."""
    if rows:
        records = [(r.document_id, r.chunk_id, vectors[i]) for i, r in enumerate(rows)]
        await raw.copy_records_to_table(table, records=records, columns=VECTOR_COLUMNS)


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


async def chunks_around(
    raw: Any, keys: Sequence[tuple[str, int]], width: int, acl: Sequence[str] | None
) -> dict[tuple[str, int], list[tuple[int, str]]]:
    """For each (document, chunk): the other chunks of that document within ``width``
    positions, in order, as (chunk_id, content); only chunks ``acl`` may read, if given."""
    rows = await raw.fetch(
        """
        SELECT k.document_id, k.chunk_id AS around, c.chunk_id, c.content
        FROM unnest($1::text[], $2::int[]) AS k(document_id, chunk_id)
        JOIN chunk c ON c.document_id = k.document_id
         AND c.chunk_id BETWEEN k.chunk_id - $3 AND k.chunk_id + $3
         AND c.chunk_id <> k.chunk_id
        WHERE $4::text[] IS NULL OR c.acl && $4::text[]
        ORDER BY k.document_id, k.chunk_id, c.chunk_id
        """,
        [d for d, _ in keys],
        [c for _, c in keys],
        width,
        list(acl) if acl is not None else None,
    )
    out: dict[tuple[str, int], list[tuple[int, str]]] = {}
    for r in rows:
        out.setdefault((r["document_id"], r["around"]), []).append((r["chunk_id"], r["content"]))
    return out


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


# The lexemes of a text as ``chunk.search_tsv`` stores them (migration 0006): english
# words with ``_ . / -`` read as spaces, plus whole identifiers collapsed ('simple').
_IDENT_SQL = (
    "to_tsvector('simple', regexp_replace(regexp_replace({x}, "
    "'(^|\\s)[^\\s_./-]+(?=\\s|$)', ' ', 'g'), "
    "'([[:alnum:]])[_./-]+(?=[[:alnum:]])', '\\1', 'g'))"
)
SEARCH_TSV_SQL = (
    "to_tsvector('english', regexp_replace({t}, '[_./-]+', ' ', 'g')) || "
    + _IDENT_SQL.replace("{x}", "lower({t})")
    + " || "
    + _IDENT_SQL.replace("{x}", "translate(lower({t}), '/', ' ')")
)

VECTOR_TABLE = re.compile(r"chunk_vector_[0-9]+")

_HYBRID_SQL = """
        WITH vec AS (
            SELECT v.document_id, v.chunk_id,
                   row_number() OVER (ORDER BY v.dist) AS rnk
            FROM (
                SELECT c.document_id, c.chunk_id, cv.embedding <=> $1 AS dist
                FROM {vector_table} cv
                JOIN chunk c ON c.document_id = cv.document_id AND c.chunk_id = cv.chunk_id
                JOIN document d ON d.id = c.document_id
                WHERE NOT d.hidden AND ($4::text[] IS NULL OR c.acl && $4::text[])
                  AND ($6::text IS NULL OR d.source = $6)
                  AND ($20::text IS NULL OR $20 = ANY(d.document_sets))
                  AND ($5::int IS NULL OR EXISTS (
                      SELECT 1 FROM document_by_connector_credential_pair p
                      WHERE p.document_id = d.id AND p.cc_pair_id = $5))
                ORDER BY cv.embedding <=> $1
                LIMIT $3
            ) v
        ),
        txt AS (
            SELECT s.document_id, s.chunk_id,
                   row_number() OVER (ORDER BY s.score DESC, s.document_id, s.chunk_id) AS rnk
            FROM (
                SELECT c.document_id, c.chunk_id,
                       ((SELECT sum(t.idf) FROM unnest($8::text[]::tsquery[], $9::float8[])
                                AS t(q, idf) WHERE c.search_tsv @@ t.q)
                        + coalesce((SELECT sum(l.idf) FROM unnest($17::text[], $18::float8[])
                                    AS l(s, idf) WHERE strpos(lower(c.content), l.s) > 0), 0))
                       * ($11::float8 + 1) / (1 + $11::float8 * (1 - $12::float8
                          + $12::float8 * length(c.content) / $10::float8))
                       AS score
                FROM chunk c JOIN document d ON d.id = c.document_id
                WHERE c.search_tsv @@ $7::tsquery
                  AND NOT d.hidden AND ($4::text[] IS NULL OR c.acl && $4::text[])
                  AND ($6::text IS NULL OR d.source = $6)
                  AND ($20::text IS NULL OR $20 = ANY(d.document_sets))
                  AND ($5::int IS NULL OR EXISTS (
                      SELECT 1 FROM document_by_connector_credential_pair p
                      WHERE p.document_id = d.id AND p.cc_pair_id = $5))
                LIMIT $19
            ) s
            ORDER BY s.score DESC, s.document_id, s.chunk_id
            LIMIT $3
        ),
        fused AS (
            SELECT coalesce(v.document_id, t.document_id) AS document_id,
                   coalesce(v.chunk_id, t.chunk_id) AS chunk_id,
                   v.rnk AS vector_rank, t.rnk AS text_rank,
                   coalesce($13::float8 / ($15::float8 + v.rnk), 0)
                   + coalesce($14::float8 / ($15::float8 + t.rnk), 0) AS fscore
            FROM vec v FULL OUTER JOIN txt t
              ON v.document_id = t.document_id AND v.chunk_id = t.chunk_id
        ),
        scored AS (
            SELECT f.*, f.fscore * (1 + d.boost) AS score, d.source, d.semantic_identifier
            FROM fused f JOIN document d ON d.id = f.document_id
        ),
        picked AS (
            SELECT DISTINCT ON (CASE WHEN $16::bool THEN s.document_id
                                     ELSE s.document_id || '#' || s.chunk_id END) s.*
            FROM scored s
            ORDER BY CASE WHEN $16::bool THEN s.document_id
                          ELSE s.document_id || '#' || s.chunk_id END, s.score DESC
        )
        SELECT p.*, c.title, c.content, c.link
        FROM picked p JOIN chunk c ON c.document_id = p.document_id AND c.chunk_id = p.chunk_id
        ORDER BY p.score DESC, p.document_id, p.chunk_id
        LIMIT $2
"""

BM25_K1 = 1.2
BM25_B = 0.75
DEFAULT_AVG_CHARS = 700.0
TEXT_MATCH_BUDGET = 3_000
"""About how many chunks the text side scores (see ``_within_budget``)."""
TEXT_PAIR_TERMS = 6
"""Terms beyond the budget that still match in pairs (15 pairs at most)."""
TEXT_SCAN_LIMIT = 4_000
"""Hard bound on chunks scored: one term alone may hold a quarter of the index."""


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
    source: str = ""
    semantic_identifier: str = ""


@dataclass(frozen=True)
class TextQuery:
    """The text side of a query: one tsquery per lexeme, its IDF, and which ones match."""

    terms: list[str]
    idf: list[float]
    match: list[str]
    avg_chars: float
    literals: list[str] = field(default_factory=list)
    literal_idf: list[float] = field(default_factory=list)
    match_filtered: list[str] | None = None
    """What to match under a filter, when it differs: every term of the pool, since the
    filter (not the budget) bounds the candidates and global frequencies say little
    about the filtered subset."""


# A query token written like an identifier: it holds one of these characters between
# other characters (``--force-with-lease``, ``help.autoCorrect``, ``@{upstream}``).
_IDENTIFIER_CHARS = re.compile(r"[-_./@{}<>:~^$=#\[\]]")
_EDGE_PUNCTUATION = "\"'`,;:!?()"


def literal_tokens(query: str) -> list[str]:
    """The query's identifier-like tokens, lowercased, to be matched literally.

    Full-text lexemes lose punctuation, so ``@{upstream}`` would only ever match the
    word "upstream"; a chunk holding the token exactly as typed gets a bonus instead.
    Sentence punctuation at the ends is dropped ("lease," and "(see" are not literal).
    """
    out: list[str] = []
    for raw_token in query.split():
        token = raw_token.strip(_EDGE_PUNCTUATION).rstrip(".").lower()
        if (
            len(token) >= 3
            and any(ch.isalnum() for ch in token)
            and _IDENTIFIER_CHARS.search(token)
            and token not in out
        ):
            out.append(token)
    return out


def _tsquery_literal(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


async def text_query(raw: Any, query: str) -> TextQuery:
    """Lexemes of ``query`` with BM25 IDF weights from the chunk index.

    Document frequency is counted through the GIN index, capped at ``cap`` rows so a
    very common term costs a bounded scan (its IDF is floored, it barely counts
    anyway). Terms at the cap are left out of candidate *matching* when rarer terms
    exist, so a query with one common word does not score half the index; they still
    add to the score of the chunks that are matched.

    On a large index (``dfcache.MIN_CHUNKS``) counts are reused for a short while
    (``sluice/index/dfcache.py``), so a common word is not counted on every query.
    """
    expr = SEARCH_TSV_SQL.format(t="$1::text")
    stats = await raw.fetchrow(
        f"""
        SELECT tsvector_to_array({expr}) AS lexemes, current_schema() AS schema,
               greatest(c.reltuples, 0)::bigint AS estimated,
               (SELECT s.avg_width FROM pg_stats s
                WHERE s.schemaname = n.nspname AND s.tablename = 'chunk'
                  AND s.attname = 'content') AS avg_chars
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = 'chunk'::regclass
        """,
        query,
    )
    lexemes = stats["lexemes"]
    if not lexemes:
        return TextQuery([], [], [], DEFAULT_AVG_CHARS)
    terms = [_tsquery_literal(lexeme) for lexeme in lexemes]
    total = int(stats["estimated"])
    cached = total >= DF_CACHE_MIN_CHUNKS
    if total < 10_000:  # never analysed, or small enough to count exactly
        total = int(await raw.fetchval("SELECT count(*) FROM chunk"))
    cap = max(1_000, total // 10)
    known = DF_CACHE.get(stats["schema"], cap, terms) if cached else {}
    missing = [t for t in terms if t not in known]
    if missing:
        counted = dict(zip(missing, await _count_dfs(raw, missing, cap), strict=True))
        if cached:
            DF_CACHE.put(stats["schema"], cap, counted)
        known = {**known, **counted}
    dfs = [known[t] for t in terms]
    n = max(total, max(dfs, default=0))
    idf = [math.log(1 + (n - df + 0.5) / (df + 0.5)) for df in dfs]
    rare = [t for t, df in zip(terms, dfs, strict=True) if 0 < df < cap]
    present = [t for t, df in zip(terms, dfs, strict=True) if df > 0]
    avg = float(stats["avg_chars"]) if stats["avg_chars"] else DEFAULT_AVG_CHARS
    pool = rare or present
    df_of = dict(zip(terms, dfs, strict=True))
    literals, literal_idf = await _literal_weights(raw, query, dict(zip(lexemes, idf, strict=True)))
    return TextQuery(
        terms,
        idf,
        _within_budget(pool, [df_of[t] for t in pool]),
        avg,
        literals=literals,
        literal_idf=literal_idf,
        match_filtered=pool,
    )


async def _literal_weights(
    raw: Any, query: str, weight: dict[str, float]
) -> tuple[list[str], list[float]]:
    """Identifier-like tokens and their weight: an exact occurrence counts its lexemes twice."""
    literals = literal_tokens(query)
    if not literals:
        return [], []
    rows = await raw.fetch(
        f"SELECT tsvector_to_array({SEARCH_TSV_SQL.format(t='t.tok')}) AS parts "
        "FROM unnest($1::text[]) WITH ORDINALITY AS t(tok, i) ORDER BY t.i",
        literals,
    )
    return literals, [sum(weight.get(p, 0.0) for p in r["parts"] or []) for r in rows]


def _within_budget(pool: list[str], dfs: list[int]) -> list[str]:
    """The match expressions: the rarest terms of ``pool`` holding ``TEXT_MATCH_BUDGET``
    chunks between them (the rarest at least), then each pair of the next rarer ones.

    A chunk matching none of the kept terms can only rank on the text side by holding
    several of the others, so those pairs (``a & b``, GIN-intersected: cheap) keep it a
    candidate; a chunk holding one common term alone is not scored (it would rank low:
    its score is one small IDF). When the pool fits the budget, this is the pool itself.
    """
    ranked = sorted(zip(dfs, range(len(pool)), pool, strict=True))
    kept: list[str] = []
    total = 0
    for df, _, term in ranked:
        if kept and total + df > TEXT_MATCH_BUDGET:
            break
        kept.append(term)
        total += df
    rest = [term for _, _, term in ranked[len(kept) :]][:TEXT_PAIR_TERMS]
    return kept + [f"({a} & {b})" for a, b in itertools.combinations(rest, 2)]


async def _count_dfs(raw: Any, terms: list[str], cap: int) -> list[int]:
    """How many chunks hold each term (one tsquery literal each), counting up to ``cap``."""
    rows = await raw.fetch(
        """
        SELECT (SELECT count(*) FROM (SELECT 1 FROM chunk c WHERE c.search_tsv @@ t.q
                                      LIMIT $2) s) AS df
        FROM unnest($1::text[]::tsquery[]) WITH ORDINALITY AS t(q, i)
        ORDER BY t.i
        """,
        terms,
        cap,
    )
    return [int(r["df"]) for r in rows]


async def hybrid_search(
    raw: Any,
    query: str,
    query_vector: np.ndarray,
    *,
    vector_table: str,
    limit: int = 10,
    candidates: int = 100,
    acl: Sequence[str] | None = None,
    cc_pair_id: int | None = None,
    source: str | None = None,
    collection: str | None = None,
    group: bool = False,
    vector_weight: float = 1.0,
    text_weight: float = 1.0,
    rrf_k: int = 60,
) -> list[SearchHit]:
    """Weighted reciprocal-rank fusion of vector similarity and a BM25-style text score.

    Text side: a chunk matches when it holds *any* query lexeme (an OR query over
    ``search_tsv``); its score is BM25 with binary term frequency (chunks are short, so
    tf saturation adds little): the sum of the IDFs of the lexemes it holds, scaled by
    ``(k1 + 1) / (1 + k1 * (1 - b + b * len / avg_len))``; an identifier-like query
    token (:func:`literal_tokens`) found verbatim in the chunk adds its lexemes' IDFs
    once more. Vector side: cosine distance
    over the HNSW index, as before. Fusion: ``w_v / (k + rank_v) + w_t / (k + rank_t)``,
    times ``1 + boost``.

    ``vector_table``: the live generation's vectors (``query_vector`` is in its space).
    ``group``: one hit per document (its best chunk), else chunk-level hits.
    ``cc_pair_id`` / ``source`` / ``collection``: only documents of that cc-pair, source or
    document set. ``acl``: only
    chunks readable by one of these principals.
    """
    tq = await text_query(raw, query)
    filtered = any(f is not None for f in (cc_pair_id, source, acl, collection))
    match = tq.match_filtered if filtered and tq.match_filtered is not None else tq.match
    # The HNSW scan returns at most ef_search rows; with filters it must keep scanning.
    # No sequential scans: a chunk's tsvector is TOASTed, so a seq scan filtering on a
    # common term detoasts every row it passes; the GIN index answers without them.
    await raw.execute(
        f"SET LOCAL hnsw.ef_search = {max(40, min(candidates, 1000))}; "
        "SET LOCAL enable_seqscan = off"
    )
    if filtered:
        await raw.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
    if not VECTOR_TABLE.fullmatch(vector_table):
        raise ValueError(f"not a vector table: {vector_table!r}")
    rows = await raw.fetch(
        _HYBRID_SQL.replace("{vector_table}", vector_table),
        query_vector,
        limit,
        candidates,
        list(acl) if acl is not None else None,
        cc_pair_id,
        source,
        " | ".join(match) if match else "",
        tq.terms,
        tq.idf,
        tq.avg_chars,
        BM25_K1,
        BM25_B,
        vector_weight,
        text_weight,
        float(rrf_k),
        group,
        tq.literals,
        tq.literal_idf,
        TEXT_SCAN_LIMIT,
        collection,
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
            source=r["source"],
            semantic_identifier=r["semantic_identifier"],
        )
        for r in rows
    ]
