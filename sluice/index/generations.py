"""Index generations: one vector table per embedding model, so a model swap has no downtime.

Chunks (text, title, link, ACL, full-text lexemes) are model-independent and live once
in ``chunk``. Vectors depend on the embedding model, so each *generation* (a provider,
model and dimension) keeps its own table ``chunk_vector_<id>`` with its own HNSW index,
whose rows cascade away with their chunk.

At most one generation is ``live`` (search reads it) and at most one is ``building``
(a swap in progress re-embeds every chunk into it). Indexing writes every *writable*
generation (live and building), so documents indexed during a swap land in both.

Locking makes the hand-overs exact, without a global lock on the hot path:

* a batch write holds ``FOR SHARE`` on the writable generation rows;
* starting, switching or abandoning a generation takes ``FOR UPDATE`` on them, so it
  waits for writes in flight and every later write sees the new state. A chunk written
  before a swap started is found by the re-embedding scan that starts after it; a chunk
  written after is written to both. The switch re-checks that no chunk lacks a vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sluice.errors import ConfigurationError, NotFoundError, SwapInProgress

MAX_HNSW_DIM = 2000
"""pgvector's HNSW index takes at most 2,000 dimensions for ``vector``."""

LOCAL_DIMS = (64, 128, 256)
"""Dimensions the bundled WordLlama model serves (mirrors ``embedding.WORDLLAMA_DIMS``)."""


class GenerationStatus(StrEnum):
    BUILDING = "building"
    LIVE = "live"
    RETIRED = "retired"
    FAILED = "failed"
    CANCELED = "canceled"


WRITABLE = (GenerationStatus.LIVE.value, GenerationStatus.BUILDING.value)


class SameModel(ConfigurationError):
    """The requested model is the one the live generation already uses."""


class EmbeddingSpec(BaseModel):
    """What identifies a vector space: provider, model and dimension (and where to ask)."""

    model_config = ConfigDict(frozen=True)

    provider: Literal["local", "openai"]
    dim: int = Field(ge=1, le=MAX_HNSW_DIM)
    model: str | None = None
    base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint; EMBEDDING_BASE_URL if unset."
    )

    @model_validator(mode="after")
    def _complete(self) -> EmbeddingSpec:
        if self.provider == "local" and self.dim not in LOCAL_DIMS:
            raise ValueError(f"dim: the local model serves {LOCAL_DIMS}, not {self.dim}")
        if self.provider == "openai" and not self.model:
            raise ValueError("model: required for provider 'openai'")
        return self

    @property
    def name(self) -> str:
        """The vector space's name, as the provider reports it (``EmbeddingProvider.name``)."""
        if self.provider == "local":
            return f"wordllama:l2_supercat:{self.dim}"
        return f"openai:{self.model}:{self.dim}"


@dataclass(frozen=True)
class Generation:
    id: int
    spec: EmbeddingSpec
    status: str

    @property
    def table(self) -> str:
        """The generation's vector table (an integer ID: safe to put in SQL)."""
        return f"chunk_vector_{int(self.id)}"


_COLUMNS = "id, provider, model, base_url, dim, status"


def _generation(row: Any) -> Generation:
    spec = EmbeddingSpec(
        provider=row["provider"], dim=row["dim"], model=row["model"], base_url=row["base_url"]
    )
    return Generation(id=row["id"], spec=spec, status=row["status"])


def vector_table_ddl(table: str, dim: int) -> list[str]:
    """The statements that create a generation's vector table (its HNSW index comes later)."""
    return [
        f"""CREATE TABLE {table} (
            document_id text NOT NULL,
            chunk_id integer NOT NULL,
            embedding vector({int(dim)}) NOT NULL,
            PRIMARY KEY (document_id, chunk_id),
            FOREIGN KEY (document_id, chunk_id) REFERENCES chunk (document_id, chunk_id)
                ON DELETE CASCADE
        )""",
    ]


def hnsw_index_ddl(table: str, *, schema: str | None = None, concurrently: bool) -> str:
    """The HNSW index of a generation's vector table (cosine distance, as search uses)."""
    how = "CONCURRENTLY " if concurrently else ""
    target = f"{schema}.{table}" if schema else table
    return (
        f"CREATE INDEX {how}IF NOT EXISTS ix_{table}_hnsw "
        f"ON {target} USING hnsw (embedding vector_cosine_ops)"
    )


# ---------------------------------------------------------------------------- reading


async def live_generation(raw: Any) -> Generation:
    row = await raw.fetchrow(f"SELECT {_COLUMNS} FROM index_generation WHERE status = 'live'")
    if row is None:
        raise NotFoundError("this tenant has no live index generation (run `sluice migrate`)")
    return _generation(row)


