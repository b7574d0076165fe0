"""A connector workflow changed *without* ``workflow.patched``: replay must reject it.

Its own module, importing only workflow code, because the workflow sandbox
re-imports the module that defines a workflow.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sluice.indexing.models import ConnectorWorkflowInput
    from workflows.connector import ConnectorWorkflow


@workflow.defn(name="ConnectorWorkflow")
class UnguardedChange(ConnectorWorkflow):
    """Today's workflow plus one new timer before anything else, unguarded."""

    @workflow.run
    async def run(self, input: ConnectorWorkflowInput) -> None:
        await workflow.sleep(1)
        await super().run(input)
