"""Client-side operations on connectors: add (row + workflow), signal, query, wait.

Used by the CLI and the tests alike, so both drive connectors the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import ActivityError
from temporalio.service import RPCError, RPCStatusCode

from sluice.bulk import BulkOperation, BulkRequest, BulkResult, BulkSelector
from sluice.ccpairs import (
    CcPairInfo,
    create_cc_pair,
    delete_cc_pair_rows,
    get_cc_pair,
    mark_cc_pair_deleting,
)
from sluice.db.statuses import CcPairStatus
from sluice.errors import ConfigurationError, NotFoundError
from sluice.indexing.models import (
    ConnectorProgress,
    ConnectorWorkflowInput,
    DeletionResult,
    IndexNowRequest,
    PermissionSyncResult,
    PruneResult,
    RunTuning,
    SettingsApplied,
    SettingsUpdate,
)
from sluice.queues import TaskQueue
from sluice.temporal import search
from sluice.temporal.tenant_context import tenant_scope
from sluice.temporal.workflow_ids import (
    BULK,
    CONNECTOR,
    bulk_workflow_id,
    connector_workflow_id,
    deletion_workflow_id,
    permission_sync_workflow_id,
    pruning_workflow_id,
)

ResultT = TypeVar("ResultT")


async def start_connector_workflow(
    client: Client,
    tenant_id: str,
    pair: CcPairInfo,
    tuning: RunTuning | None = None,
    *,
    index_now: IndexNowRequest | None = None,
    delete: bool = False,
    retry_failed: bool = False,
    prune: bool = False,
    sync_permissions: bool = False,
) -> WorkflowHandle[Any, None]:
    """Start the cc-pair's long-lived workflow, or return the one already running.

    With ``index_now`` or ``delete`` this is signal-with-start: the running workflow gets
    the signal, and a connector whose workflow is gone (terminated, failed) gets a new
    one that first closes what the old one left open.
    """
    signal: dict[str, Any] = {}
    if index_now is not None:
        signal = {"start_signal": "index_now", "start_signal_args": [index_now]}
    if delete:
        signal = {"start_signal": "delete"}
    if retry_failed:
        signal = {"start_signal": "retry_failed"}
    if prune:
        signal = {"start_signal": "prune"}
    if sync_permissions:
        signal = {"start_signal": "sync_permissions"}
    with tenant_scope(tenant_id):
        return await client.start_workflow(
            CONNECTOR,
            ConnectorWorkflowInput(
                tenant_id=tenant_id,
                cc_pair_id=pair.id,
                source=pair.source,
                name=pair.name,
                refresh_interval_seconds=pair.refresh_interval_seconds,
                tuning=tuning or RunTuning(),
            ),
            id=connector_workflow_id(tenant_id, pair.id),
            task_queue=TaskQueue.PRIMARY.value,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(search.TENANT, tenant_id),
                    SearchAttributePair(search.CC_PAIR, pair.id),
                    SearchAttributePair(search.SOURCE, pair.source),
                    SearchAttributePair(search.STATE, "idle"),
                ]
            ),
            static_summary=f"{pair.source} connector '{pair.name}' (cc-pair {pair.id})",
            static_details=f"tenant {tenant_id}; "
            + (
                f"refresh every {pair.refresh_interval_seconds} s"
                if pair.refresh_interval_seconds
                else "index-now only (no refresh interval)"
            ),
            **signal,
        )


async def add_connector(
    client: Client,
    tenant_id: str,
    *,
    name: str,
    source: str,
    config: dict[str, Any],
    refresh_interval_seconds: int | None = None,
    prune_interval_seconds: int | None = None,
    tuning: RunTuning | None = None,
    credential: dict[str, Any] | None = None,
    permission_sync_interval_seconds: int | None = None,
) -> CcPairInfo:
    """Validate, write the cc-pair, start its workflow; undo the row if the start fails.

    ``credential`` is stored in its own row; the workflow knows only the cc-pair ID and
    the fetch activity loads the secret itself."""
    pair = await create_cc_pair(
        tenant_id,
        name=name,
        source=source,
        config=config,
        refresh_interval_seconds=refresh_interval_seconds,
        prune_interval_seconds=prune_interval_seconds,
        credential=credential,
        permission_sync_interval_seconds=permission_sync_interval_seconds,
    )
    try:
        await start_connector_workflow(client, tenant_id, pair, tuning)
    except BaseException:
        await delete_cc_pair_rows(tenant_id, pair.id)
        raise
    return pair


def handle(client: Client, tenant_id: str, cc_pair_id: int) -> WorkflowHandle[Any, Any]:
    return client.get_workflow_handle(connector_workflow_id(tenant_id, cc_pair_id))


async def progress(
    client: Client,
    tenant_id: str,
    cc_pair_id: int,
    *,
    rpc_timeout: float = 10,
    running_only: bool = False,
) -> ConnectorProgress:
    """The workflow's ``progress`` query. Temporal answers it for a closed workflow too
    (from its history): ``running_only`` refuses that, naming what happened to it."""
    async with _named_not_found(tenant_id, cc_pair_id):
        with tenant_scope(tenant_id):
            if running_only:
                await _require_running(handle(client, tenant_id, cc_pair_id), cc_pair_id)
            return await handle(client, tenant_id, cc_pair_id).query(
                "progress",
                result_type=ConnectorProgress,
                rpc_timeout=timedelta(seconds=rpc_timeout),
            )


async def _require_running(workflow: WorkflowHandle[Any, Any], cc_pair_id: int) -> None:
    described = await workflow.describe()
    if described.status != WorkflowExecutionStatus.RUNNING:
        state = described.status.name.lower() if described.status else "closed"
        raise NotFoundError(
            f"cc-pair {cc_pair_id}'s workflow is {state}, not running; "
            f"`sluice connector index-now {cc_pair_id}` starts it again"
        )


@asynccontextmanager
async def _named_not_found(tenant_id: str, cc_pair_id: int) -> AsyncIterator[None]:
    """A workflow Temporal does not know becomes an error naming what is missing: the
    cc-pair itself, or only its workflow (which index-now brings back)."""
    try:
        yield
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        await get_cc_pair(tenant_id, cc_pair_id)  # NotFoundError if the pair is gone
        raise NotFoundError(
            f"cc-pair {cc_pair_id} has no running workflow (terminated?); "
            f"`sluice connector index-now {cc_pair_id}` starts it again"
        ) from None


async def index_now(
    client: Client, tenant_id: str, cc_pair_id: int, from_beginning: bool = False
) -> None:
    """Ask for an attempt now; brings the connector's workflow back if it is gone."""
    pair = await get_cc_pair(tenant_id, cc_pair_id)
    if pair.status == CcPairStatus.DELETING.value:
        raise ConfigurationError(f"cc-pair {cc_pair_id} is being deleted")
    await start_connector_workflow(
        client, tenant_id, pair, index_now=IndexNowRequest(from_beginning=from_beginning)
    )