async def writable_generations(raw: Any, *, lock: bool = False) -> list[Generation]:
    """The live and building generations; ``lock`` holds them (FOR SHARE) until commit."""
    rows = await raw.fetch(
        f"SELECT {_COLUMNS} FROM index_generation WHERE status = ANY($1::text[]) "
        f"ORDER BY id{' FOR SHARE' if lock else ''}",
        list(WRITABLE),
    )
    return [_generation(r) for r in rows]


async def get_generation(raw: Any, generation_id: int, *, lock: bool = False) -> Generation:
    row = await raw.fetchrow(
        f"SELECT {_COLUMNS} FROM index_generation WHERE id = $1{' FOR UPDATE' if lock else ''}",
        generation_id,
    )
    if row is None:
        raise NotFoundError(f"index generation {generation_id} does not exist")
    return _generation(row)


class GenerationInfo(BaseModel):
    """A generation as ``sluice index generations`` shows it."""

    id: int
    name: str
    status: str
    chunks_total: int | None
    chunks_done: int
    error: str | None
    created_at: str
    live_at: str | None
    retired_at: str | None
    dropped: bool
    vectors: int | None = None
    """Rows in the generation's vector table now (None once dropped)."""


async def list_generations(raw: Any) -> list[GenerationInfo]:
    rows = await raw.fetch(
        """
        SELECT g.*, to_regclass('chunk_vector_' || g.id) IS NULL AS dropped
        FROM index_generation g ORDER BY g.id
        """
    )
    out = []
    for r in rows:
        table = f"chunk_vector_{int(r['id'])}"
        vectors = None if r["dropped"] else await raw.fetchval(f"SELECT count(*) FROM {table}")
        out.append(_info(r, vectors))
    return out


def _info(r: Any, vectors: int | None) -> GenerationInfo:
    return GenerationInfo(
        id=r["id"],
        name=_generation(r).spec.name,
        status=r["status"],
        chunks_total=r["chunks_total"],
        chunks_done=r["chunks_done"],
        error=r["error"],
        created_at=r["created_at"].isoformat(),
        live_at=r["live_at"].isoformat() if r["live_at"] else None,
        retired_at=r["retired_at"].isoformat() if r["retired_at"] else None,
        dropped=r["dropped"],
        vectors=vectors,
    )


# ---------------------------------------------------------------------------- changing


async def _lock_writable(raw: Any) -> list[Generation]:
    """FOR UPDATE on the writable rows: waits for batch writes in flight, holds new ones."""
    rows = await raw.fetch(
        f"SELECT {_COLUMNS} FROM index_generation WHERE status = ANY($1::text[]) "
        "ORDER BY id FOR UPDATE",
        list(WRITABLE),
    )
    return [_generation(r) for r in rows]


async def start_generation(raw: Any, spec: EmbeddingSpec, run_key: str) -> Generation:
    """Create a ``building`` generation and its vector table (idempotent per ``run_key``,
    the swap workflow run that asks: a retry after a lost reply gets the same one)."""
    current = await _lock_writable(raw)
    mine = await raw.fetchrow(
        f"SELECT {_COLUMNS} FROM index_generation WHERE workflow_id = $1", run_key
    )
    if mine is not None:  # a retry after a lost reply
        return _generation(mine)
    for gen in current:
        if gen.status == GenerationStatus.BUILDING:
            raise SwapInProgress(f"generation {gen.id} ({gen.spec.name}) is already building")
        if gen.spec.name == spec.name:
            raise SameModel(f"the live index already uses {spec.name}")
    row = await raw.fetchrow(
        f"""
        INSERT INTO index_generation (provider, model, base_url, dim, status, workflow_id,
                                      chunks_total)
        VALUES ($1, $2, $3, $4, 'building', $5, (SELECT count(*) FROM chunk))
        RETURNING {_COLUMNS}
        """,
        spec.provider,
        spec.model,
        spec.base_url,
        spec.dim,
        run_key,
    )
    gen = _generation(row)
    for statement in vector_table_ddl(gen.table, spec.dim):
        await raw.execute(statement)
    return gen


async def missing_vectors(raw: Any, gen: Generation) -> int:
    return int(
        await raw.fetchval(
            f"SELECT count(*) FROM chunk c WHERE NOT EXISTS "
            f"(SELECT 1 FROM {gen.table} v "
            f"WHERE v.document_id = c.document_id AND v.chunk_id = c.chunk_id)"
        )
    )


@dataclass(frozen=True)
class SwitchOutcome:
    """``missing`` > 0: not switched, embed those first. Else ``retired``: the old live one."""

    missing: int
    retired: int | None


