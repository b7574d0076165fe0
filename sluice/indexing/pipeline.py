"""The batch pipeline: dedupe → skip unchanged → chunk → embed → write.

Two steps, so no transaction stays open while the CPU works:

* :func:`prepare_batch` dedupes, skips unchanged documents, chunks and embeds, off
  the event loop and in slices, reporting progress after each slice (the activity
  turns that into heartbeats, so even a huge batch proves it is alive);
* :func:`write_batch` writes in sub-batches inside the caller's transaction, so a
  batch lands whole or not at all.

Vectors are computed for every writable index generation (the live one, and the one
a model swap is building), so a document indexed during a swap lands in both.

:func:`index_documents` runs both on one connection: the benchmark's in-process
baseline uses it, so both measure the same code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from sluice.connectors.models import Document, DocumentFailure
from sluice.index.chunking import chunk_document
from sluice.index.embedders import Embedders, as_embedders
from sluice.index.embedding import EmbeddingProvider, Vectors
from sluice.index.generations import Generation, embedding_text, writable_generations
from sluice.index.store import (
    ChunkRow,
    copy_chunks,
    copy_vectors,
    delete_chunks,
    existing_hashes,
    link_to_cc_pair,
    upsert_documents,
)
from sluice.indexing.metadata import refresh_sets
from sluice.indexing.models import ProcessResult

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def newest_per_id(documents: Sequence[Document]) -> tuple[list[Document], int]:
    """Keep one document per ID: the newest ``updated_at``, later position on ties.

    Duplicates are not failures (DESIGN §4.3): the newest wins and the run goes on.
    """
    best: dict[str, tuple[datetime, int, Document]] = {}
    for position, doc in enumerate(documents):
        key = (doc.updated_at or _EPOCH, position)
        current = best.get(doc.id)
        if current is None or key >= current[:2]:
            best[doc.id] = (*key, doc)
    kept = [entry[2] for entry in sorted(best.values(), key=lambda e: e[1])]
    return kept, len(documents) - len(kept)


@dataclass
class ChunkedBatch:
    rows: list[ChunkRow] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    documents: list[Document] = field(default_factory=list)
    failures: list[DocumentFailure] = field(default_factory=list)


def chunk_batch(documents: Sequence[Document]) -> ChunkedBatch:
    """Chunk every document; one that cannot be chunked becomes a failure, not an error."""
    out = ChunkedBatch()
    for doc in documents:
        try:
            chunks = chunk_document(
                doc.semantic_identifier, [(s.text, s.link or doc.link) for s in doc.sections]
            )
        except Exception as exc:  # a poison document must not sink its batch
            out.failures.append(
                DocumentFailure(document_id=doc.id, document_link=doc.link, message=repr(exc))
            )
            continue
        out.documents.append(doc)
        out.counts[doc.id] = len(chunks)
        out.rows.extend(
            ChunkRow(doc.id, c.chunk_id, doc.semantic_identifier, c.text, c.link, doc.acl)
            for c in chunks
        )
    return out


CHUNK_SLICE_DOCS = 50
"""Documents chunked per slice (each slice is one thread hop and one progress report)."""

EMBED_SLICE_TEXTS = 512
"""Texts embedded per call; progress is reported after each."""

WRITE_SLICE_ROWS = 1000
"""Chunk rows per COPY; progress is reported after each."""

Progress = Callable[[str], None]


def _slices(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class PreparedBatch:
    """A batch chunked and embedded, ready to be written (no transaction held yet)."""

    documents: list[Document]
    hashes: dict[str, str]
    known: dict[str, str]
    chunked: ChunkedBatch
    vectors: dict[int, Vectors]  # per generation ID, row i for chunked.rows[i]
    skipped: int
    duplicates: int

    @property
    def failures(self) -> list[DocumentFailure]:
        return self.chunked.failures


@dataclass(frozen=True)
class IndexState:
    """What a batch is prepared against: known content hashes and writable generations."""

    known: dict[str, str]
    generations: list[Generation]


async def index_state(raw: Any, documents: Sequence[Document]) -> IndexState:
    """Content hashes already indexed for these documents' IDs (what can be skipped)."""
    known = await existing_hashes(raw, sorted({d.id for d in documents}))
    return IndexState(known, await writable_generations(raw))


