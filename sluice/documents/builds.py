"""The steps of a document's index round: parse, build one index type, delete.

Each is idempotent (a retry after a lost reply writes the same rows) and does its
writes in one transaction that first locks the document's row, so a build, a delete and
collection GC never interleave on one document.

Vector and fulltext share the document's rows in ``chunk`` (their text and lexemes,
which search's text side reads); the vector index adds one row per chunk in each writable
generation's ``chunk_vector_<id>``. Whichever of the two builds first writes the chunks
(``ensure_chunks``); the chunks go when neither index remains. Search finds a collection
document through ``document.document_sets``, which holds its collection's name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sluice.db.session import tenant_connection
from sluice.documents import store
from sluice.documents.graph import GraphExtractor, delete_graph, get_extractor, write_graph
from sluice.documents.models import IndexType, WorkItem
from sluice.documents.parsing import parse
from sluice.documents.summary import CentralitySummarizer
from sluice.errors import NotFoundError, SluiceError
from sluice.index.chunking import chunk_document
from sluice.index.embedders import Embedders
from sluice.index.generations import live_generation, writable_generations
from sluice.index.store import ChunkRow, copy_chunks, copy_vectors, delete_chunks
from sluice.indexing.pipeline import embed_rows

Progress = Callable[[str], None]


class DocumentChanged(SluiceError):
    """The document was parsed again while this build ran: retry on the new text."""


# ---------------------------------------------------------------------------- parse


async def parse_document(tenant_id: str, document_id: str) -> int:
    """Parse the stored bytes (unless already parsed) and upsert the search-side row.

    New content makes every active index of the document stale: they are set pending at
    a new version, so the round that follows rebuilds them on the new text.
    """
    async with tenant_connection(tenant_id) as (_, raw):
        doc = await store.lock_document(raw, document_id)
        if doc.parsed_hash != doc.raw_hash:
            data = await raw.fetchval(
                "SELECT raw FROM collection_document WHERE id = $1", document_id
            )
            text = parse(doc.content_type, bytes(data))
            await raw.execute(
                "UPDATE collection_document SET parsed_text = $2, parsed_hash = raw_hash, "
                "updated_at = now() WHERE id = $1",
                document_id,
                text,
            )
            if doc.parsed_hash is not None:
                await raw.execute(
                    "UPDATE document_index SET status = 'pending', version = version + 1, "
                    "updated_at = now() WHERE document_id = $1 AND status = 'active'",
                    document_id,
                )
        await _upsert_search_document(raw, doc)
        return int(
            await raw.fetchval(
                "SELECT length(parsed_text) FROM collection_document WHERE id = $1", document_id
            )
        )


async def _upsert_search_document(raw: Any, doc: store.StoredDocument) -> None:
    await raw.execute(
        """
        INSERT INTO document (id, source, semantic_identifier, link, metadata, acl,
                              document_sets, content_hash, chunk_count, last_modified)
        VALUES ($1, $2, $3, NULL, '{}'::jsonb, '{}', ARRAY[$4], $5, 0, now())
        ON CONFLICT (id) DO UPDATE SET document_sets = EXCLUDED.document_sets,
            semantic_identifier = EXCLUDED.semantic_identifier,
            content_hash = EXCLUDED.content_hash, last_modified = now()
        """,
        doc.id,
        store.SOURCE,
        doc.name,
        doc.collection,
        doc.raw_hash,
    )


# ---------------------------------------------------------------------------- chunks


def chunk_rows(document_id: str, title: str, text: str) -> list[ChunkRow]:
    chunks = chunk_document(title, [(text, None)])
    return [ChunkRow(document_id, c.chunk_id, title, c.text, None, []) for c in chunks]


async def _text(raw: Any, document_id: str) -> tuple[str, str, str, str]:
    """(collection, name, parsed text, parsed hash)."""
    collection, text, parsed_hash = await store.parsed_text(raw, document_id)
    name = await raw.fetchval("SELECT name FROM collection_document WHERE id = $1", document_id)
    return collection, str(name), text, parsed_hash


async def ensure_chunks(raw: Any, doc: store.StoredDocument) -> list[ChunkRow]:
    """The document's chunk rows, (re)written unless they already match the parsed text."""
    _, name, text, parsed_hash = await _text(raw, doc.id)
    rows = chunk_rows(doc.id, name, text)
    if doc.chunks_hash != parsed_hash:
        await delete_chunks(raw, [doc.id])
        await copy_chunks(raw, rows)
        await raw.execute(
            "UPDATE collection_document SET chunks_hash = parsed_hash WHERE id = $1", doc.id
        )
        await raw.execute("UPDATE document SET chunk_count = $2 WHERE id = $1", doc.id, len(rows))
    return rows


