"""Split a document's sections into search-sized chunks.

A chunk is a contiguous span of one section's text, so every chunk keeps the
section's link and a search hit can point at the right place. Cuts prefer, in
order: a paragraph break, a sentence end or line break, a space, and only then
a hard cut (a giant token such as a base64 blob). Each candidate must leave the
chunk at least half full, which bounds the number of chunks and guarantees
progress. Consecutive chunks of one section share ``overlap_chars`` of text so
a sentence cut at a boundary is still findable from either side.

The cutter works with ``str.rfind`` on windows of the original text (C speed,
no regex backtracking): it runs once per document in the indexing hot path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A line holding only spaces/tabs counts as blank. ``[^\S\n]*`` cannot cross a
# newline, so every match attempt stops at the next newline: linear time.
_BLANK_LINE = re.compile(r"\n[^\S\n]+\n")

# (pattern, offset of the cut after the match start), cut keeps the punctuation.
_SENTENCE_ENDS: tuple[tuple[str, int], ...] = (
    (". ", 1),
    ("? ", 1),
    ("! ", 1),
    (".\n", 1),
    ("?\n", 1),
    ("!\n", 1),
    ('." ', 2),
    (".) ", 2),
    ("\n", 0),
)
_SPACES: tuple[str, ...] = (" ", "\n", "\t")
_WORD_STARTS: tuple[tuple[str, int], ...] = tuple((ch, 1) for ch in _SPACES)


@dataclass(frozen=True)
class Chunk:
    """One unit of retrieval: ``chunk_id`` is its 0-based position within the document."""

    chunk_id: int
    text: str
    link: str | None


def chunk_document(
    title: str,
    sections: list[tuple[str, str | None]],
    max_chars: int = 1200,
    overlap_chars: int = 150,
) -> list[Chunk]:
    """Chunk ``sections`` (``(text, link)`` pairs) into pieces of at most ``max_chars``.

    A section longer than ``max_chars`` is split on its own, with overlap; consecutive
    short sections (paragraphs, small headings) are packed together into one chunk,
    which carries the first one's link, so a document of many small sections does not
    turn into many tiny chunks (each costs an embedding and an index entry).

    The title is not repeated in chunk text (it is stored with the document), except
    for a document without any text: it yields one chunk holding the title, so every
    document can still be found. NUL characters are dropped because PostgreSQL text
    columns reject them.
    """
    if max_chars < 2:
        raise ValueError(f"max_chars must be at least 2, got {max_chars}")
    if not 0 <= overlap_chars < max_chars // 2:
        raise ValueError(
            f"overlap_chars must be in [0, max_chars // 2), got {overlap_chars} "
            f"for max_chars={max_chars}"
        )
    chunks: list[Chunk] = []
    packed: list[str] = []  # consecutive small sections share a chunk
    packed_link: str | None = None

    def flush() -> None:
        if packed:
            chunks.append(Chunk(len(chunks), "\n\n".join(packed), packed_link))
            packed.clear()

    for text, link in sections:
        pieces = _split_section(text, max_chars, overlap_chars)
        if len(pieces) != 1:
            flush()
            for piece in pieces:
                chunks.append(Chunk(len(chunks), piece, link))
            continue
        size = sum(len(p) + 2 for p in packed) + len(pieces[0])
        if packed and size > max_chars:
            flush()
        if not packed:
            packed_link = link
        packed.append(pieces[0])
    flush()
    if not chunks:
        link = sections[0][1] if sections else None
        chunks.append(Chunk(0, _clean(title).strip(), link))
    return chunks


def _clean(text: str) -> str:
    """Normalise line endings and blank lines, drop NULs: cheap checks skip the common case."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\n " in text or "\n\t" in text:
        text = _BLANK_LINE.sub("\n\n", text)
    return text


def _split_section(text: str, max_chars: int, overlap: int) -> list[str]:
    """Cut one section into stripped, non-empty spans of at most ``max_chars`` characters."""
    text = _clean(text).strip()
    n = len(text)
    if n <= max_chars:
        return [text] if text else []
    pieces: list[str] = []
    half = max_chars // 2
    start = 0
    while True:
        if n - start <= max_chars:
            pieces.append(text[start:].strip())
            return pieces
        limit = start + max_chars
        cut = _find_cut(text, start + half, limit)
        pieces.append(text[start:cut].rstrip())
        start = _next_start(text, cut, overlap, start)


def _find_cut(text: str, lo: int, limit: int) -> int:
    """The best end (exclusive) in ``[lo, limit]`` for a chunk whose hard end is ``limit``."""
    # A match of length k at i ends at i + k; letting it end at limit + 1 allows the
    # whitespace after the cut to sit just past the window.
    para = text.rfind("\n\n", lo, limit + 1)
    if para != -1:
        return para
    best = -1
    for pattern, offset in _SENTENCE_ENDS:
        i = text.rfind(pattern, lo, limit + 1)
        if i != -1 and i + offset > best:
            best = i + offset
    if best != -1:
        return best
    for space in _SPACES:
        i = text.rfind(space, lo, limit + 1)
        if i > best:
            best = i
    return best if best != -1 else limit


def _next_start(text: str, cut: int, overlap: int, prev_start: int) -> int:
    """Where the next chunk starts: ``overlap`` characters before ``cut``, on a word start."""
    start = cut
    if overlap:
        lo = cut - overlap
        # Snap forward to the first sentence, else word, that starts in the overlap window.
        start = _first_after(text, _SENTENCE_ENDS, lo, cut)
        if start == -1:
            start = _first_after(text, _WORD_STARTS, lo, cut)
        if start == -1:
            # One giant token: a mid-word overlap would only add noise.
            start = lo if text[lo - 1].isspace() else cut
    n = len(text)
    while start < n and text[start].isspace():
        start += 1
    return start if start > prev_start else cut


def _first_after(text: str, patterns: tuple[tuple[str, int], ...], lo: int, hi: int) -> int:
    """The smallest ``match + offset`` of any pattern inside ``text[lo:hi]``, or -1."""
    best = -1
    for pattern, offset in patterns:
        i = text.find(pattern, lo, hi)
        if i != -1 and (best == -1 or i + offset < best):
            best = i + offset
    return best
