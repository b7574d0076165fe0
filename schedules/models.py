"""What a schedule's sweep workflow and its activity exchange."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class SweepInput(BaseModel):
    """The schedule's action argument: which tenant, which job."""

    tenant_id: str
    job: str


class SweepRequest(BaseModel):
    """``as_of`` is the workflow's clock, so retention cut-offs follow workflow time
    (and the time-skipping test server can pass a month in a second)."""

    tenant_id: str
    as_of: datetime


class SweepResult(BaseModel):
    found: int = Field(default=0, description="Things that needed work.")
    acted: int = Field(default=0, description="Things this run fixed, started or deleted.")
    detail: str = ""
