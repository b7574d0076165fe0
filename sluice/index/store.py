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
from sluice.index.dfcache import DF_CACHE, FILTER_CHUNKS
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


def _filters(cc_pair: str, source: str, collection: str) -> str:
    """The document filters of a search, ``d`` being the document; arguments are the
    SQL parameters holding them (NULL: no filter)."""
    return f"""
    NOT d.hidden
    AND ({source}::text IS NULL OR d.source = {source})
    AND ({collection}::text IS NULL OR {collection} = ANY(d.document_sets))
    AND ({cc_pair}::int IS NULL OR EXISTS (
        SELECT 1 FROM document_by_connector_credential_pair p
        WHERE p.document_id = d.id AND p.cc_pair_id = {cc_pair}))
"""


_FILTERS = _filters("$5", "$6", "$20")

# The vector side over the HNSW index: the default, and for filters that keep much of
# the index (iterative scan, bounded by ``hnsw.max_scan_tuples``).
_VEC_HNSW = """
        WITH vec AS (
            SELECT v.document_id, v.chunk_id,
                   row_number() OVER (ORDER BY v.dist) AS rnk
            FROM (
                SELECT cv.document_id, cv.chunk_id, cv.embedding <=> $1 AS dist
                FROM {vector_table} cv {joins}
                WHERE {where}
                ORDER BY cv.embedding <=> $1
                LIMIT $3
            ) v
        ),
"""

# The vector side for a selective filter: every vector of the filtered documents, exactly.
# HNSW finds few of them when they lie away from the query in the graph (a filter on a
# connector whose documents are unlike the query: 7-22 of 100 found after scanning
# 20,000 tuples, 100 ms); reading a few thousand vectors is faster and exact.
_VEC_EXACT = """
        WITH narrowed AS MATERIALIZED (
            SELECT ARRAY(SELECT d.id FROM document d WHERE {filters}) AS ids
        ),
        vec AS (
            SELECT v.document_id, v.chunk_id,
                   row_number() OVER (ORDER BY v.dist) AS rnk
            FROM (
                SELECT f.document_id, f.chunk_id, f.dist
                FROM (
                    -- One index scan over the filtered documents' keys (sorted, PG 17+),
                    -- not a lookup per document; OFFSET 0 keeps the ORDER BY off HNSW.
                    SELECT cv.document_id, cv.chunk_id, cv.embedding <=> $1 AS dist
                    FROM {vector_table} cv
                    WHERE cv.document_id = ANY((SELECT ids FROM narrowed)::text[])
                      AND ($4::text[] IS NULL OR EXISTS (
                          SELECT 1 FROM chunk c
                          WHERE c.document_id = cv.document_id AND c.chunk_id = cv.chunk_id
                            AND c.acl && $4::text[]))
                    OFFSET 0
                ) f
                ORDER BY f.dist
                LIMIT $3
            ) v
        ),
"""


def _side_filters(sql: str, filtered: bool) -> str:
    """Fill in each side's joins and conditions. Without filters neither side joins
    the document (or, for vectors, the chunk) table: ``scored`` drops hidden documents
    from the fused hits, and that join per candidate was 3-5 ms of an unfiltered query."""
    acl = "($4::text[] IS NULL OR c.acl && $4::text[])"
    if not filtered:  # the filter parameters are all NULL (typed, as unused ones must be)
        unfiltered = (
            "($4::text[] IS NULL AND $5::int IS NULL AND $6::text IS NULL AND $20::text IS NULL)"
        )
        return (
            sql.replace("{joins}", "")
            .replace("{where}", unfiltered)
            .replace("{text_joins}", "")
            .replace("{text_where}", "TRUE")
        )
    return (
        sql.replace(
            "{joins}",
            "JOIN chunk c ON c.document_id = cv.document_id AND c.chunk_id = cv.chunk_id "
            "JOIN document d ON d.id = c.document_id",
        )
        .replace("{where}", f"{acl} AND {_FILTERS}")
        .replace("{text_joins}", "JOIN document d ON d.id = c.document_id")
        .replace("{text_where}", f"{acl} AND {_FILTERS}")
        .replace("{filters}", _FILTERS)
    )