# ---------------------------------------------------------------------------- builds


async def build_fulltext(tenant_id: str, document_id: str) -> str:
    async with tenant_connection(tenant_id) as (_, raw):
        doc = await store.lock_document(raw, document_id)
        rows = await ensure_chunks(raw, doc)
    return f"{len(rows)} chunks searchable by text"


async def build_vector(
    tenant_id: str, document_id: str, embedders: Embedders, progress: Progress
) -> str:
    """Embed with no transaction open, then write chunks and vectors in one."""
    async with tenant_connection(tenant_id) as (_, raw):
        _, name, text, parsed_hash = await _text(raw, document_id)
        generations = await writable_generations(raw)
    rows = chunk_rows(document_id, name, text)
    vectors = await embed_rows(rows, generations, embedders, progress)
    async with tenant_connection(tenant_id) as (_, raw):
        doc = await store.lock_document(raw, document_id)
        if doc.parsed_hash != parsed_hash:
            raise DocumentChanged(f"document {document_id!r} changed during the build")
        locked = await writable_generations(raw, lock=True)  # no swap starts half-way
        late = [g for g in locked if g.id not in vectors]
        vectors.update(await embed_rows(rows, late, embedders, progress))
        await ensure_chunks(raw, doc)
        for gen in locked:
            await raw.execute(f"DELETE FROM {gen.table} WHERE document_id = $1", document_id)
            await copy_vectors(raw, gen.table, rows, vectors[gen.id])
    return f"{len(rows)} chunks embedded in {len(locked)} generation(s)"


async def build_graph(
    tenant_id: str, document_id: str, extractor: GraphExtractor | None = None
) -> str:
    async with tenant_connection(tenant_id) as (_, raw):
        collection, _, text, _ = await _text(raw, document_id)
    graph = await asyncio.to_thread((extractor or get_extractor()).extract, text)
    async with tenant_connection(tenant_id) as (_, raw):
        await store.lock_document(raw, document_id)
        await write_graph(raw, collection, document_id, graph)
    return f"{len(graph.labels)} entities, {len(graph.edges)} relations"


async def build_summary(tenant_id: str, document_id: str, embedders: Embedders) -> str:
    async with tenant_connection(tenant_id) as (_, raw):
        _, _, text, _ = await _text(raw, document_id)
        live = await live_generation(raw)
    summary = await CentralitySummarizer(embedders.for_spec(live.spec)).summarize(text)
    async with tenant_connection(tenant_id) as (_, raw):
        await store.lock_document(raw, document_id)
        await raw.execute(
            "INSERT INTO document_summary (document_id, summary, sentences) VALUES ($1, $2, $3) "
            "ON CONFLICT (document_id) DO UPDATE SET summary = EXCLUDED.summary, "
            "sentences = EXCLUDED.sentences, created_at = now()",
            document_id,
            summary.text,
            summary.sentences,
        )
    return f"{summary.sentences} sentences"


# ---------------------------------------------------------------------------- delete


async def vector_tables(raw: Any) -> list[str]:
    """Every generation's vector table that still exists (retired ones included)."""
    rows = await raw.fetch(
        "SELECT 'chunk_vector_' || id AS t FROM index_generation "
        "WHERE to_regclass('chunk_vector_' || id) IS NOT NULL ORDER BY id"
    )
    return [r["t"] for r in rows]


async def delete_indexes(tenant_id: str, document_id: str, items: list[WorkItem]) -> None:
    """Remove the data of each type, then its state row; with no index left, the chunks
    (and with no row left at all, the search-side document row) go too."""
    types = {i.index_type for i in items}
    async with tenant_connection(tenant_id) as (_, raw):
        try:
            doc = await store.lock_document(raw, document_id)
        except NotFoundError:
            return  # collected with its collection: nothing left to delete
        if IndexType.VECTOR in types:
            for table in await vector_tables(raw):
                await raw.execute(f"DELETE FROM {table} WHERE document_id = $1", document_id)
        if IndexType.GRAPH in types:
            await delete_graph(raw, doc.collection, document_id)
        if IndexType.SUMMARY in types:
            await raw.execute("DELETE FROM document_summary WHERE document_id = $1", document_id)
        await store.drop_state_rows(raw, document_id, items)
        left = {
            r["index_type"]
            for r in await raw.fetch(
                "SELECT index_type FROM document_index WHERE document_id = $1", document_id
            )
        }
        if not left & {IndexType.VECTOR.value, IndexType.FULLTEXT.value}:
            await delete_chunks(raw, [document_id])
            await raw.execute(
                "UPDATE collection_document SET chunks_hash = NULL WHERE id = $1", document_id
            )
        if not left:
            await raw.execute("DELETE FROM document WHERE id = $1", document_id)
