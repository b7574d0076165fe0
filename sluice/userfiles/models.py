"""What the user-file workflows, activities and CLI exchange (small: never the bytes)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel


class FileStatus(StrEnum):
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class UserFileInfo(BaseModel):
    id: int
    owner: str
    project: str | None
    name: str
    size_bytes: int
    sha256: str | None
    status: FileStatus
    error: str | None
    chunk_count: int
    created_at: datetime
    processed_at: datetime | None


class UserFileRequest(BaseModel):
    """Process, move or delete one file (``project`` only for a move)."""

    tenant_id: str
    file_id: int
    project: str | None = None


class UserFileOutcome(BaseModel):
    file_id: int
    status: str
    detail: str = ""


def document_id(file_id: int) -> str:
    """The indexed form of a user file is the document ``user_file:<id>``."""
    return f"user_file:{file_id}"


def acl_for(owner: str, project: str | None) -> list[str]:
    """Who may read a file: its owner, and the members of its project if it has one."""
    return [f"user:{owner}", *([f"project:{project}"] if project else [])]
