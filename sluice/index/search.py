"""Search entry points: embed the query with the configured provider, then hybrid search.

:func:`search` is the Python API (typed results, filters, per-document grouping);
:func:`search_chunks` keeps the older chunk-level call.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from sluice.errors import SluiceError
from sluice.index.store import SearchHit


class EmptyQueryError(SluiceError):
    """A query without any text to look for."""


class SearchResult(BaseModel):
    """One hit: a document (its best chunk) or, with ``chunks=True``, one chunk."""

    rank: int = Field(ge=1)
    document_id: str
    title: str
    source: str
    link: str | None
    chunk_id: int
    snippet: str
    score: float
    vector_rank: int | None
    text_rank: int | None


def _snippet(text: str, size: int = 240) -> str:
    return " ".join(text.split())[:size]


async def search(
    tenant_id: str,
    query: str,
    *,
    k: int = 10,
    connector: int | None = None,
    source: str | None = None,
    chunks: bool = False,
    acl: list[str] | None = None,
) -> list[SearchResult]:
    """The ``k`` best documents for ``query`` (or chunks with ``chunks=True``).

    Raises :class:`EmptyQueryError` for an empty or whitespace-only query.
    """
    hits = await _hybrid(
        tenant_id,
        query,
        limit=k,
        connector=connector,
        source=source,
        group=not chunks,
        acl=acl,
    )
    return [
        SearchResult(
            rank=i,
            document_id=h.document_id,
            title=h.semantic_identifier or h.title,
            source=h.source,
            link=h.link,
            chunk_id=h.chunk_id,
            snippet=_snippet(h.content),
            score=h.score,
            vector_rank=h.vector_rank,
            text_rank=h.text_rank,
        )
        for i, h in enumerate(hits, 1)
    ]


async def search_chunks(tenant_id: str, query: str, *, limit: int = 10) -> list[SearchHit]:
    """Chunk-level hits (several chunks of one document may appear)."""
    return await _hybrid(tenant_id, query, limit=limit, group=False)


async def _hybrid(
    tenant_id: str,
    query: str,
    *,
    limit: int,
    group: bool,
    connector: int | None = None,
    source: str | None = None,
    acl: list[str] | None = None,
) -> list[SearchHit]:
    if not query.strip():
        raise EmptyQueryError("empty query: give some words to search for")
    from sluice.config import get_settings
    from sluice.db.session import tenant_connection
    from sluice.index.embedding import embedder_from_settings
    from sluice.index.store import hybrid_search

    settings = get_settings()
    embedder = embedder_from_settings(settings)
    vector = (await embedder.embed([query]))[0]
    async with tenant_connection(tenant_id) as (_, raw):
        return await hybrid_search(
            raw,
            query,
            vector,
            limit=limit,
            candidates=settings.search_candidates,
            acl=acl,
            cc_pair_id=connector,
            source=source,
            group=group,
            vector_weight=settings.search_vector_weight,
            text_weight=settings.search_text_weight,
            rrf_k=settings.search_rrf_k,
        )
