"""Which connectors a bulk operation applies to (``--all``, ``--source S``, ``--status X``).

The original platform's users had to click through connectors one by one; here one
selector picks them, read from the product's tables.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from sluice.errors import ConfigurationError


class BulkOperation(StrEnum):
    """The connector workflow signal each selected connector gets."""

    INDEX_NOW = "index_now"
    PAUSE = "pause"
    RESUME = "resume"
    RETRY_FAILED = "retry_failed"


SELECTABLE_STATUSES = ("active", "paused", "invalid", "failed")
"""``failed``: the last attempt failed, or the pair is flagged or invalid."""


class BulkSelector(BaseModel):
    all: bool = False
    source: str | None = None
    status: str | None = None

    def check(self) -> None:
        if not (self.all or self.source or self.status):
            raise ConfigurationError("select connectors with --all, --source S or --status X")
        if self.status is not None and self.status not in SELECTABLE_STATUSES:
            raise ConfigurationError(
                f"--status {self.status!r}: expected one of {', '.join(SELECTABLE_STATUSES)}"
            )

    def describe(self) -> str:
        parts = [f"source={self.source}"] if self.source else []
        parts += [f"status={self.status}"] if self.status else []
        return ",".join(parts) or "all"


class BulkRequest(BaseModel):
    tenant_id: str
    operation: BulkOperation
    selector: BulkSelector


class BulkResult(BaseModel):
    selected: list[int] = Field(default_factory=list)
    signalled: list[int] = Field(default_factory=list)
    not_running: list[int] = Field(
        default_factory=list, description="Connectors with no running workflow (skipped)."
    )


async def select_cc_pairs(raw: Any, selector: BulkSelector) -> list[int]:
    """IDs of the pairs the selector picks (never those being deleted), in ID order."""
    rows = await raw.fetch(
        """
        SELECT p.id FROM connector_credential_pair p
        JOIN connector c ON c.id = p.connector_id
        LEFT JOIN LATERAL (SELECT status FROM index_attempt a WHERE a.cc_pair_id = p.id
                           ORDER BY a.id DESC LIMIT 1) last ON true
        WHERE p.status <> 'deleting'
          AND ($1::text IS NULL OR c.source = $1)
          AND ($2::text IS NULL
               OR ($2 = 'failed' AND (last.status = 'failed' OR p.flag_reason IS NOT NULL
                                      OR p.status = 'invalid'))
               OR ($2 <> 'failed' AND p.status = $2))
        ORDER BY p.id
        """,
        selector.source,
        selector.status,
    )
    return [int(r["id"]) for r in rows]
