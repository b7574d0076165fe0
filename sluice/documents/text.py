"""Sentence splitting shared by the graph extractor and the summarizer."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9`])")


def sentences(text: str) -> list[str]:
    """Sentences in order: paragraphs split at sentence ends, whitespace collapsed."""
    out: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        flat = " ".join(paragraph.split())
        out.extend(s.strip() for s in _SENTENCE_END.split(flat) if s.strip())
    return out
