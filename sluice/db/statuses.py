"""Status values stored in the product's tables, importable without SQLAlchemy.

:mod:`sluice.db.models` re-exports them; light read paths (the CLI) import them from here.
"""

from __future__ import annotations

from enum import StrEnum


class CcPairStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    INVALID = "invalid"
    DELETING = "deleting"


class AttemptStatus(StrEnum):
    """Statuses that tell faults apart (DESIGN §4.2): canceled and interrupted are resumable."""

    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    CANCELED = "canceled"
    INTERRUPTED = "interrupted"

    @property
    def is_terminal(self) -> bool:
        return self not in (AttemptStatus.NOT_STARTED, AttemptStatus.IN_PROGRESS)
