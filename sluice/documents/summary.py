"""The summary index: a pluggable summarizer with an offline extractive default.

No LLM is available offline, so :class:`CentralitySummarizer` picks the document's most
central sentences: each sentence is embedded (the tenant's live embedding model), and a
sentence scores by cosine similarity to the mean of all sentence vectors (the document's
"centre of meaning"). The top few, in their original order, are the summary. Very short
fragments (headings, list stubs) are not candidates.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from pydantic import BaseModel

from sluice.documents.text import sentences
from sluice.index.embedding import EmbeddingProvider

SUMMARY_SENTENCES = 3
MIN_SENTENCE_CHARS = 25
MAX_SENTENCE_CHARS = 600
MAX_CANDIDATES = 400


class Summary(BaseModel):
    text: str
    sentences: int


class Summarizer(Protocol):
    name: str

    async def summarize(self, text: str) -> Summary: ...


def candidates(text: str) -> list[str]:
    found = [s for s in sentences(text) if MIN_SENTENCE_CHARS <= len(s) <= MAX_SENTENCE_CHARS]
    if not found:  # a document of fragments: take what there is
        found = [s[:MAX_SENTENCE_CHARS] for s in sentences(text)]
    return found[:MAX_CANDIDATES]


def most_central(vectors: np.ndarray, n: int) -> list[int]:
    """Indices of the ``n`` rows closest (cosine) to the normalised mean, in row order."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms == 0, 1, norms)
    centre = unit.mean(axis=0)
    centre /= np.linalg.norm(centre) or 1.0
    scores = unit @ centre
    best = np.argsort(-scores, kind="stable")[:n]
    return sorted(int(i) for i in best)


class CentralitySummarizer:
    name = "centrality"

    def __init__(self, embedder: EmbeddingProvider, size: int = SUMMARY_SENTENCES) -> None:
        self.embedder = embedder
        self.size = size

    async def summarize(self, text: str) -> Summary:
        picked = candidates(text)
        if len(picked) > self.size:
            vectors = np.asarray(await self.embedder.embed(picked), dtype=np.float32)
            picked = [picked[i] for i in most_central(vectors, self.size)]
        return Summary(text=" ".join(picked), sentences=len(picked))
