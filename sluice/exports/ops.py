"""Client side of exports: start one, watch its heartbeated position, copy the result."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from sluice.exports.models import ExportPosition, ExportRequest, ExportResult
from sluice.queues import TaskQueue
from sluice.temporal import workflow_ids
from sluice.temporal.tenant_context import tenant_scope


def new_export_id() -> str:
    return uuid.uuid4().hex[:16]


async def start(client: Client, request: ExportRequest) -> WorkflowHandle[Any, ExportResult]:
    with tenant_scope(request.tenant_id):
        return await client.start_workflow(
            workflow_ids.CSV_EXPORT,
            request,
            id=workflow_ids.csv_export_workflow_id(request.tenant_id, request.export_id),
            task_queue=TaskQueue.PRIMARY.value,
            result_type=ExportResult,
            static_summary=f"CSV export of {request.kind.value}",
        )


async def position(
    client: Client, handle: WorkflowHandle[Any, ExportResult], tenant_id: str
) -> ExportPosition | None:
    """The export's last heartbeated position (None before the first page)."""
    with tenant_scope(tenant_id):
        described = await handle.describe()
    for pending in described.raw_description.pending_activities:
        if pending.heartbeat_details.payloads:
            values = await client.data_converter.decode(
                pending.heartbeat_details.payloads, [ExportPosition]
            )
            found = values[0]
            return found if isinstance(found, ExportPosition) else None
    return None


async def copy_out(result: ExportResult, out: Path) -> None:
    """Copy the stored export to ``out`` (the store keeps its copy)."""
    await asyncio.to_thread(shutil.copyfile, result.path, out)