# The vector side of a small index, exactly: HNSW's approximation loses recall (on the
# 3,730-chunk Git manual one question in 26 fell out of the top 5) where reading every
# vector costs a few milliseconds.
_VEC_EXACT_ALL = """
        WITH vec AS (
            SELECT v.document_id, v.chunk_id,
                   row_number() OVER (ORDER BY v.dist) AS rnk
            FROM (
                SELECT f.document_id, f.chunk_id, f.dist
                FROM (
                    SELECT cv.document_id, cv.chunk_id, cv.embedding <=> $1 AS dist
                    FROM {vector_table} cv {joins}
                    WHERE {where}
                    OFFSET 0
                ) f
                ORDER BY f.dist
                LIMIT $3
            ) v
        ),
"""

# Under a narrow filter the text side intersects its term matches with the filtered
# documents' chunks (a BitmapAnd of the GIN and primary-key indexes): matching common
# terms across the whole index only to drop most rows cost 20 ms, this 10 ms.
_TEXT_NARROWED = "AND c.document_id = ANY((SELECT ids FROM narrowed)::text[])"

_HYBRID_SQL = """
        txt_matched AS (
            SELECT c.document_id, c.chunk_id,
                   (SELECT sum(t.idf) FROM unnest($8::text[]::tsquery[], $9::float8[])
                           AS t(q, idf) WHERE c.search_tsv @@ t.q) AS base,
                   ($11::float8 + 1) / (1 + $11::float8 * (1 - $12::float8
                      + $12::float8 * octet_length(c.content) / $10::float8)) AS norm
            FROM chunk c {text_joins}
            WHERE c.search_tsv @@ $7::tsquery AND {text_where} {narrowed}
            LIMIT $19
        ),
        txt AS (
            SELECT s.document_id, s.chunk_id,
                   row_number() OVER (ORDER BY s.score DESC, s.document_id, s.chunk_id) AS rnk
            FROM (
                SELECT m.document_id, m.chunk_id,
                       (m.base + CASE WHEN cardinality($17::text[]) = 0 THEN 0 ELSE coalesce((
                            SELECT sum(l.idf)
                            FROM chunk lc, unnest($17::text[], $18::float8[]) AS l(s, idf)
                            WHERE lc.document_id = m.document_id AND lc.chunk_id = m.chunk_id
                              AND strpos(CASE WHEN $22::bool THEN lower(lc.content COLLATE "C")
                                              ELSE lower(lc.content) END, l.s) > 0), 0) END)
                       * m.norm AS score
                FROM (SELECT * FROM txt_matched ORDER BY base * norm DESC LIMIT $21) m
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
            FROM fused f CROSS JOIN LATERAL (
                -- a key lookup per fused hit (at most 200), never a scan of all documents
                SELECT boost, source, semantic_identifier FROM document
                WHERE id = f.document_id AND NOT hidden OFFSET 0) d
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
TEXT_MATCH_BUDGET = 1_500
"""About how many chunks the text side scores (see ``_within_budget``)."""
TEXT_PAIR_TERMS = 6
"""Terms beyond the budget that still match in pairs (15 pairs at most)."""
TEXT_SCAN_LIMIT = 2_000
"""Hard bound on chunks scored: one term alone may hold a quarter of the index."""
EXACT_SMALL_INDEX = 5_000
"""An index of at most this many chunks is searched exactly on the vector side."""
EXACT_VECTOR_CHUNKS = 20_000
"""A filter keeping at most this many chunks is searched exactly on the vector side."""
HNSW_SCAN_TUPLES = 3_000
"""Bound on an iterative HNSW scan under a broad filter (pgvector's default: 20,000).

Each tuple scanned costs about 14 µs (the graph step plus the filter's joins). A query
near the filter's documents finds its 100 within a few hundred; one far from them (a
question about dates, filtered to a code repository) found 66 after 10,000 tuples and
140 ms, and finds a handful after 3,000 (20 ms): the text side still answers it."""
TEXT_LITERAL_CANDIDATES = 400
"""How many of the best-scored text matches are searched for identifiers typed verbatim.

The literal check reads and lowercases a chunk's whole text (about 10 µs), so it runs
on the leaders only. A chunk holding the literal holds its lexemes too, so it already
scores high; the bonus at most doubles a score, and the text side keeps 100."""


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
    chunks: int | None = None
    """How many chunks the index holds (exact below 10,000; None: not looked up)."""
    schema: str = ""
    """The tenant's schema (read with the statistics): the key of per-tenant caches."""


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

    On a large index (``dfcache.MIN_CHUNKS``) a common lexeme's frequency comes from the
    planner's statistics and the others' counts are reused for a short while
    (``sluice/index/dfcache.py``), so a common word is not counted on every query.
    A query of common terms only matches the chunks holding all of them (:func:`_all_of`).
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
        return TextQuery([], [], [], DEFAULT_AVG_CHARS, schema=stats["schema"])
    terms = [_tsquery_literal(lexeme) for lexeme in lexemes]
    total = int(stats["estimated"])
    cached = total >= DF_CACHE_MIN_CHUNKS
    if total < 10_000:  # never analysed, or small enough to count exactly
        total = int(await raw.fetchval("SELECT count(*) FROM chunk"))
    cap = max(1_000, total // 10)
    if cached:
        dfs = await _large_index_dfs(raw, stats["schema"], lexemes, total, cap)
    else:
        dfs = await _count_dfs(raw, terms, cap)
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
        _within_budget(pool, [df_of[t] for t in pool]) if rare else _all_of(present),
        avg,
        literals=literals,
        literal_idf=literal_idf,
        match_filtered=pool,
        chunks=total,
        schema=stats["schema"],
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


def _all_of(common: list[str]) -> list[str]:
    """The match for a query of common terms only (each in a tenth of the index or more):
    the chunks holding all of them. Any one of them, or any pair, matches tens of
    thousands of chunks, and building that bitmap alone cost 10-20 ms on 100,000 chunks;
    such a query's text side can only tell chunks apart by holding every term."""
    return [" & ".join(common)] if common else []


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


async def _large_index_dfs(
    raw: Any, schema: str, lexemes: list[str], total: int, cap: int
) -> list[int]:
    """Document frequencies on a large index: common lexemes from the planner's
    statistics, the others counted through GIN (and cached for a while).

    ``ANALYZE`` keeps the most common lexemes of ``search_tsv`` with their frequencies
    (about 1,000 at the default statistics target, down to about 1 % of chunks): a
    common word's count is read there instead of scanning thousands of GIN entries and
    heap rows on every query. A lexeme not in that list is rarer, so counting it is a
    short scan.
    """
    rows = await raw.fetch(
        """
        SELECT m.elem, m.freq
        FROM pg_stats s,
             unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS m(elem, freq)
        WHERE s.schemaname = $2 AND s.tablename = 'chunk' AND s.attname = 'search_tsv'
          AND m.elem = ANY($1::text[])
        """,
        lexemes,
        schema,
    )
    estimated = {r["elem"]: max(1, round(r["freq"] * total)) for r in rows}
    terms = {lexeme: _tsquery_literal(lexeme) for lexeme in lexemes}
    rest = [terms[x] for x in lexemes if x not in estimated]
    known = DF_CACHE.get(schema, cap, rest)
    missing = [t for t in rest if t not in known]
    if missing:
        counted = dict(zip(missing, await _count_dfs(raw, missing, cap), strict=True))
        DF_CACHE.put(schema, cap, counted)
        known = {**known, **counted}
    return [estimated[x] if x in estimated else known[terms[x]] for x in lexemes]


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


async def _few_chunks_pass(
    raw: Any, schema: str, cc_pair_id: int | None, source: str | None, collection: str | None
) -> bool:
    """Whether the filters keep at most ``EXACT_VECTOR_CHUNKS`` chunks (then the vector
    side reads them all instead of walking the HNSW graph). Counts a bounded number of
    documents' ``chunk_count``s through the filters' indexes, and keeps the answer for
    a minute (a filter is usually asked again: the same connector, source or set)."""
    key = f"{cc_pair_id}|{source}|{collection}"
    cached = FILTER_CHUNKS.get(schema, EXACT_VECTOR_CHUNKS, [key])
    if key in cached:
        return cached[key] <= EXACT_VECTOR_CHUNKS
    total = int(
        await raw.fetchval(
            "SELECT coalesce(sum(s.n), 0) FROM (SELECT d.chunk_count AS n FROM document d "
            f"WHERE {_filters('$1', '$2', '$3')} LIMIT $4) s",
            cc_pair_id,
            source,
            collection,
            EXACT_VECTOR_CHUNKS + 1,
        )
    )
    FILTER_CHUNKS.put(schema, EXACT_VECTOR_CHUNKS, {key: total})
    return total <= EXACT_VECTOR_CHUNKS


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
    once more. Vector side: cosine distance over the HNSW index; exactly over every
    vector when the index is small (``EXACT_SMALL_INDEX``) or a filter keeps few chunks
    (``EXACT_VECTOR_CHUNKS``); an iterative, bounded HNSW scan under a broad filter.
    Fusion: ``w_v / (k + rank_v) + w_t / (k + rank_t)``, times ``1 + boost``.

    ``vector_table``: the live generation's vectors (``query_vector`` is in its space).
    ``group``: one hit per document (its best chunk), else chunk-level hits.
    ``cc_pair_id`` / ``source`` / ``collection``: only documents of that cc-pair, source or
    document set. ``acl``: only
    chunks readable by one of these principals.
    """
    if not VECTOR_TABLE.fullmatch(vector_table):
        raise ValueError(f"not a vector table: {vector_table!r}")
    tq = await text_query(raw, query)
    filtered = any(f is not None for f in (cc_pair_id, source, acl, collection))
    narrow = any(f is not None for f in (cc_pair_id, source, collection))
    small = tq.chunks is not None and tq.chunks <= EXACT_SMALL_INDEX
    exact = narrow and (
        small or await _few_chunks_pass(raw, tq.schema, cc_pair_id, source, collection)
    )
    # Under a narrow filter the filter, not the budget, bounds the text side's
    # candidates; a broad one keeps most chunks, so the budget applies as unfiltered.
    match = tq.match_filtered if exact and tq.match_filtered is not None else tq.match
    # The HNSW scan returns at most ef_search rows; under a filter it looks at twice as
    # many (most pass a broad filter: one pass is then enough) and keeps scanning, up
    # to a bound. No sequential scans: the GIN index answers the text side.
    ef_search = max(40, min(candidates * (2 if filtered else 1), 1000))
    settings = [f"hnsw.ef_search = {ef_search}", "enable_seqscan = off"]
    if filtered and not exact and not small:
        settings.append("hnsw.iterative_scan = relaxed_order")
        settings.append(f"hnsw.max_scan_tuples = {HNSW_SCAN_TUPLES}")
    # Plan for this query's values: a generic plan cannot fold the NULL filters away
    # nor see how selective the text terms are (measured: the same filtered statement
    # 120 ms on its cached generic plan, 51 ms planned for its values, 3 ms planning).
    settings.append("plan_cache_mode = force_custom_plan")
    await raw.execute("; ".join(f"SET LOCAL {setting}" for setting in settings))
    vector_side = _VEC_EXACT if exact else _VEC_EXACT_ALL if small else _VEC_HNSW
    sql = vector_side + _HYBRID_SQL
    rows = await raw.fetch(
        _side_filters(sql, filtered)
        .replace("{vector_table}", vector_table)
        .replace("{narrowed}", _TEXT_NARROWED if exact else ""),
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
        TEXT_LITERAL_CANDIDATES,
        all(literal.isascii() for literal in tq.literals),
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
