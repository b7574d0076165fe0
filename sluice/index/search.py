"""Search entry point: embed the query with the configured provider, then hybrid search."""

from __future__ import annotations

from sluice.config import get_settings
from sluice.db.session import tenant_connection
from sluice.index.embedding import embedder_from_settings
from sluice.index.store import SearchHit, hybrid_search


async def search_chunks(tenant_id: str, query: str, *, limit: int = 10) -> list[SearchHit]:
    settings = get_settings()
    embedder = embedder_from_settings(settings)
    vector = (await embedder.embed([query]))[0]
    async with tenant_connection(tenant_id) as (_, raw):
        return await hybrid_search(raw, query, vector, limit=limit)
