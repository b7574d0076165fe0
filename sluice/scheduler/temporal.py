"""``TemporalTaskScheduler``: requests are version bumps in Postgres plus a signal-with-start
of the document's index workflow (``workflows/document_index.py``).

The order matters: the state rows are written first, so whatever workflow run sees the
``recheck`` signal (or starts because of it) finds the new versions. A task row records
which versions the request asked for; its status is derived from the state rows.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sluice.db.session import tenant_connection
from sluice.documents import store
from sluice.documents.models import DocumentInput, IndexState, IndexStatus, parse_index_types
from sluice.scheduler.base import TaskResult, TaskScheduler, TaskStatus
from sluice.tenancy import validate_tenant_id

if TYPE_CHECKING:
    from temporalio.client import Client


class TemporalTaskScheduler(TaskScheduler):
    def __init__(self, client: Client, tenant_id: str) -> None:
        self.client = client
        self.tenant_id = validate_tenant_id(tenant_id)

    async def schedule_create_index(
        self, document_id: str, index_types: list[str], context: dict[str, Any] | None = None
    ) -> str:
        return await self._schedule(document_id, index_types, "create")

    async def schedule_update_index(
        self, document_id: str, index_types: list[str], context: dict[str, Any] | None = None
    ) -> str:
        return await self._schedule(document_id, index_types, "update")

    async def schedule_delete_index(self, document_id: str, index_types: list[str]) -> str:
        return await self._schedule(document_id, index_types, "delete")

    async def _schedule(self, document_id: str, index_types: list[str], operation: str) -> str:
        types = parse_index_types(index_types)  # unknown types fail before anything starts
        task_id = f"{operation}-{uuid.uuid4().hex[:16]}"
        async with tenant_connection(self.tenant_id) as (_, raw):
            doc = await store.lock_document(raw, document_id)  # unknown documents fail here
            versions = await store.request_indexes(
                raw, document_id, types, delete=operation == "delete"
            )
            await store.record_task(raw, task_id, document_id, operation, versions)
        if versions:
            await start_document_workflow(self.client, self.tenant_id, doc.id, doc.collection)
        return task_id

    async def get_task_status(self, task_id: str) -> TaskResult | None:
        async with tenant_connection(self.tenant_id) as (_, raw):
            task = await store.get_task(raw, task_id)
            if task is None:
                return None
            rows = {s.index_type: s for s in await store.states(raw, task.document_id)}
        outcomes = {t: _outcome(task.operation, v, rows.get(t)) for t, v in task.versions.items()}
        errors = [f"{t}: {err}" for t, (st, err) in outcomes.items() if st is TaskStatus.FAILED]
        statuses = {st for st, _ in outcomes.values()}
        status = next(
            (
                s
                for s in (TaskStatus.FAILED, TaskStatus.RUNNING, TaskStatus.CANCELED)
                if s in statuses
            ),
            TaskStatus.SUCCEEDED,
        )
        if status is TaskStatus.RUNNING and await self._workflow_stopped(task.document_id):
            status = TaskStatus.CANCELED
        return TaskResult(
            task_id=task_id,
            success=status is TaskStatus.SUCCEEDED,
            error="; ".join(errors) or None,
            status=status,
            data={
                "document_id": task.document_id,
                "operation": task.operation,
                "requested": task.versions,
                "indexes": {t: rows[t].model_dump() for t in task.versions if t in rows},
            },
        )

    async def _workflow_stopped(self, document_id: str) -> bool:
        """True when the document's workflow was canceled or terminated by a person."""
        from temporalio.client import WorkflowExecutionStatus
        from temporalio.service import RPCError, RPCStatusCode

        from sluice.temporal.tenant_context import tenant_scope
        from sluice.temporal.workflow_ids import document_index_workflow_id

        handle = self.client.get_workflow_handle(
            document_index_workflow_id(self.tenant_id, document_id)
        )
        try:
            with tenant_scope(self.tenant_id):
                described = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return described.status in (
            WorkflowExecutionStatus.CANCELED,
            WorkflowExecutionStatus.TERMINATED,
        )


def _outcome(operation: str, version: int, row: IndexState | None) -> tuple[TaskStatus, str | None]:
    """One requested (type, version) judged from its state row."""
    if operation == "delete":
        if row is None:
            return TaskStatus.SUCCEEDED, None
        if row.version > version:
            return TaskStatus.CANCELED, f"superseded by version {row.version}"
        return TaskStatus.RUNNING, None
    if row is None:
        return TaskStatus.CANCELED, "deleted by a later request"
    if row.observed_version >= version and row.status == IndexStatus.ACTIVE:
        return TaskStatus.SUCCEEDED, None
    if row.version > version:
        return TaskStatus.CANCELED, f"superseded by version {row.version}"
    if row.status == IndexStatus.FAILED:
        return TaskStatus.FAILED, row.error
    return TaskStatus.RUNNING, None


async def start_document_workflow(
    client: Client, tenant_id: str, document_id: str, collection: str
) -> None:
    """Signal-with-start ``recheck``: a running workflow claims the new work after its
    round; otherwise a new run starts (one per document, by ID)."""
    from temporalio.common import SearchAttributePair, TypedSearchAttributes

    from sluice.queues import TaskQueue
    from sluice.temporal import search
    from sluice.temporal.tenant_context import tenant_scope
    from sluice.temporal.workflow_ids import DOCUMENT_INDEX, document_index_workflow_id

    with tenant_scope(tenant_id):
        await client.start_workflow(
            DOCUMENT_INDEX,
            DocumentInput(tenant_id=tenant_id, document_id=document_id, collection=collection),
            id=document_index_workflow_id(tenant_id, document_id),
            task_queue=TaskQueue.PRIMARY.value,
            start_signal="recheck",
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(search.TENANT, tenant_id),
                    SearchAttributePair(search.COLLECTION, collection),
                    SearchAttributePair(search.DOCUMENT, document_id),
                ]
            ),
            static_summary=f"index document {document_id} (collection {collection})",
        )
