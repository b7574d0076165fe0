"""What a sandbox run is asked to do and what it leaves (the result is stored, the
workflow returns a reference: output tails stay out of workflow history)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class RunStatus(StrEnum):
    OK = "ok"
    """Exit code 0."""
    FAILED = "failed"
    """A non-zero exit code (or killed by a signal of its own)."""
    TIMED_OUT = "timed_out"
    MEMORY_EXCEEDED = "memory_exceeded"
    CANCELED = "canceled"
    START_FAILED = "start_failed"
    """The command could not be started (not found, not executable)."""


class SandboxRequest(BaseModel):
    tenant_id: str
    run_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    command: list[str] = Field(min_length=1)
    timeout_seconds: float = Field(default=60.0, gt=0, le=6 * 3600)
    memory_mb: int = Field(default=512, ge=16, le=64 * 1024)
    output_cap_bytes: int = Field(default=64 * 1024, ge=1, le=16 * 1024 * 1024)


class ProducedFile(BaseModel):
    path: str
    size: int


class SandboxResult(BaseModel):
    run_id: str
    command: list[str]
    status: RunStatus
    exit_code: int | None
    detail: str = ""
    output_tail: str = ""
    output_bytes: int = Field(default=0, description="Everything the command wrote.")
    truncated: bool = Field(default=False, description="Only the last output_cap bytes kept.")
    files: list[ProducedFile] = Field(default_factory=list)
    seconds: float = 0.0


class SandboxRef(BaseModel):
    """The workflow's result: the run's outcome in brief and where its result is stored."""

    run_id: str
    status: RunStatus
    exit_code: int | None
    result_path: str
