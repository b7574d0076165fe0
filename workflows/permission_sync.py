"""Permission sync as a workflow of its own, started by the connector workflow between
attempts (so it never overlaps that pair's indexing or pruning).

1. the source's groups replace the stored ones (``connector_external_group_sync``);
2. every document's ACL is listed and the changed ones staged (``connector_doc_permissions_sync``);
3. staged ACLs are written in batches (``doc_permissions_upsert``), each a transaction;
4. the metadata sync copies the new ACLs to the chunks (``vespa_metadata_sync``), so search
   sees them when this workflow ends; nothing is re-chunked or re-embedded.

Only counts travel through history (the changed ACLs wait in a table). A sync with very
many batches continues-as-new part-way, carrying its counts, when the server suggests it.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.permissions import (
        collect_doc_permissions,
        sync_external_groups,
        upsert_doc_permissions,
    )
    from schedules.models import SweepRequest, SweepResult
    from sluice.indexing.models import PermissionSyncInput, PermissionSyncResult
    from sluice.temporal import policies, workflow_ids

METADATA_SYNC_ACTIVITY = "sync_stale_documents"
"""The ``metadata-sync`` job's activity (schedules/table.py), run here at once."""


@workflow.defn(name=workflow_ids.PERMISSION_SYNC)
class ConnectorPermissionSyncWorkflow:
    @workflow.run
    async def run(self, input: PermissionSyncInput) -> PermissionSyncResult:
        cc = input.cc_pair_id
        started = workflow.now()
        result = input.carried or await self._collect(input)
        while True:
            self._show(cc, result, "writing changed ACLs")
            batch = await workflow.execute_activity(
                upsert_doc_permissions,
                input,
                **policies.PERMISSION_UPSERT.options(),
                summary=f"write a batch of ACLs for cc-pair {cc}",
            )
            if batch.taken == 0:
                break
            result.batches += 1
            result.written += batch.written
            if workflow.info().is_continue_as_new_suggested():
                result.seconds += (workflow.now() - started).total_seconds()
                workflow.continue_as_new(input.model_copy(update={"carried": result}))
        self._show(cc, result, "syncing chunks")
        synced = await workflow.execute_activity(
            METADATA_SYNC_ACTIVITY,
            SweepRequest(tenant_id=input.tenant_id, as_of=workflow.now()),
            result_type=SweepResult,
            **policies.METADATA_SYNC_NOW.options(),
            summary="copy the new ACLs to the chunks",
        )
        result.chunks_synced_documents = synced.acted
        result.seconds += (workflow.now() - started).total_seconds()
        self._show(cc, result, "done")
        return result

    async def _collect(self, input: PermissionSyncInput) -> PermissionSyncResult:
        """Groups first (search resolves members through them), then the ACLs."""
        cc = input.cc_pair_id
        workflow.set_current_details(f"permission sync of cc-pair {cc}: reading groups")
        groups = await workflow.execute_activity(
            sync_external_groups,
            input,
            **policies.GROUP_SYNC.options(),
            summary=f"sync the groups of cc-pair {cc}",
        )
        workflow.set_current_details(f"permission sync of cc-pair {cc}: listing ACLs")
        collected = await workflow.execute_activity(
            collect_doc_permissions,
            input,
            **policies.PERMISSION_COLLECT.options(),
            summary=f"list the ACLs of cc-pair {cc}",
        )
        return PermissionSyncResult(
            listed=collected.listed, held=collected.held, changed=collected.changed, groups=groups
        )

    @staticmethod
    def _show(cc: int, r: PermissionSyncResult, stage: str) -> None:
        workflow.set_current_details(
            f"permission sync of cc-pair {cc}: {stage}; source lists {r.listed}, held {r.held}, "
            f"{r.changed} changed, {r.written} written in {r.batches} batches; "
            f"{r.groups.groups} groups, {r.groups.memberships} memberships"
        )