async def embed_rows(
    rows: Sequence[ChunkRow],
    generations: Sequence[Generation],
    embedders: Embedders,
    progress: Progress,
) -> dict[int, Vectors]:
    """Each generation's vectors for ``rows``, in slices (a progress report after each)."""
    texts = [embedding_text(r.title, r.content) for r in rows]
    out: dict[int, Vectors] = {}
    for gen in generations:
        embedder = embedders.for_spec(gen.spec)
        parts: list[Vectors] = []
        for group in _slices(texts, EMBED_SLICE_TEXTS):
            parts.append(await embedder.embed(list(group)))
            progress("embedding")
        out[gen.id] = (
            np.concatenate(parts) if parts else np.zeros((0, gen.spec.dim), dtype=np.float32)
        )
    return out


async def prepare_batch(
    documents: Sequence[Document],
    state: IndexState,
    embedders: Embedders,
    progress: Progress,
) -> PreparedBatch:
    """Everything but the writes, with no connection held: dedupe, skip, chunk, embed."""
    known = state.known
    docs, duplicates = newest_per_id(documents)
    hashes = {d.id: d.content_hash() for d in docs}
    changed = [d for d in docs if known.get(d.id) != hashes[d.id]]
    progress("deduplicated")
    chunked = ChunkedBatch()
    for part in _slices(changed, CHUNK_SLICE_DOCS):
        piece = await asyncio.to_thread(chunk_batch, part)
        chunked.rows.extend(piece.rows)
        chunked.counts.update(piece.counts)
        chunked.documents.extend(piece.documents)
        chunked.failures.extend(piece.failures)
        progress("chunking")
    vectors = await embed_rows(chunked.rows, state.generations, embedders, progress)
    return PreparedBatch(
        documents=docs,
        hashes=hashes,
        known=known,
        chunked=chunked,
        vectors=vectors,
        skipped=len(docs) - len(changed),
        duplicates=duplicates,
    )


async def write_batch(
    raw: Any,
    cc_pair_id: int | None,
    prepared: PreparedBatch,
    embedders: Embedders,
    progress: Progress,
) -> ProcessResult:
    """Write a prepared batch inside the caller's transaction, in sub-batches.

    The writable generations are locked (FOR SHARE) first, so a model swap cannot start
    or switch half-way through this write. A generation that appeared since the batch was
    prepared is embedded for here (rare: only a batch in flight when a swap starts); one
    that went (a canceled swap) is skipped. ``cc_pair_id`` None: documents no connector
    holds (user uploads), so no link is written and no set applies.
    """
    generations = await writable_generations(raw, lock=True)
    chunked, vectors = prepared.chunked, prepared.vectors
    accepted = await upsert_documents(raw, chunked.documents, prepared.hashes, chunked.counts)
    stale = len(chunked.documents) - len(accepted)  # a newer version is indexed already
    if stale:
        keep = [i for i, r in enumerate(chunked.rows) if r.document_id in accepted]
        chunked.rows = [chunked.rows[i] for i in keep]
        vectors = {gen_id: v[keep] for gen_id, v in vectors.items()}
    late = [g for g in generations if g.id not in vectors]
    vectors.update(await embed_rows(chunked.rows, late, embedders, progress))
    await delete_chunks(raw, sorted(accepted))
    written = 0
    for start in range(0, len(chunked.rows), WRITE_SLICE_ROWS):
        end = start + WRITE_SLICE_ROWS
        written += await copy_chunks(raw, chunked.rows[start:end])
        for gen in generations:
            await copy_vectors(raw, gen.table, chunked.rows[start:end], vectors[gen.id][start:end])
        progress("writing")
    stored = [d.id for d in prepared.documents if d.id in prepared.known or d.id in accepted]
    if cc_pair_id is not None:
        await link_to_cc_pair(raw, cc_pair_id, stored)
        await refresh_sets(raw, stored)
    progress("written")
    return ProcessResult(
        docs_indexed=len(accepted),
        docs_skipped=prepared.skipped + stale,
        docs_failed=len(chunked.failures),
        duplicates=prepared.duplicates + stale,
        chunks_written=written,
    )


async def index_documents(
    raw: Any,
    cc_pair_id: int | None,
    documents: Sequence[Document],
    embedder: EmbeddingProvider | Embedders,
    *,
    on_progress: Progress | None = None,
) -> tuple[ProcessResult, list[DocumentFailure]]:
    """Index ``documents`` for ``cc_pair_id`` on the tenant connection ``raw`` (one go)."""
    progress = on_progress or (lambda _stage: None)
    embedders = as_embedders(embedder)
    state = await index_state(raw, documents)
    prepared = await prepare_batch(documents, state, embedders, progress)
    result = await write_batch(raw, cc_pair_id, prepared, embedders, progress)
    return result, prepared.chunked.failures
