"""Pruning as a workflow of its own, started by the connector workflow between attempts.

A child of the connector workflow (which waits for it, so pruning and indexing of one
pair never overlap), with its own ID so each run shows in the Web UI with its counts:
listed, held, vanished, unlinked, deleted, or why it refused.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.pruning import prune_connector
    from sluice.indexing.models import PruneInput, PruneResult
    from sluice.temporal import policies, workflow_ids


@workflow.defn(name=workflow_ids.PRUNING)
class ConnectorPruningWorkflow:
    @workflow.run
    async def run(self, input: PruneInput) -> PruneResult:
        cc = input.cc_pair_id
        workflow.set_current_details(f"pruning cc-pair {cc}: listing the source")
        result = await workflow.execute_activity(
            prune_connector,
            input,
            **policies.PRUNE.options(),
            summary=f"prune cc-pair {cc}",
        )
        workflow.set_current_details(
            f"cc-pair {cc}: source lists {result.listed}, held {result.held}, "
            f"{result.vanished} vanished, {result.deleted} deleted"
            + (f"; refused: {result.refused}" if result.refused else "")
        )
        return result
