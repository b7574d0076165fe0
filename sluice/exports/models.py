"""What an export is asked for and where it is (the heartbeat carries the position)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class ExportKind(StrEnum):
    ATTEMPTS = "attempts"
    DOCUMENTS = "documents"
    ERRORS = "errors"


class ExportRequest(BaseModel):
    tenant_id: str
    export_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    kind: ExportKind
    cc_pair_id: int | None = None
    page_size: int = Field(default=5000, ge=1, le=100_000)
    pause_ms: int = Field(
        default=0, ge=0, le=60_000, description="Sleep between pages: spares a busy database."
    )
    heartbeat_seconds: float = Field(default=30.0, gt=0, le=600)


class ExportPosition(BaseModel):
    """After ``rows`` rows (the last one's key ``after``), the file is ``offset`` bytes
    long. Heartbeated after each page; a retry truncates the file to ``offset``."""

    after: str | int | None = None
    offset: int = 0
    rows: int = 0
    total: int = 0


class ExportResult(BaseModel):
    export_id: str
    kind: ExportKind
    path: str
    rows: int
    bytes: int
    seconds: float
    resumed: bool = False
