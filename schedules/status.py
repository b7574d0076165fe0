"""What ``sluice schedules list`` shows: each job, its interval, state, last result, next run."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    WorkflowExecutionStatus,
)
from temporalio.service import RPCError, RPCStatusCode

from schedules.models import SweepResult
from schedules.sync import interval_for, schedule_id, tenant_schedule_ids
from schedules.table import JOBS
from sluice.config import Settings


class ScheduleRow(BaseModel):
    job: str
    seed_task: str
    interval_seconds: float
    state: str  # active | paused | not synced | declared (arrives with ...)
    runs: int
    last_run_at: datetime | None
    last_result: str | None
    next_run_at: datetime | None


async def schedule_rows(client: Client, tenant_id: str, settings: Settings) -> list[ScheduleRow]:
    existing = set(await tenant_schedule_ids(client, tenant_id))
    rows = []
    for job in JOBS:
        sid = schedule_id(tenant_id, job.name)
        row = ScheduleRow(
            job=job.name,
            seed_task=job.seed_task,
            interval_seconds=interval_for(job, settings).total_seconds(),
            state="not synced" if job.enabled else f"declared (arrives with {job.arrives_with})",
            runs=0,
            last_run_at=None,
            last_result=None,
            next_run_at=None,
        )
        if sid in existing:
            described = await client.get_schedule_handle(sid).describe()
            info = described.info
            row.state = "paused" if described.schedule.state.paused else "active"
            row.runs = info.num_actions
            row.next_run_at = info.next_action_times[0] if info.next_action_times else None
            if info.recent_actions:
                last = info.recent_actions[-1]
                row.last_run_at = last.started_at
                row.last_result = await _result_of(client, last.action)
        rows.append(row)
    return rows


async def _result_of(client: Client, action: object) -> str | None:
    """``found N, acted M`` for a finished sweep, else its status (running, failed...)."""
    if not isinstance(action, ScheduleActionExecutionStartWorkflow):
        return None
    handle = client.get_workflow_handle(
        action.workflow_id, run_id=action.first_execution_run_id, result_type=SweepResult
    )
    try:
        described = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return "gone (history retention)"
        raise
    if described.status != WorkflowExecutionStatus.COMPLETED:
        return described.status.name.lower() if described.status else None
    result = await handle.result()
    return f"found {result.found}, acted {result.acted}"
