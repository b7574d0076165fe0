"""The seed's ``TaskScheduler`` abstraction, kept method for method.

The seed's methods were synchronous (Celery's ``delay``); these are coroutines, since
every backend worth having here (Temporal's client, the database) is asynchronous.
``TaskResult`` keeps the seed's four fields (``task_id``, ``success``, ``error``,
``data``) for compatibility and adds a real ``status``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class TaskStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    NOT_FOUND = "not_found"


class TaskResult(BaseModel):
    task_id: str
    success: bool
    error: str | None = None
    data: dict[str, Any] | None = None
    status: TaskStatus = Field(description="What the seed's TaskResult could not say.")

    @property
    def done(self) -> bool:
        return self.status is not TaskStatus.RUNNING


class TaskScheduler(ABC):
    """Schedules document index work; a task ID is a handle, the state rows are the truth."""

    @abstractmethod
    async def schedule_create_index(
        self, document_id: str, index_types: list[str], context: dict[str, Any] | None = None
    ) -> str:
        """Build ``index_types`` for the document; returns a task ID."""

    @abstractmethod
    async def schedule_update_index(
        self, document_id: str, index_types: list[str], context: dict[str, Any] | None = None
    ) -> str:
        """Rebuild ``index_types`` (a new version: the newest request wins)."""

    @abstractmethod
    async def schedule_delete_index(self, document_id: str, index_types: list[str]) -> str:
        """Remove ``index_types`` of the document and every trace of them."""

    @abstractmethod
    async def get_task_status(self, task_id: str) -> TaskResult | None:
        """The task's status, or ``None`` for a task ID nobody issued."""