async def update_connector(
    client: Client,
    tenant_id: str,
    cc_pair_id: int,
    *,
    refresh_interval_seconds: int | None = None,
    config: dict[str, Any] | None = None,
) -> SettingsApplied:
    """Change a running connector's interval or config through its workflow's Update.

    Rejected with one clear message (the field named) when a value is bad; then nothing
    has changed. ``refresh_interval_seconds=0`` means "index-now only".
    """
    await get_cc_pair(tenant_id, cc_pair_id)  # NotFoundError for an unknown pair
    change = SettingsUpdate(refresh_interval_seconds=refresh_interval_seconds, config=config or {})
    try:
        async with _named_not_found(tenant_id, cc_pair_id):
            with tenant_scope(tenant_id):
                return await handle(client, tenant_id, cc_pair_id).execute_update(
                    "update_settings", change, result_type=SettingsApplied
                )
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        while isinstance(cause, ActivityError) and cause.cause is not None:
            cause = cause.cause
        raise ConfigurationError(str(cause) if cause else str(err)) from None


async def retry_failed(client: Client, tenant_id: str, cc_pair_id: int) -> None:
    """Fetch again, by ID, only the documents recent attempts recorded as failed."""
    pair = await get_cc_pair(tenant_id, cc_pair_id)
    if pair.status == CcPairStatus.DELETING.value:
        raise ConfigurationError(f"cc-pair {cc_pair_id} is being deleted")
    from sluice.connectors.registry import CONNECTORS  # the connectors load httpx and more

    source = CONNECTORS.get(pair.source)
    if source is None or not source.fetches_by_id():
        raise ConfigurationError(
            f"cc-pair {cc_pair_id}: the {pair.source} connector cannot re-fetch documents by "
            "ID; use index-now --from-beginning"
        )
    with tenant_scope(tenant_id):
        await start_connector_workflow(client, tenant_id, pair, retry_failed=True)


async def prune(
    client: Client, tenant_id: str, cc_pair_id: int, *, wait: bool = False, timeout: float = 600
) -> PruneResult | None:
    """Remove documents that vanished at the source, between attempts (signal-with-start).
    With ``wait``, the counts of the pruning run this request caused."""
    return await _between_attempts(
        client,
        tenant_id,
        cc_pair_id,
        "prune",
        pruning_workflow_id(tenant_id, cc_pair_id),
        PruneResult,
        wait=wait,
        timeout=timeout,
    )


async def sync_permissions(
    client: Client, tenant_id: str, cc_pair_id: int, *, wait: bool = False, timeout: float = 600
) -> PermissionSyncResult | None:
    """Read ACLs and groups at the source again, between attempts (signal-with-start).
    With ``wait``, the counts of the permission-sync run this request caused."""
    return await _between_attempts(
        client,
        tenant_id,
        cc_pair_id,
        "sync_permissions",
        permission_sync_workflow_id(tenant_id, cc_pair_id),
        PermissionSyncResult,
        wait=wait,
        timeout=timeout,
    )


