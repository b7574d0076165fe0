"""Synthetic connector: deterministic fake documents with injectable faults.

Load tests and fault tests need a source that is fast, reproducible and misbehaves on
demand (per-document failures, a hang that only the first attempt hits, duplicate IDs,
content changes). Everything is a pure function of (seed, position, version), so any two
runs, or a run resumed from a checkpoint, produce identical documents.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from operator import itemgetter
from typing import ClassVar, Literal

from pydantic import Field

from sluice.connectors.base import Connector, ConnectorConfig
from sluice.connectors.models import (
    Checkpoint,
    ConnectorOutput,
    Document,
    DocumentFailure,
)
from sluice.errors import BadCredentialsError, ConnectorConfigError, SluiceError

BASE_UPDATED_AT = datetime(2026, 1, 1, tzinfo=UTC)
HANG_SECONDS = 365 * 24 * 3600.0
"""Long enough to trip any activity timeout; cancellation still ends it promptly."""

_WORDS: tuple[str, ...] = tuple(
    """
    the of and to in is that for it as was with be by on not he this are or his from at
    which but have an they you were her she there been one all we their has would when if
    so no will more about can out time other into only some could new these two may first
    then do any like my now over such our man me even most made after also did many before
    must through back years where much your way well down should because each just those
    people how too little state good very make world still own see men work long get here
    between both life being under never day same another know while last might us great
    old year off come since against go came right used take three system index search query
    document vector embedding cluster worker queue schedule retry batch chunk token model
    source signal river stone garden window market city forest winter summer light shadow
    engine network server storage memory archive library letter report meeting budget team
    project policy customer product service review design quality process research data
    history theory method result value change order number group problem question answer
    morning evening north south island harbor bridge tower valley mountain ocean desert
    village school teacher student doctor farmer artist writer reader simple careful quiet
    bright early late open closed green blue silver golden ancient modern quick slow
    table chair kitchen paint music dance story travel coffee bread apple orange thunder
    rain cloud pencil camera
    """.split()
)
assert len(_WORDS) == 256 == len(set(_WORDS)), "one word per byte value"
_CAPITALISED = {word: word.capitalize() for word in _WORDS}
_MEAN_WORD_BYTES = sum(len(word) + 1 for word in _WORDS) / len(_WORDS)
_SENTENCE_LENGTHS = (9, 14, 7, 12, 17, 10, 8, 15, 11, 6)
_PARAGRAPH_SENTENCES = (4, 6, 3, 5, 7)
_PHASES = len(_SENTENCE_LENGTHS) * len(_PARAGRAPH_SENTENCES)
_YIELD_EVERY = 64
"""Without a delay, give the event loop a turn this often (heartbeats, cancellation)."""


class SyntheticSourceError(SluiceError):
    """A whole-source failure (an outage), retried by Temporal, unlike a per-document one."""


class SyntheticConfig(ConnectorConfig):
    """How many documents, how big, and which faults to inject where."""

    count: int = Field(default=100, ge=0, description="Number of positions (documents).")
    size_bytes: int = Field(default=2000, ge=1, description="Approximate text size per document.")
    seed: int = Field(default=0, description="Different seeds give disjoint ID spaces.")
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Names this source instance: its IDs are syn:<name>:<seed>:<position>, "
        "disjoint from every other name's. Unset: syn:<seed>:<position>, as before.",
    )
    delay_ms: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    large_every: int | None = Field(
        default=None, ge=1, description="Every k-th document is large_bytes big."
    )
    large_bytes: int = Field(default=50_000_000, ge=1, le=500_000_000)
    fail_every: int | None = Field(default=None, ge=1, description="Every k-th doc fails.")
    hang_at: int | None = Field(default=None, ge=0, description="Position that hangs.")
    hang_attempts: int = Field(default=1, ge=0, description="Hang while attempt <= this.")
    duplicate_every: int | None = Field(
        default=None, ge=1, description="Every k-th position re-emits the previous ID."
    )
    version: int = Field(default=0, ge=0, description="Bump to change every document.")
    rate_limit_every: int | None = Field(
        default=None, ge=1, description="Every k-th position waits on a simulated rate limit."
    )
    rate_limit_seconds: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    error_at: int | None = Field(
        default=None, ge=0, description="Position where the source itself errors (not one doc)."
    )
    error_kind: Literal["transient", "credentials"] = Field(
        default="transient",
        description="transient: a retryable outage; credentials: the source refuses us.",
    )


_Layout = tuple[tuple[int, ...], tuple[int, ...], tuple[tuple[int, int], ...]]


@lru_cache(maxsize=128)
def _layout(total: int, phase: int) -> _Layout:
    """Sentence-start and sentence-end word indexes, and paragraph (start, end) ranges.

    Depends only on the word count and the position's phase in the length cycles, so a
    benchmark with one ``size_bytes`` reuses a handful of layouts for every document.
    """
    starts: list[int] = []
    ends: list[int] = []
    paragraphs: list[tuple[int, int]] = []
    sentence_index = paragraph_index = phase
    start = 0
    while start < total:
        paragraph_start = start
        for _ in range(_PARAGRAPH_SENTENCES[paragraph_index % len(_PARAGRAPH_SENTENCES)]):
            if start >= total:
                break
            end = min(start + _SENTENCE_LENGTHS[sentence_index % len(_SENTENCE_LENGTHS)], total)
            starts.append(start)
            ends.append(end - 1)
            sentence_index += 1
            start = end
        paragraphs.append((paragraph_start, start))
        paragraph_index += 1
    return tuple(starts), tuple(ends), tuple(paragraphs)


def synthetic_paragraphs(seed: int, position: int, version: int, size_bytes: int) -> list[str]:
    """Readable pseudo-English of about ``size_bytes``, split into paragraphs.

    Each random byte picks one of exactly 256 words (``randbytes`` + ``itemgetter``, both
    in C), then only the ~30 sentence boundaries are patched in Python, using a cached
    layout. A 2 KB document costs ~15 µs; ``rng.choices`` plus a per-sentence loop was
    ~45 µs, and benchmarks generate tens of thousands of these.
    """
    rng = random.Random(f"{seed}:{position}:{version}")
    total = max(2, round(size_bytes / _MEAN_WORD_BYTES))  # >= 2: itemgetter returns a tuple
    starts, ends, paragraphs = _layout(total, position % _PHASES)
    words = list(itemgetter(*rng.randbytes(total))(_WORDS))
    for index in starts:
        words[index] = _CAPITALISED[words[index]]
    for index in ends:
        words[index] += "."
    return [" ".join(words[start:end]) for start, end in paragraphs]


class SyntheticConnector(Connector[SyntheticConfig]):
    """Deterministic documents ``syn:[<name>:]<seed>:<position>``; cursor = next position.

    The source instance is identified by ``(name, seed)``: two connectors with the same
    pair describe the same documents and share their rows; any other pair never collides.
    """

    source: ClassVar[str] = "synthetic"
    config_model: ClassVar[type[ConnectorConfig]] = SyntheticConfig

    @property
    def id_prefix(self) -> str:
        """``syn:<seed>:``, or ``syn:<name>:<seed>:`` for a named instance."""
        cfg = self.config
        return f"syn:{cfg.seed}:" if cfg.name is None else f"syn:{cfg.name}:{cfg.seed}:"

    def document_id(self, position: int) -> str:
        """The ID emitted at ``position``: a duplicate position reuses the previous one."""
        if self._is_duplicate(position):
            position -= 1
        return f"{self.id_prefix}{position}"

    def _is_duplicate(self, position: int) -> bool:
        every = self.config.duplicate_every
        return every is not None and position > 0 and (position + 1) % every == 0

    def item(self, position: int) -> Document | DocumentFailure:
        """What ``load`` emits at ``position`` (pure: no sleeping, no hanging)."""
        cfg = self.config
        doc_id = self.document_id(position)
        if cfg.fail_every is not None and (position + 1) % cfg.fail_every == 0:
            return DocumentFailure(
                document_id=doc_id,
                message=f"synthetic failure at position {position} (fail_every={cfg.fail_every})",
            )
        size = cfg.size_bytes
        if cfg.large_every is not None and (position + 1) % cfg.large_every == 0:
            size = cfg.large_bytes
        paragraphs = synthetic_paragraphs(cfg.seed, position, cfg.version, size)
        # Validating plain dicts runs in pydantic-core and is ~4x faster than
        # model_construct (pure Python); the text generation is the other half of the cost.
        return Document.model_validate(
            {
                "id": doc_id,
                "source": self.source,
                "semantic_identifier": f"Synthetic document {self.id_prefix[4:]}{position}",
                "sections": [{"text": paragraph} for paragraph in paragraphs],
                "metadata": self._metadata(position),
                "acl": ["public"],
                "updated_at": BASE_UPDATED_AT + timedelta(days=cfg.version),
            }
        )

    def _metadata(self, position: int) -> dict[str, str | list[str]]:
        cfg = self.config
        metadata: dict[str, str | list[str]] = {"seed": str(cfg.seed)}
        if cfg.name is not None:  # only when set: unnamed documents keep their content hash
            metadata["name"] = cfg.name
        metadata.update(position=str(position), version=str(cfg.version))
        return metadata

    async def load(self, checkpoint: Checkpoint) -> AsyncIterator[ConnectorOutput]:
        """Positions from the cursor on; ``since`` is ignored (content hashes skip repeats)."""
        cursor = checkpoint.cursor
        if cursor is None:
            start = 0
        elif isinstance(cursor, int) and not isinstance(cursor, bool) and cursor >= 0:
            start = cursor
        else:
            raise ConnectorConfigError(
                "malformed synthetic checkpoint cursor: expected a non-negative integer"
            )
        cfg = self.config
        for position in range(start, cfg.count):
            if position == cfg.hang_at and self.context.attempt <= cfg.hang_attempts:
                await asyncio.sleep(HANG_SECONDS)
            if position == cfg.error_at:
                if cfg.error_kind == "credentials":
                    raise BadCredentialsError("synthetic source refused the credential")
                raise SyntheticSourceError(f"synthetic source unavailable at position {position}")
            if cfg.rate_limit_every and (position + 1) % cfg.rate_limit_every == 0:
                await self.context.wait(cfg.rate_limit_seconds, every=0.25)
            if cfg.delay_ms > 0:
                await asyncio.sleep(cfg.delay_ms / 1000)
            elif (position - start) % _YIELD_EVERY == _YIELD_EVERY - 1:
                await asyncio.sleep(0)
            result = self.item(position)
            after = Checkpoint(
                cursor=position + 1, since=checkpoint.since, done=position + 1 == cfg.count
            )
            if isinstance(result, Document):
                yield ConnectorOutput(kind="document", document=result, checkpoint=after)
            else:
                yield ConnectorOutput(kind="failure", failure=result, checkpoint=after)

    async def fetch_document(self, doc_id: str) -> Document | DocumentFailure:
        """The document at the position the ID names (as ``load`` would emit it now)."""
        rest = doc_id.removeprefix(self.id_prefix)
        if rest == doc_id or not rest.isdigit() or int(rest) >= self.config.count:
            return DocumentFailure(document_id=doc_id, message="not a document of this source")
        return self.item(int(rest))

    async def list_ids(self) -> AsyncIterator[str]:
        """Every distinct ID ``load`` emits (failing positions included), in order."""
        previous: str | None = None
        for position in range(self.config.count):
            doc_id = self.document_id(position)
            if doc_id != previous:
                yield doc_id
            previous = doc_id
