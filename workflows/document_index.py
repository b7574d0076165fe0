"""The seed's document-index chain as one workflow per document: parse → the requested
index types in parallel → notify, round after round until nothing is left to do.

``document-index/{tenant}/{document}`` is the only workflow that builds or deletes the
document's indexes. A request (create, update, delete) first bumps the desired
``version`` of the state rows in Postgres, then signal-with-starts this workflow with
``recheck``: a running one finishes its round and claims the new work, so a version bump
during a build never starts a second build beside the first, and the newest version
wins (a build only marks its row active at the version it built).

Failures: a parse failure marks every requested index failed (nothing stays
``creating``); a step whose retries are spent (3 more tries, 60 s apart, as the seed)
is recorded as failed on its own type, and the others carry on.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.document_index import DocumentIndexActivities
    from sluice.documents.models import (
        BuildRequest,
        BuildResult,
        DeleteRequest,
        DocumentInput,
        DocumentRequest,
        FailureRecord,
        IndexType,
        RoundOutcome,
        WorkItem,
        WorkPlan,
    )
    from sluice.temporal import policies, search, workflow_ids

A = DocumentIndexActivities

BUILD_STEPS = {
    IndexType.VECTOR: A.build_vector_index,
    IndexType.FULLTEXT: A.build_fulltext_index,
    IndexType.GRAPH: A.build_graph_index,
    IndexType.SUMMARY: A.build_summary_index,
}


def _error(err: BaseException) -> str:
    """``Type: message`` of what failed (the activity's error, not the wrapper)."""
    cause = err.cause if isinstance(err, ActivityError) and err.cause is not None else err
    kind = getattr(cause, "type", None) or type(cause).__name__
    message = getattr(cause, "message", None) or str(cause)
    return f"{kind}: {message}"


@workflow.defn(name=workflow_ids.DOCUMENT_INDEX)
class DocumentIndexWorkflow:
    def __init__(self) -> None:
        self._recheck = False
        self._state = "starting"
        self._rounds = 0

    @workflow.signal
    def recheck(self) -> None:
        """New work was requested in Postgres: claim it after the current round."""
        self._recheck = True

    @workflow.query
    def state(self) -> str:
        return self._state

    @workflow.run
    async def run(self, input: DocumentInput) -> int:
        workflow.upsert_search_attributes(
            [
                search.TENANT.value_set(input.tenant_id),
                search.COLLECTION.value_set(input.collection),
                search.DOCUMENT.value_set(input.document_id),
            ]
        )
        while True:
            self._recheck = False
            plan = await self._claim(input)
            if plan.empty:
                if self._recheck:
                    continue
                break
            outcome = await self._round(input, plan)
            self._rounds += 1
            await workflow.execute_activity_method(
                A.notify_document_indexed,
                outcome,
                **policies.DOCUMENT_BOOKKEEPING.options(),
                summary="publish the round's outcome",
            )
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(input)
        self._set_state("idle", [], f"done after {self._rounds} round(s)")
        return self._rounds

    def _set_state(self, state: str, types: list[IndexType], details: str) -> None:
        self._state = state
        workflow.upsert_search_attributes(
            [search.STATE.value_set(state), search.INDEX_TYPES.value_set([t.value for t in types])]
        )
        workflow.set_current_details(details)

    async def _claim(self, input: DocumentInput) -> WorkPlan:
        return await workflow.execute_activity_method(
            A.claim_document_work,
            DocumentRequest(tenant_id=input.tenant_id, document_id=input.document_id),
            **policies.DOCUMENT_BOOKKEEPING.options(),
            summary="claim requested index work",
        )

    async def _round(self, input: DocumentInput, plan: WorkPlan) -> RoundOutcome:
        outcome = RoundOutcome(
            tenant_id=input.tenant_id, document_id=input.document_id, collection=input.collection
        )
        if plan.deletes:
            await self._delete(input, plan.deletes)
            outcome.deleted = [i.index_type.value for i in plan.deletes]
        if plan.builds:
            await self._build_all(input, plan.builds, outcome)
        return outcome

    async def _delete(self, input: DocumentInput, items: list[WorkItem]) -> None:
        self._set_state("deleting", [i.index_type for i in items], "deleting indexes")
        await workflow.execute_activity_method(
            A.delete_document_indexes,
            DeleteRequest(tenant_id=input.tenant_id, document_id=input.document_id, items=items),
            **policies.DOCUMENT_DELETE.options(),
            summary="delete " + ", ".join(f"{i.index_type} v{i.version}" for i in items),
        )

    async def _build_all(
        self, input: DocumentInput, items: list[WorkItem], outcome: RoundOutcome
    ) -> None:
        types = [i.index_type for i in items]
        self._set_state("parsing", types, f"parsing for {', '.join(types)}")
        try:
            await workflow.execute_activity_method(
                A.parse_document,
                DocumentRequest(tenant_id=input.tenant_id, document_id=input.document_id),
                **policies.DOCUMENT_PARSE.options(),
                summary="parse the document",
            )
        except ActivityError as err:
            await self._fail(input, items, f"parse failed: {_error(err)}", outcome)
            return
        self._set_state("indexing", types, f"building {', '.join(types)} in parallel")
        results = await asyncio.gather(
            *(self._build(input, item) for item in items), return_exceptions=True
        )
        for item, result in zip(items, results, strict=True):
            if isinstance(result, BuildResult):
                outcome.built.append(result)
            elif isinstance(result, ActivityError):
                await self._fail(input, [item], _error(result), outcome)
            else:
                raise result  # a bug in workflow code: fail the task, never the document

    async def _build(self, input: DocumentInput, item: WorkItem) -> BuildResult:
        policy = policies.DOCUMENT_INDEX_STEP
        queue = policies.GRAPH_QUEUE if item.index_type is IndexType.GRAPH else policy.task_queue
        return await workflow.execute_activity_method(
            BUILD_STEPS[item.index_type],
            BuildRequest(tenant_id=input.tenant_id, document_id=input.document_id, item=item),
            **policy.options(task_queue=queue),
            summary=f"{item.index_type} index v{item.version}",
        )

    async def _fail(
        self, input: DocumentInput, items: list[WorkItem], error: str, outcome: RoundOutcome
    ) -> None:
        """The seed's failure callback: the error goes on each item's row (same version)."""
        await workflow.execute_activity_method(
            A.record_index_failure,
            FailureRecord(
                tenant_id=input.tenant_id, document_id=input.document_id, items=items, error=error
            ),
            **policies.DOCUMENT_BOOKKEEPING.options(),
            summary="record failure of " + ", ".join(i.index_type for i in items),
        )
        for item in items:
            outcome.failed[item.index_type.value] = error


__all__ = ["DocumentIndexWorkflow"]
