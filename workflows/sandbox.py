"""One sandbox run: one activity on the ``sandbox`` queue, not retried (a command is not
idempotent). Canceling the workflow cancels the activity and waits until it has killed
the command's process group, so a canceled run is really over when the cancel returns."""

from __future__ import annotations

from temporalio import workflow
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from sluice.sandbox.models import SandboxRef, SandboxRequest
    from sluice.temporal import policies, workflow_ids


@workflow.defn(name=workflow_ids.SANDBOX)
class SandboxWorkflow:
    @workflow.run
    async def run(self, request: SandboxRequest) -> SandboxRef:
        shown = " ".join(request.command)[:200]
        workflow.set_current_details(f"running: {shown}")
        ref: SandboxRef = await workflow.execute_activity(
            "run_sandbox",
            request,
            result_type=SandboxRef,
            **policies.sandbox_policy(request.timeout_seconds).options(),
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"sandbox: {shown[:80]}",
        )
        workflow.set_current_details(f"{shown}: {ref.status.value} (exit {ref.exit_code})")
        return ref
