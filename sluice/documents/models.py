"""What the document-index workflow, its activities and the scheduler exchange.

Only IDs, types and versions travel through Temporal (claim check): the document's
bytes and parsed text stay in ``collection_document``.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from sluice.errors import ConfigurationError


class IndexType(StrEnum):
    VECTOR = "vector"
    FULLTEXT = "fulltext"
    GRAPH = "graph"
    SUMMARY = "summary"


class IndexStatus(StrEnum):
    PENDING = "pending"
    CREATING = "creating"
    ACTIVE = "active"
    DELETING = "deleting"
    FAILED = "failed"


ALL_TYPES: tuple[IndexType, ...] = tuple(IndexType)


def parse_index_types(values: list[str] | tuple[str, ...] | None) -> list[IndexType]:
    """Validated, deduplicated, in canonical order; ``None`` or empty means every type."""
    if not values:
        return list(ALL_TYPES)
    known = {t.value for t in IndexType}
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ConfigurationError(
            f"index_types: unknown {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(sorted(known))})"
        )
    return [t for t in ALL_TYPES if t.value in values]


class DocumentInput(BaseModel):
    """The per-document workflow's input: everything else is read from Postgres."""

    tenant_id: str
    document_id: str
    collection: str


class DocumentRequest(BaseModel):
    tenant_id: str
    document_id: str


class WorkItem(BaseModel):
    index_type: IndexType
    version: int


class WorkPlan(BaseModel):
    """One round: builds to run (now ``creating``) and deletions to carry out."""

    builds: list[WorkItem] = Field(default_factory=list)
    deletes: list[WorkItem] = Field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.builds and not self.deletes


class BuildRequest(BaseModel):
    tenant_id: str
    document_id: str
    item: WorkItem


class BuildResult(BaseModel):
    index_type: IndexType
    version: int
    activated: bool = Field(description="False: a newer version or a delete came meanwhile.")
    detail: str = ""
    seconds: float = 0.0


class FailureRecord(BaseModel):
    tenant_id: str
    document_id: str
    items: list[WorkItem]
    error: str


class DeleteRequest(BaseModel):
    tenant_id: str
    document_id: str
    items: list[WorkItem]


class RoundOutcome(BaseModel):
    """What one round did, published on the agent message queue by ``notify``."""

    tenant_id: str
    document_id: str
    collection: str
    built: list[BuildResult] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict)
    deleted: list[str] = Field(default_factory=list)


class IndexState(BaseModel):
    """One state row, as status commands show it."""

    document_id: str
    index_type: str
    status: str
    version: int
    observed_version: int
    error: str | None
    updated_at: str
