"""Seed 002's four beat reconcilers as sweep activities (see ``schedules/table.py``).

* ``reconcile_document_indexes`` / ``reconcile_document_summaries``: a document with a
  state row still to do (pending, creating, deleting) whose index workflow is not
  running gets it started. One visibility query lists the running ones; a start is a
  signal-with-start on the document's workflow ID, so one the list missed is signalled,
  never doubled. Failed rows wait for a person (``sluice index update``), as the seed's
  failure callback intended; retrying them hourly would hide a poison document.
* ``collect_deleted_collections``: collection GC (``sluice/documents/gc.py``).
* ``run_pending_evaluations``: run each pending evaluation and store its scores.
"""

from __future__ import annotations

import structlog
from temporalio import activity
from temporalio.client import Client

from schedules.models import SweepRequest, SweepResult
from sluice.db.session import tenant_connection
from sluice.documents import evaluations, gc
from sluice.documents.models import IndexType
from sluice.scheduler.temporal import start_document_workflow
from sluice.temporal import search
from sluice.temporal.listing import running_values
from sluice.temporal.workflow_ids import DOCUMENT_INDEX

log = structlog.get_logger(__name__)

INDEX_TYPES = [IndexType.VECTOR.value, IndexType.FULLTEXT.value, IndexType.GRAPH.value]
SUMMARY_TYPES = [IndexType.SUMMARY.value]


class DocumentSweepActivities:
    def __init__(self, client: Client) -> None:
        self.client = client

    @activity.defn(name="reconcile_document_indexes")
    async def reconcile_document_indexes(self, request: SweepRequest) -> SweepResult:
        return await self._reconcile(request.tenant_id, INDEX_TYPES)

    @activity.defn(name="reconcile_document_summaries")
    async def reconcile_document_summaries(self, request: SweepRequest) -> SweepResult:
        return await self._reconcile(request.tenant_id, SUMMARY_TYPES)

    async def _reconcile(self, tenant: str, types: list[str]) -> SweepResult:
        async with tenant_connection(tenant) as (_, raw):
            rows = await raw.fetch(
                """
                SELECT DISTINCT i.document_id, d.collection
                FROM document_index i
                JOIN collection_document d ON d.id = i.document_id
                JOIN collection c ON c.name = d.collection AND c.status = 'active'
                WHERE i.status IN ('pending', 'creating', 'deleting')
                  AND i.index_type = ANY($1::text[])
                ORDER BY 1
                """,
                types,
            )
        if not rows:
            return SweepResult()
        running = await running_values(self.client, tenant, DOCUMENT_INDEX, search.DOCUMENT)
        missing = [r for r in rows if r["document_id"] not in running]
        for r in missing:
            await start_document_workflow(self.client, tenant, r["document_id"], r["collection"])
            activity.heartbeat(r["document_id"])
        if missing:
            log.warning("document index workflows started again", documents=len(missing))
        return SweepResult(
            found=len(rows),
            acted=len(missing),
            detail=f"{len(rows)} documents with {'/'.join(types)} work, {len(missing)} started",
        )

    @activity.defn(name="collect_deleted_collections")
    async def collect_deleted_collections(self, request: SweepRequest) -> SweepResult:
        names = await gc.deleted_collections(request.tenant_id)
        documents = 0
        for name in names:
            documents += await gc.collect(request.tenant_id, name, activity.heartbeat)
        return SweepResult(
            found=len(names),
            acted=len(names),
            detail=f"{len(names)} collections, {documents} documents deleted",
        )

    @activity.defn(name="run_pending_evaluations")
    async def run_pending_evaluations(self, request: SweepRequest) -> SweepResult:
        ids = await evaluations.pending(request.tenant_id)
        done = 0
        for evaluation_id in ids:
            try:
                await evaluations.run_evaluation(request.tenant_id, evaluation_id)
                done += 1
            except Exception as exc:
                log.exception("evaluation failed", evaluation=evaluation_id)
                await evaluations.mark_failed(request.tenant_id, evaluation_id, repr(exc))
            activity.heartbeat(evaluation_id)
        return SweepResult(found=len(ids), acted=done, detail=f"{done}/{len(ids)} evaluations run")
