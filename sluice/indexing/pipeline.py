"""The batch pipeline: dedupe → skip unchanged → chunk → embed → write.

One function, :func:`index_documents`, used by the docprocessing activity and by
the benchmark's in-process baseline, so both measure the same code. CPU work
(chunking, embedding) runs off the event loop; the writes are one transaction
owned by the caller, so a batch lands whole or not at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sluice.connectors.models import Document, DocumentFailure
from sluice.index.chunking import chunk_document
from sluice.index.embedding import EmbeddingProvider
from sluice.index.store import (
    ChunkRow,
    existing_hashes,
    link_to_cc_pair,
    replace_chunks,
    upsert_documents,
)
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


async def index_documents(
    raw: Any,
    cc_pair_id: int,
    documents: Sequence[Document],
    embedder: EmbeddingProvider,
    *,
    on_progress: Callable[[str], None] | None = None,
) -> tuple[ProcessResult, list[DocumentFailure]]:
    """Index ``documents`` for ``cc_pair_id`` on the tenant connection ``raw``."""
    progress = on_progress or (lambda _stage: None)
    docs, duplicates = newest_per_id(documents)
    hashes = {d.id: d.content_hash() for d in docs}
    known = await existing_hashes(raw, list(hashes))
    changed = [d for d in docs if known.get(d.id) != hashes[d.id]]
    skipped = len(docs) - len(changed)
    progress("deduplicated")

    chunked = await asyncio.to_thread(chunk_batch, changed)
    progress("chunked")
    texts = [f"{r.title}\n{r.content}" for r in chunked.rows]
    vectors = await embedder.embed(texts)
    progress("embedded")

    accepted = await upsert_documents(raw, chunked.documents, hashes, chunked.counts)
    stale = len(chunked.documents) - len(accepted)  # a newer version is indexed already
    if stale:
        keep = [i for i, r in enumerate(chunked.rows) if r.document_id in accepted]
        chunked.rows = [chunked.rows[i] for i in keep]
        vectors = vectors[keep]
    written = await replace_chunks(raw, sorted(accepted), chunked.rows, vectors)
    stored = [d.id for d in docs if d.id in known or d.id in accepted]
    await link_to_cc_pair(raw, cc_pair_id, stored)
    progress("written")
    result = ProcessResult(
        docs_indexed=len(accepted),
        docs_skipped=skipped + stale,
        docs_failed=len(chunked.failures),
        duplicates=duplicates + stale,
        chunks_written=written,
    )
    return result, chunked.failures
