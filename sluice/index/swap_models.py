"""What the model-swap workflow and its activities exchange (small: keys and counts only)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from sluice.index.generations import EmbeddingSpec


class ChunkKey(BaseModel):
    """A position in chunk key order: the re-embedding scan's checkpoint."""

    document_id: str
    chunk_id: int


class ModelSwapInput(BaseModel):
    tenant_id: str
    spec: EmbeddingSpec
    page_size: int = Field(default=1000, ge=1, le=10_000)
    retire_after_seconds: int = Field(
        default=60,
        ge=0,
        description="How long the old generation's vectors stay after the switch, so a "
        "search that resolved it just before can finish.",
    )
    # Carried across continue-as-new:
    generation_id: int | None = None
    previous_live_id: int | None = None
    after: ChunkKey | None = None
    chunks_embedded: int = 0
    chunks_total: int | None = None


class StartedGeneration(BaseModel):
    generation_id: int
    previous_live_id: int | None
    chunks_total: int


class EmbedPagesRequest(BaseModel):
    generation_id: int
    after: ChunkKey | None
    page_size: int
    max_seconds: float = Field(default=30.0, gt=0)


class EmbedPagesResult(BaseModel):
    after: ChunkKey | None
    embedded: int
    finished: bool


class SwitchResult(BaseModel):
    missing: int
    retired: int | None


class AbandonRequest(BaseModel):
    generation_id: int
    status: str
    error: str | None = None


class SwapProgress(BaseModel):
    """What ``sluice index generations`` and the workflow's ``progress`` query report."""

    tenant_id: str
    model: str
    generation_id: int | None
    phase: str
    chunks_embedded: int
    chunks_total: int | None


class SwapResult(BaseModel):
    generation_id: int
    model: str
    retired_id: int | None
    chunks_embedded: int
