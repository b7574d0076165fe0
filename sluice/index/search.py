"""Search entry points: embed the query with the configured provider, then hybrid search.

:func:`search` is the Python API (typed results, filters, per-document grouping);
:func:`search_chunks` keeps the older chunk-level call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from sluice.errors import SluiceError
from sluice.index.store import SearchHit

if TYPE_CHECKING:
    from sluice.index.embedders import Embedders


class EmptyQueryError(SluiceError):
    """A query without any text to look for."""


class Neighbour(BaseModel):
    chunk_id: int
    snippet: str


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
    generation: int = Field(description="The index generation (embedding model) that answered.")
    neighbours: list[Neighbour] = Field(
        default_factory=list, description="Snippets of the chunks around the best one (context)."
    )


def _snippet(text: str, size: int = 240) -> str:
    return " ".join(text.split())[:size]


async def search(
    tenant_id: str,
    query: str,
    *,
    k: int = 10,
    connector: int | None = None,
    source: str | None = None,
    collection: str | None = None,
    chunks: bool = False,
    acl: list[str] | None = None,
    context: int = 0,
    as_user: str | None = None,
) -> list[SearchResult]:
    """The ``k`` best documents for ``query`` (or chunks with ``chunks=True``).

    Filters: ``connector`` (cc-pair ID), ``source``, ``collection`` (a document set),
    ``acl`` (principals: only chunks one of them may read), ``as_user`` (only what that
    user may read: see :func:`principals_for`; with ``acl`` too, both must allow).
    ``context``: also return snippets of up to that many chunks before and after each
    result's chunk.
    Raises :class:`EmptyQueryError` for an empty or whitespace-only query.
    """
    if as_user is not None:
        if not query.strip():
            raise EmptyQueryError("empty query: give some words to search for")
        principals = await principals_for(tenant_id, as_user)
        acl = principals if acl is None else [p for p in acl if p in principals]
    filters = Filters(connector=connector, source=source, collection=collection, acl=acl)
    generation, hits = await _hybrid(tenant_id, query, limit=k, group=not chunks, filters=filters)
    around = await _neighbours(tenant_id, hits, context, acl) if context > 0 and hits else {}
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
            generation=generation,
            neighbours=around.get((h.document_id, h.chunk_id), []),
        )
        for i, h in enumerate(hits, 1)
    ]


async def _neighbours(
    tenant_id: str, hits: list[SearchHit], width: int, acl: list[str] | None
) -> dict[tuple[str, int], list[Neighbour]]:
    """The chunks within ``width`` of each hit's chunk in its document (readable ones)."""
    from sluice.db.raw import raw_tenant_connection
    from sluice.index.store import chunks_around

    async with raw_tenant_connection(tenant_id) as raw:
        found = await chunks_around(raw, [(h.document_id, h.chunk_id) for h in hits], width, acl)
    return {
        key: [Neighbour(chunk_id=c, snippet=_snippet(text)) for c, text in rows]
        for key, rows in found.items()
    }


async def principals_for(tenant_id: str, user: str) -> list[str]:
    """``user:NAME``, ``group:G`` for every synced group that lists NAME (or is NAME's
    primary group), and ``public``. A user no source knows gets public documents only."""
    from sluice.connectors.base import PUBLIC
    from sluice.db.raw import raw_tenant_connection

    async with raw_tenant_connection(tenant_id) as raw:
        rows = await raw.fetch(
            "SELECT DISTINCT name FROM external_group WHERE members @> ARRAY[$1]::text[]"
            " ORDER BY name",
            user,
        )
    return [f"user:{user}", *(f"group:{r['name']}" for r in rows), PUBLIC]


async def search_chunks(tenant_id: str, query: str, *, limit: int = 10) -> list[SearchHit]:
    """Chunk-level hits (several chunks of one document may appear)."""
    return (await _hybrid(tenant_id, query, limit=limit, group=False))[1]


_embedders: Embedders | None = None


def _query_embedders() -> Embedders:
    global _embedders
    if _embedders is None:
        from sluice.index.embedders import Embedders

        _embedders = Embedders()
    return _embedders


@dataclass(frozen=True)
class Filters:
    connector: int | None = None
    source: str | None = None
    collection: str | None = None
    acl: list[str] | None = None


async def _hybrid(
    tenant_id: str,
    query: str,
    *,
    limit: int,
    group: bool,
    filters: Filters | None = None,
) -> tuple[int, list[SearchHit]]:
    """(live generation ID, hits): the query is embedded in the live generation's space.

    The generation is read first, the query embedded with no transaction open, then
    searched against that generation's vectors. If a model swap retired and dropped it
    in between (the drop waits a grace period after the switch, so only a search slower
    than that could see it), the search starts again on the new live generation.
    """
    if not query.strip():
        raise EmptyQueryError("empty query: give some words to search for")
    import asyncpg

    for tries_left in (1, 0):
        try:
            return await _hybrid_once(tenant_id, query, limit, group, filters or Filters())
        except asyncpg.UndefinedTableError:
            if not tries_left:
                raise
    raise AssertionError("unreachable")


async def _hybrid_once(
    tenant_id: str,
    query: str,
    limit: int,
    group: bool,
    filters: Filters,
) -> tuple[int, list[SearchHit]]:
    from sluice.config import get_settings
    from sluice.db.raw import raw_tenant_connection
    from sluice.index.generations import live_generation
    from sluice.index.store import hybrid_search

    settings = get_settings()
    async with raw_tenant_connection(tenant_id) as raw:
        generation = await live_generation(raw)
    embedder = _query_embedders().for_spec(generation.spec)
    vector = (await embedder.embed([query]))[0]
    async with raw_tenant_connection(tenant_id, vectors=True) as raw:
        hits = await hybrid_search(
            raw,
            query,
            vector,
            vector_table=generation.table,
            limit=limit,
            candidates=settings.search_candidates,
            acl=filters.acl,
            cc_pair_id=filters.connector,
            source=filters.source,
            collection=filters.collection,
            group=group,
            vector_weight=settings.search_vector_weight,
            text_weight=settings.search_text_weight,
            rrf_k=settings.search_rrf_k,
        )
    return generation.id, hits
