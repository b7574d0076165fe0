"""Sandbox runs (queue ``sandbox``, heavy worker: at most 4 at once per worker).

The activity runs the command (:mod:`sluice.sandbox.runner`), heartbeating every second,
and stores the result in the file store; the workflow gets a reference. A cancel reaches
the activity through its heartbeat: the process group is killed, a ``canceled`` result is
stored, and the cancellation goes on to the workflow.
"""

from __future__ import annotations

import asyncio
import json
import os

import structlog
from temporalio import activity

from sluice import filestore
from sluice.sandbox.models import RunStatus, SandboxRef, SandboxRequest, SandboxResult
from sluice.sandbox.runner import run_command
from sluice.temporal.tenant_context import current_tenant

log = structlog.get_logger(__name__)


@activity.defn(name="run_sandbox")
async def run_sandbox(request: SandboxRequest) -> SandboxRef:
    tenant = current_tenant()

    def beat(elapsed: float, output_bytes: int) -> None:
        activity.heartbeat({"elapsed": round(elapsed, 1), "output_bytes": output_bytes})

    try:
        result = await run_command(request, beat)
    except asyncio.CancelledError:
        canceled = SandboxResult(
            run_id=request.run_id,
            command=request.command,
            status=RunStatus.CANCELED,
            exit_code=None,
            detail="canceled; its process group was killed",
        )
        await asyncio.shield(asyncio.to_thread(store_result, tenant, canceled))
        raise
    path = await asyncio.to_thread(store_result, tenant, result)
    log.info(
        "sandbox run finished",
        run_id=request.run_id,
        status=result.status.value,
        exit_code=result.exit_code,
        seconds=result.seconds,
    )
    return SandboxRef(
        run_id=request.run_id,
        status=result.status,
        exit_code=result.exit_code,
        result_path=str(path),
    )


def store_result(tenant: str, result: SandboxResult) -> str:
    """Write the result JSON atomically (temporary name, then rename)."""
    path = filestore.sandbox_result_path(tenant, result.run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result.model_dump(mode="json")))
    os.replace(tmp, path)
    return str(path)
