"""Sweep activities: what each periodic job does (one activity per job, see schedules/).

Each finds what was missed and fixes it; when nothing was missed it returns at once.
The reconcile and deletion sweeps talk to Temporal (starting or signalling workflows),
so they hold the worker's client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import structlog
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from schedules.models import SweepRequest, SweepResult
from sluice import connector_ops
from sluice.ccpairs import list_cc_pairs
from sluice.config import get_settings
from sluice.db.models import CcPairStatus
from sluice.db.session import tenant_connection
from sluice.indexing.cleanup import delete_old_attempts, delete_orphan_staged_batches
from sluice.indexing.metadata import sync_stale_batch
from sluice.indexing.permissions import pairs_due_for_permission_sync
from sluice.indexing.pruning import pairs_due_for_pruning
from sluice.metrics import process_endpoint
from sluice.monitoring import alerts, collect_figures
from sluice.temporal import search
from sluice.temporal.listing import running_values
from sluice.temporal.tenant_context import tenant_scope
from sluice.temporal.workflow_ids import (
    CONNECTOR,
    connector_workflow_id,
    deletion_workflow_id,
    user_file_workflow_id,
)
from sluice.userfiles import db as user_files_db
from sluice.userfiles.ops import start_processing

log = structlog.get_logger(__name__)

DELETE_BATCH = 1000
METADATA_BATCH = 500
USER_FILE_BATCH = 200
USER_FILE_GRACE = timedelta(seconds=30)
"""An upload younger than this is left alone: its CLI is about to start its workflow."""


class SweepActivities:
    def __init__(self, client: Client) -> None:
        self.client = client

    @activity.defn(name="reconcile_connectors")
    async def reconcile_connectors(self, request: SweepRequest) -> SweepResult:
        """Every cc-pair not being deleted has its long-lived workflow running.

        One visibility query lists the running ones; only a pair missing from it is
        started, with the USE_EXISTING conflict policy, so a workflow the (eventually
        consistent) list missed is left alone rather than doubled.
        """
        tenant = request.tenant_id
        pairs = [p for p in await list_cc_pairs(tenant) if p.status != CcPairStatus.DELETING.value]
        if not pairs:
            return SweepResult()
        running = await running_values(self.client, tenant, CONNECTOR, search.CC_PAIR)
        missing = [p for p in pairs if p.id not in running]
        for pair in missing:
            await connector_ops.start_connector_workflow(self.client, tenant, pair)
            activity.heartbeat(pair.id)
        if missing:
            log.warning("connector workflows brought back", cc_pairs=[p.id for p in missing])
        return SweepResult(
            found=len(missing),
            acted=len(missing),
            detail=f"{len(pairs)} cc-pairs, {len(missing)} workflows started again",
        )

    @activity.defn(name="resume_deletions")
    async def resume_deletions(self, request: SweepRequest) -> SweepResult:
        """A pair marked deleting with no deletion running (the request was lost in a
        crash, or its workflow was terminated) is asked again: signal-with-start
        ``delete`` on its connector workflow, which hands over to the deletion."""
        tenant = request.tenant_id
        deleting = [
            p for p in await list_cc_pairs(tenant) if p.status == CcPairStatus.DELETING.value
        ]
        resumed = 0
        for pair in deleting:
            if await self._deletion_running(tenant, pair.id):
                continue
            await connector_ops.start_connector_workflow(self.client, tenant, pair, delete=True)
            resumed += 1
        return SweepResult(
            found=len(deleting), acted=resumed, detail=f"{resumed} deletions resumed"
        )

    async def _deletion_running(self, tenant: str, cc_pair_id: int) -> bool:
        return await self._running(tenant, deletion_workflow_id(tenant, cc_pair_id))

    async def _running(self, tenant: str, workflow_id: str) -> bool:
        handle = self.client.get_workflow_handle(workflow_id)
        try:
            with tenant_scope(tenant):
                described = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return described.status == WorkflowExecutionStatus.RUNNING

    @activity.defn(name="process_pending_user_files")
    async def process_pending_user_files(self, request: SweepRequest) -> SweepResult:
        """Uploads still ``processing`` with no running workflow (the CLI died before
        starting it, or it was terminated) get their workflow started again."""
        tenant = request.tenant_id
        async with tenant_connection(tenant) as (_, raw):
            stuck = await user_files_db.stuck_processing(
                raw, request.as_of - USER_FILE_GRACE, USER_FILE_BATCH
            )
        started = 0
        for file_id in stuck:
            if await self._running(tenant, user_file_workflow_id(tenant, file_id)):
                continue
            await start_processing(self.client, tenant, file_id)
            started += 1
            activity.heartbeat(file_id)
        if started:
            log.warning("user-file workflows started again", count=started)
        return SweepResult(
            found=len(stuck), acted=started, detail=f"{started} user files processed again"
        )

    @activity.defn(name="request_due_prunes")
    async def request_due_prunes(self, request: SweepRequest) -> SweepResult:
        """Signal ``prune`` to each active pair whose prune interval has passed; its
        connector workflow prunes before its next attempt (never during one)."""
        tenant = request.tenant_id
        default = get_settings().prune_interval_seconds
        async with tenant_connection(tenant) as (_, raw):
            due = await pairs_due_for_pruning(raw, request.as_of, default)
        asked = await self._signal_each(tenant, due, "prune")
        return SweepResult(found=len(due), acted=asked, detail=f"{asked} prunes requested")

    @activity.defn(name="request_due_permission_syncs")
    async def request_due_permission_syncs(self, request: SweepRequest) -> SweepResult:
        """Signal ``sync_permissions`` to each active pair whose permission-sync interval
        has passed; its connector workflow syncs between attempts (never during one)."""
        tenant = request.tenant_id
        default = get_settings().permission_sync_interval_seconds
        async with tenant_connection(tenant) as (_, raw):
            due = await pairs_due_for_permission_sync(raw, request.as_of, default)
        asked = await self._signal_each(tenant, due, "sync_permissions")
        return SweepResult(
            found=len(due), acted=asked, detail=f"{asked} permission syncs requested"
        )

    async def _signal_each(self, tenant: str, cc_pairs: list[int], signal: str) -> int:
        """Signal each pair's connector workflow; returns how many were reached."""
        asked = 0
        for cc in cc_pairs:
            handle = self.client.get_workflow_handle(connector_workflow_id(tenant, cc))
            try:
                with tenant_scope(tenant):
                    await handle.signal(signal)
                asked += 1
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise  # a missing workflow is the reconcile's job; the next sweep asks
        return asked

    @activity.defn(name="sync_stale_documents")
    async def sync_stale_documents(self, request: SweepRequest) -> SweepResult:
        """Bring stale documents' sets and chunk ACLs up to date, a batch a transaction,
        until none is left (a change made meanwhile is picked up by a later batch)."""
        synced = 0
        while True:
            async with tenant_connection(request.tenant_id) as (_, raw):
                done = await sync_stale_batch(raw, METADATA_BATCH)
            synced += done
            activity.heartbeat(synced)
            if done == 0:
                return SweepResult(found=synced, acted=synced, detail=f"{synced} documents")

    @activity.defn(name="cleanup_staged_batches")
    async def cleanup_staged_batches(self, request: SweepRequest) -> SweepResult:
        age = timedelta(seconds=get_settings().staged_batch_orphan_seconds)
        deleted = await _delete_in_batches(
            request,
            lambda raw: delete_orphan_staged_batches(raw, request.as_of - age, DELETE_BATCH),
        )
        return SweepResult(found=deleted, acted=deleted, detail=f"{deleted} staged batches")

    @activity.defn(name="cleanup_index_attempts")
    async def cleanup_index_attempts(self, request: SweepRequest) -> SweepResult:
        cutoff = request.as_of - timedelta(days=get_settings().index_attempt_retention_days)
        deleted = await _delete_in_batches(
            request, lambda raw: delete_old_attempts(raw, cutoff, DELETE_BATCH)
        )
        return SweepResult(found=deleted, acted=deleted, detail=f"{deleted} index attempts")

    @activity.defn(name="collect_metrics")
    async def collect_metrics(self, request: SweepRequest) -> SweepResult:
        """The monitoring job: read the tenant's figures and the queues', log them, and
        publish them on this worker's ``/metrics``; ``found`` counts the alerts."""
        settings = get_settings()
        figures = await collect_figures(self.client, [request.tenant_id])
        endpoint = process_endpoint()
        if endpoint is not None:
            endpoint.merge(figures)
        found = alerts(figures, settings.alert_backlog_minutes)
        for line in found:
            log.warning("monitoring alert", alert=line)
        index = figures.index[0] if figures.index else None
        log.info(
            "monitoring figures",
            backlog={f"{q.queue}/{q.kind}": q.backlog for q in figures.queues if q.backlog},
            connectors=len(figures.connectors),
            failing=[c.cc_pair for c in figures.connectors if c.failing],
            documents=index.documents if index else None,
            chunks=index.chunks if index else None,
        )
        backlog = sum(q.backlog for q in figures.queues)
        return SweepResult(
            found=len(found),
            detail=f"{len(found)} alerts; {backlog} tasks queued; "
            f"{len(figures.connectors)} connectors",
        )


async def _delete_in_batches(
    request: SweepRequest, delete_some: Callable[[Any], Awaitable[int]]
) -> int:
    """Run ``delete_some(raw)``, a transaction each time, until a batch comes back short."""
    total = 0
    while True:
        async with tenant_connection(request.tenant_id) as (_, raw):
            deleted = await delete_some(raw)
        total += deleted
        activity.heartbeat(total)
        if deleted < DELETE_BATCH:
            return total
