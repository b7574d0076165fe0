"""One workflow per bulk operation: index-now, pause, resume or retry-failed over many
connectors at once, with its progress in the Web UI's current details.

Its ID names the tenant, operation and selector, and it is started with
``USE_EXISTING``: asking twice while it runs attaches to the same run, and every
connector gets one signal per run (signals to the long-lived connector workflows,
which already make "index now" idempotent while an attempt runs).
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from activities.bulk import select_connectors
    from sluice.bulk import BulkRequest, BulkResult
    from sluice.temporal import policies, workflow_ids
    from sluice.temporal.workflow_ids import connector_workflow_id


SIGNALS_AT_ONCE = 50
"""Signals in flight together (each resolves in its own workflow task)."""


@workflow.defn(name=workflow_ids.BULK)
class BulkConnectorsWorkflow:
    def __init__(self) -> None:
        self.result = BulkResult()

    @workflow.query
    def progress(self) -> BulkResult:
        return self.result

    @workflow.run
    async def run(self, request: BulkRequest) -> BulkResult:
        op = request.operation.value
        self.result.selected = await workflow.execute_activity(
            select_connectors,
            request.selector,
            **policies.ATTEMPT_BOOKKEEPING.options(),
            summary=f"select connectors: {request.selector.describe()}",
        )
        total = len(self.result.selected)
        for start in range(0, total, SIGNALS_AT_ONCE):
            chunk = self.result.selected[start : start + SIGNALS_AT_ONCE]
            await asyncio.gather(*(self._signal(request.tenant_id, cc, op) for cc in chunk))
            done = len(self.result.signalled) + len(self.result.not_running)
            workflow.set_current_details(f"{op}: {done}/{total} connectors")
        return self.result

    async def _signal(self, tenant_id: str, cc: int, op: str) -> None:
        handle = workflow.get_external_workflow_handle(connector_workflow_id(tenant_id, cc))
        try:
            await handle.signal(op)
        except FailureError:
            self.result.not_running.append(cc)  # no running workflow to signal
        else:
            self.result.signalled.append(cc)
