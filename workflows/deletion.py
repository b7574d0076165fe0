"""Connector deletion: the seed's ``check_for_connector_deletion`` as one workflow per pair.

Started by the connector workflow once it has stopped cleanly (never by terminating
it), so nothing indexes the pair while it is deleted. Deletes the documents only this
pair holds (shared documents keep their rows and lose the link), their chunks, the
staged batches, attempts and errors, then the pair itself. Every step is idempotent:
a retry, a second request, or a worker killed midway all end in the same place.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.deletion import (
        delete_connector_documents,
        delete_connector_rows,
        mark_cc_pair_deleting,
    )
    from sluice.indexing.models import DeletionInput, DeletionResult
    from sluice.temporal import policies, workflow_ids


@workflow.defn(name=workflow_ids.DELETION)
class ConnectorDeletionWorkflow:
    @workflow.run
    async def run(self, input: DeletionInput) -> DeletionResult:
        cc = input.cc_pair_id
        workflow.set_current_details(f"deleting cc-pair {cc}: documents")
        await workflow.execute_activity(
            mark_cc_pair_deleting,
            cc,
            **policies.DELETE_ROWS.options(),
            summary=f"mark cc-pair {cc} deleting",
        )
        result = await workflow.execute_activity(
            delete_connector_documents,
            input,
            **policies.DELETE_DOCUMENTS.options(),
            summary=f"delete documents of cc-pair {cc} ({input.batch_size} per batch)",
        )
        workflow.set_current_details(f"deleting cc-pair {cc}: attempts and the pair")
        result.pair_deleted = await workflow.execute_activity(
            delete_connector_rows,
            cc,
            **policies.DELETE_ROWS.options(),
            summary=f"delete cc-pair {cc} and its attempts",
        )
        workflow.set_current_details(
            f"deleted cc-pair {cc}: {result.documents_deleted} documents, "
            f"{result.links_removed - result.documents_deleted} shared ones unlinked"
        )
        return result
