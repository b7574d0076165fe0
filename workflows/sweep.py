"""The workflow every periodic job's schedule starts: one sweep activity, then done.

A sweep is the safety net behind work that normally starts at once (see
``schedules/table.py``), so it is deliberately small: one activity on the job's queue,
which finds what was missed and fixes it in batches. A sweep that finds nothing costs
one short activity (about five history events). The run's result (found / acted) shows
in the Web UI and in ``sluice schedules list``.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schedules.models import SweepInput, SweepRequest, SweepResult
    from schedules.table import JOBS_BY_NAME
    from sluice.temporal import policies, workflow_ids


@workflow.defn(name=workflow_ids.SWEEP)
class SweepWorkflow:
    @workflow.run
    async def run(self, input: SweepInput) -> SweepResult:
        job = JOBS_BY_NAME[input.job]
        workflow.set_current_details(f"{job.name}: {job.description}")
        result = await workflow.execute_activity(
            job.activity,
            SweepRequest(tenant_id=input.tenant_id, as_of=workflow.now()),
            result_type=SweepResult,
            **policies.SWEEP.options(task_queue=job.task_queue),
            summary=f"{job.name} (seed: {job.seed_task})",
        )
        workflow.set_current_details(
            f"{job.name}: found {result.found}, acted on {result.acted}. {result.detail}"
        )
        return result