async def switch_to(raw: Any, generation_id: int) -> SwitchOutcome:
    """Make ``generation_id`` live and retire the old live one, atomically.

    Refused (``missing`` > 0) while any chunk lacks a vector in the new generation;
    a repeated call after the switch is a no-op.
    """
    writable = {g.id: g for g in await _lock_writable(raw)}
    new = writable.get(generation_id)
    if new is None:
        done = await get_generation(raw, generation_id)
        raise NotFoundError(f"generation {generation_id} is {done.status}, not building")
    if new.status == GenerationStatus.LIVE:
        return SwitchOutcome(missing=0, retired=None)
    missing = await missing_vectors(raw, new)
    if missing:
        return SwitchOutcome(missing=missing, retired=None)
    old = [g for g in writable.values() if g.status == GenerationStatus.LIVE]
    await raw.execute(
        "UPDATE index_generation SET status = 'retired', retired_at = now() WHERE status = 'live'"
    )
    await raw.execute(
        "UPDATE index_generation SET status = 'live', live_at = now(), "
        "chunks_done = (SELECT count(*) FROM chunk) WHERE id = $1",
        new.id,
    )
    return SwitchOutcome(missing=0, retired=old[0].id if old else None)


async def abandon_generation(raw: Any, generation_id: int, status: str, error: str | None) -> None:
    """A failed or canceled swap: the building generation and its table go; live is untouched."""
    gen = await get_generation(raw, generation_id, lock=True)
    if gen.status != GenerationStatus.BUILDING:
        return
    await raw.execute(
        "UPDATE index_generation SET status = $2, error = $3, retired_at = now() WHERE id = $1",
        generation_id,
        status,
        error,
    )
    await raw.execute(f"DROP TABLE IF EXISTS {gen.table}")


async def drop_vectors(raw: Any, generation_id: int) -> bool:
    """Drop a retired generation's vector table (True if there was one to drop)."""
    gen = await get_generation(raw, generation_id, lock=True)
    if gen.status in WRITABLE:
        raise ConfigurationError(f"generation {gen.id} is {gen.status}; only retired ones go")
    exists = await raw.fetchval("SELECT to_regclass($1) IS NOT NULL", gen.table)
    if exists:
        await raw.execute(f"DROP TABLE {gen.table}")
    return bool(exists)


# ---------------------------------------------------------------------------- re-embedding


@dataclass(frozen=True)
class ChunkText:
    document_id: str
    chunk_id: int
    text: str


async def chunks_without_vector(
    raw: Any, gen: Generation, after: tuple[str, int] | None, limit: int
) -> list[ChunkText]:
    """The next ``limit`` chunks (in key order after ``after``) with no vector in ``gen``."""
    doc, chunk = after if after is not None else ("", -1)
    rows = await raw.fetch(
        f"""
        SELECT c.document_id, c.chunk_id, c.title, c.content
        FROM chunk c
        WHERE (c.document_id, c.chunk_id) > ($1, $2)
          AND NOT EXISTS (SELECT 1 FROM {gen.table} v
                          WHERE v.document_id = c.document_id AND v.chunk_id = c.chunk_id)
        ORDER BY c.document_id, c.chunk_id
        LIMIT $3
        """,
        doc,
        chunk,
        limit,
    )
    return [
        ChunkText(r["document_id"], r["chunk_id"], embedding_text(r["title"], r["content"]))
        for r in rows
    ]


def embedding_text(title: str, content: str) -> str:
    """The text a chunk's vector is computed from (indexing and re-embedding agree)."""
    return f"{title}\n{content}"


async def add_vectors(
    raw: Any, gen: Generation, keys: Sequence[tuple[str, int]], vectors: Any
) -> int:
    """Insert re-embedded vectors; a chunk rewritten or deleted meanwhile is left alone.

    COPY into a temporary table, then insert only keys whose chunk still exists and
    that have no vector yet (a concurrent batch write already gave it a fresh one).
    """
    if not keys:
        return 0
    await raw.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS _new_vectors (LIKE {gen.table}) ON COMMIT DROP"
    )
    await raw.copy_records_to_table(
        "_new_vectors",
        records=[(doc, chunk, vectors[i]) for i, (doc, chunk) in enumerate(keys)],
        columns=("document_id", "chunk_id", "embedding"),
    )
    status = await raw.execute(
        f"""
        INSERT INTO {gen.table} (document_id, chunk_id, embedding)
        SELECT n.document_id, n.chunk_id, n.embedding FROM _new_vectors n
        JOIN chunk c ON c.document_id = n.document_id AND c.chunk_id = n.chunk_id
        ON CONFLICT DO NOTHING
        """
    )
    added = int(status.split()[-1])
    await raw.execute(
        "UPDATE index_generation SET chunks_done = chunks_done + $2 WHERE id = $1", gen.id, added
    )
    return added