async def _between_attempts(
    client: Client,
    tenant_id: str,
    cc_pair_id: int,
    signal: str,
    child_id: str,
    result_type: type[ResultT],
    *,
    wait: bool,
    timeout: float,
) -> ResultT | None:
    """Signal work the connector workflow runs as a child between attempts; with ``wait``,
    the result of the first child run that started after the signal."""
    pair = await get_cc_pair(tenant_id, cc_pair_id)
    if pair.status == CcPairStatus.DELETING.value:
        raise ConfigurationError(f"cc-pair {cc_pair_id} is being deleted")
    before = await _latest_run(client, tenant_id, child_id) if wait else None
    await start_connector_workflow(
        client,
        tenant_id,
        pair,
        prune=signal == "prune",
        sync_permissions=signal == "sync_permissions",
    )
    if not wait:
        return None
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        latest = await _latest_run(client, tenant_id, child_id)
        if latest is not None and latest != before:
            run = client.get_workflow_handle(child_id, run_id=latest[1], result_type=result_type)
            with tenant_scope(tenant_id):
                return await run.result()
        await asyncio.sleep(0.25)
    raise TimeoutError(f"cc-pair {cc_pair_id}: no {signal} run finished in {timeout}s")


async def _latest_run(client: Client, tenant_id: str, workflow_id: str) -> tuple[str, str] | None:
    with tenant_scope(tenant_id):
        try:
            described = await client.get_workflow_handle(workflow_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
    return described.id, described.run_id


async def send(client: Client, tenant_id: str, cc_pair_id: int, signal: str) -> None:
    """``pause``, ``resume`` or ``cancel_run``."""
    if signal not in ("pause", "resume", "cancel_run"):
        raise ValueError(f"unknown signal {signal!r}")
    async with _named_not_found(tenant_id, cc_pair_id):
        with tenant_scope(tenant_id):
            await handle(client, tenant_id, cc_pair_id).signal(signal)


async def wait_for_attempts(
    client: Client,
    tenant_id: str,
    cc_pair_id: int,
    attempts: int = 1,
    *,
    timeout: float = 600,
    on_progress: Callable[[ConnectorProgress], None] | None = None,
    poll: float = 0.25,
) -> ConnectorProgress:
    """Poll ``progress`` until ``attempts`` attempts have ended (bounded by ``timeout``)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            current = await progress(client, tenant_id, cc_pair_id, rpc_timeout=5)
        except RPCError as err:
            # A query can fail for a moment (no worker polling during a deploy, a run
            # just continued-as-new): keep waiting until our own deadline.
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"cc-pair {cc_pair_id}: no progress answer: {err}") from err
            await asyncio.sleep(poll)
            continue
        if on_progress is not None:
            on_progress(current)
        finished = current.attempts_started - (1 if current.attempt_id is not None else 0)
        if finished >= attempts and current.attempt_id is None:
            return current
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"cc-pair {cc_pair_id}: attempt not finished after {timeout}s")
        await asyncio.sleep(poll)


async def delete_connector(
    client: Client, tenant_id: str, cc_pair_id: int, *, wait: bool = True, timeout: float = 600
) -> DeletionResult | None:
    """Mark the pair ``deleting`` and ask its workflow to stop; once it has (cleanly, the
    running attempt closed) its deletion workflow removes everything. Never terminates.

    Safe to call twice. With ``wait``, returns the deletion's result.
    """
    pair = await get_cc_pair(tenant_id, cc_pair_id)  # NotFoundError for an unknown pair
    await mark_cc_pair_deleting(tenant_id, cc_pair_id)
    await start_connector_workflow(client, tenant_id, pair, delete=True)
    if not wait:
        return None
    return await wait_for_deletion(client, tenant_id, cc_pair_id, timeout=timeout)


async def wait_for_deletion(
    client: Client, tenant_id: str, cc_pair_id: int, *, timeout: float = 600
) -> DeletionResult:
    """The deletion workflow's result (it starts once the connector workflow stopped)."""
    deadline = asyncio.get_running_loop().time() + timeout
    deletion = client.get_workflow_handle(
        deletion_workflow_id(tenant_id, cc_pair_id), result_type=DeletionResult
    )
    while True:
        try:
            with tenant_scope(tenant_id):
                return await deletion.result(rpc_timeout=timedelta(seconds=30))
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"cc-pair {cc_pair_id}: deletion did not finish in {timeout}s")
        await asyncio.sleep(0.25)


async def bulk(
    client: Client, tenant_id: str, operation: BulkOperation, selector: BulkSelector
) -> BulkResult:
    """Signal every selected connector (one workflow, visible in the Web UI); asking twice
    while it runs attaches to the same run."""
    selector.check()
    request = BulkRequest(tenant_id=tenant_id, operation=operation, selector=selector)
    with tenant_scope(tenant_id):
        handle = await client.start_workflow(
            BULK,
            request,
            result_type=BulkResult,
            id=bulk_workflow_id(request),
            task_queue=TaskQueue.PRIMARY.value,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"{operation.value} for connectors: {selector.describe()}",
        )
        return await handle.result()
