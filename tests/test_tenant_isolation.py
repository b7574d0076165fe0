"""Tenant isolation, proven on the real servers (issue 18, item 4).

Two tenants run everything at once on one worker: connectors of two sources with the
same cc-pair IDs and the same connector name, searches, a deletion in one while the
other re-indexes, sweeps, schedules. Neither ever sees or touches the other's rows,
and every listing Sluice makes through Temporal (visibility queries on the
``SluiceTenant`` search attribute, schedules by their ``{tenant}/`` ID prefix) shows one
tenant only.

Then the door itself: a workflow start whose ``sluice-tenant-id`` header is forged or
malformed is failed by the worker's interceptor before the workflow code runs, so its
history holds no activity and the database is untouched.
"""

from __future__ import annotations

import asyncio
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    ScheduleActionStartWorkflow,
    StartWorkflowInput,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.converter import PayloadConverter
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from schedules.models import SweepInput, SweepResult
from schedules.status import schedule_rows
from schedules.sync import delete_tenant_schedules, sync_tenant, tenant_schedule_ids
from schedules.table import JOBS
from sluice import connector_ops
from sluice.ccpairs import create_cc_pair, list_cc_pairs
from sluice.config import get_settings
from sluice.db.migrate import list_tenants, migrate_tenant
from sluice.index.search import search
from sluice.indexing.models import ConnectorWorkflowInput
from sluice.monitoring import tenant_figures
from sluice.temporal import search as attrs
from sluice.temporal.tenant_context import TENANT_HEADER, tenant_scope
from sluice.temporal.workflow_ids import CONNECTOR, SWEEP, connector_workflow_id
from sluice.tenant_ops import remove_tenant
from tests.support import FAST, eventually, fetch, fetchval, running_workers

MARKERS = {"a": "zebraquartz", "b": "mangoflux"}
FILES = 8


def _folder(root: Path, marker: str) -> Path:
    """Same file names in both tenants' folders; only the words inside differ."""
    root.mkdir()
    for n in range(FILES):
        (root / f"note{n}.md").write_text(
            f"# Note {n}\n\nThis note is about {marker} number {n} and nothing else.\n"
        )
    return root


async def _add(client: Client, tenant: str, name: str, source: str, **config: Any) -> int:
    pair = await connector_ops.add_connector(
        client, tenant, name=name, source=source, config=config, tuning=FAST
    )
    return pair.id


async def _row_counts(tenant: str) -> dict[str, int]:
    tables = ("document", "chunk", "document_by_connector_credential_pair", "index_attempt")
    return {t: int(await fetchval(tenant, f"SELECT count(*) FROM {t}")) for t in tables}


async def _listed(
    client: Client, tenant: str
) -> list[tuple[str, str | None, WorkflowExecutionStatus | None]]:
    """What a visibility query scoped to ``tenant`` returns: (ID, tenant attr, status)."""
    query = f"{attrs.TENANT.name} = '{tenant}'"
    return [
        (wf.id, wf.typed_search_attributes.get(attrs.TENANT), wf.status)
        async for wf in client.list_workflows(query)
    ]


async def _running_ids(client: Client, tenant: str) -> set[str]:
    return {
        wid
        for wid, _, status in await _listed(client, tenant)
        if status == WorkflowExecutionStatus.RUNNING
    }


async def _sweep(client: Client, tenant: str, job: str) -> SweepResult:
    with tenant_scope(tenant):
        return await client.execute_workflow(
            SWEEP,
            SweepInput(tenant_id=tenant, job=job),
            id=f"isolation-sweep/{tenant}/{job}/{uuid.uuid4().hex[:6]}",
            task_queue="primary",
            result_type=SweepResult,
        )


async def _status(client: Client, workflow_id: str, tenant: str) -> WorkflowExecutionStatus | None:
    try:
        with tenant_scope(tenant):
            return (await client.get_workflow_handle(workflow_id).describe()).status
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def test_two_tenants_running_everything_at_once_stay_apart(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path
) -> None:
    client = dev_env.client
    a, b, c = tenant, "t_" + uuid.uuid4().hex[:10], "t_" + uuid.uuid4().hex[:10]
    await asyncio.gather(migrate_tenant(b), migrate_tenant(c))
    folders = {a: _folder(tmp_path / "a", MARKERS["a"]), b: _folder(tmp_path / "b", MARKERS["b"])}
    seeds = {a: 11, b: 22}
    marker = {a: MARKERS["a"], b: MARKERS["b"]}
    settings = get_settings()
    try:
        async with running_workers(client):
            # cc-pair 1 (filesystem) and 2 (synthetic) in both, added and indexed at once,
            # with the same connector names.
            async def add_both(t: str) -> tuple[int, int]:
                fs = await _add(client, t, "same-name", "filesystem", path=str(folders[t]))
                syn = await _add(
                    client, t, "same-name-2", "synthetic", count=15, size_bytes=400, seed=seeds[t]
                )
                return fs, syn

            ids = await asyncio.gather(add_both(a), add_both(b))
            assert ids[0] == ids[1] == (1, 2)
            await asyncio.gather(
                *(
                    connector_ops.wait_for_attempts(client, t, cc, 1, timeout=120)
                    for t in (a, b)
                    for cc in (1, 2)
                )
            )
            for t in (a, b):
                docs = [r["id"] for r in await fetch(t, "SELECT id FROM document ORDER BY id")]
                prefix = f"file://{folders[t].resolve()}/"
                assert sorted(d for d in docs if d.startswith("file://")) == sorted(
                    f"{prefix}note{n}.md" for n in range(FILES)
                ), t
                assert sorted(d for d in docs if d.startswith("syn:")) == sorted(
                    f"syn:{seeds[t]}:{i}" for i in range(15)
                ), t
                assert len(docs) == FILES + 15, f"{t} holds documents of another tenant"

            # --- search: each tenant finds its own words, never the other's documents.
            for t, other in ((a, b), (b, a)):
                own = await search(t, marker[t], k=30)
                assert {r.document_id for r in own if marker[t] in r.snippet} == {
                    f"file://{folders[t].resolve()}/note{n}.md" for n in range(FILES)
                }, own
                for query in (marker[other], f"note about {marker[other]}", "note number"):
                    for r in await search(t, query, k=50, chunks=True):
                        assert str(folders[other].resolve()) not in r.document_id, (t, r)
                        assert f"syn:{seeds[other]}:" not in r.document_id, (t, r)
                        assert marker[other] not in r.snippet, (t, r)

            # --- listings through Temporal: the SluiceTenant attribute scopes each one.
            async def listed_exactly(t: str, *ccs: int) -> bool:
                expected = {connector_workflow_id(t, cc) for cc in ccs}
                return await _running_ids(client, t) == expected

            for t in (a, b):
                await eventually(partial(listed_exactly, t, 1, 2), timeout=30)
                for wid, attr, _ in await _listed(client, t):
                    assert attr == t and t in wid.split("/"), (t, wid, attr)

            # The reconcile sweep lists running connector workflows by tenant: b's cc-pair
            # 3 runs, a's cc-pair 3 exists only as a row. Scoped, a's sweep sees that its
            # own 3 is missing and starts it; unscoped it would take b's for a's.
            await _add(client, b, "third", "synthetic", count=5, size_bytes=300, seed=33)
            await create_cc_pair(
                a, name="third", source="synthetic", config={"count": 5, "seed": 44}
            )
            await eventually(partial(listed_exactly, b, 1, 2, 3), timeout=30)
            assert await _status(client, connector_workflow_id(a, 3), a) is None
            result = await _sweep(client, a, "connector-reconcile")
            assert (result.found, result.acted) == (1, 1), result
            assert (
                await _status(client, connector_workflow_id(a, 3), a)
                == WorkflowExecutionStatus.RUNNING
            )
            assert (await _sweep(client, b, "connector-reconcile")).found == 0
            await asyncio.gather(
                *(connector_ops.wait_for_attempts(client, t, 3, 1, timeout=120) for t in (a, b))
            )

            # Monitoring figures (sluice status -t) read one tenant's rows.
            for t in (a, b):
                connectors, index = await tenant_figures(t)
                assert {f.tenant for f in connectors} == {t}
                assert sorted(f.cc_pair for f in connectors) == [1, 2, 3]
                assert index.tenant == t

            # --- schedules: per tenant, found by the `{tenant}/` prefix; then they fire
            # for both tenants while the rest of the test runs.
            await asyncio.gather(*(sync_tenant(client, t, settings) for t in (a, b)))
            enabled = {job.name for job in JOBS if job.enabled}
            for t, other in ((a, b), (b, a)):

                async def listed(t: str = t) -> list[str] | None:
                    # the schedule listing is eventually consistent: wait for it to settle
                    found = await tenant_schedule_ids(client, t)
                    return found if {sid.split("/", 1)[1] for sid in found} == enabled else None

                sids = await eventually(listed, timeout=20)
                assert all(sid.startswith(f"{t}/") for sid in sids)
                assert not any(sid.startswith(f"{other}/") for sid in sids)
                rows = await schedule_rows(client, t, settings)
                assert {r.job for r in rows if r.state == "active"} == enabled
                described = await client.get_schedule_handle(f"{t}/connector-reconcile").describe()
                action = described.schedule.action
                assert isinstance(action, ScheduleActionStartWorkflow)
                assert action.id.startswith(f"{t}/")
                assert action.typed_search_attributes.get(attrs.TENANT) == t
                assert described.typed_search_attributes.get(attrs.TENANT) == t

            # --- a deletion in a while b re-indexes its cc-pair 1 (same ID) from scratch.
            b_before = await _row_counts(b)
            b_links_1 = await fetchval(
                b,
                "SELECT count(*) FROM document_by_connector_credential_pair WHERE cc_pair_id = 1",
            )
            await connector_ops.index_now(client, b, 1, from_beginning=True)
            deleted, b_final = await asyncio.gather(
                connector_ops.delete_connector(client, a, 1, timeout=120),
                connector_ops.wait_for_attempts(client, b, 1, 2, timeout=120),
            )
            assert deleted is not None and deleted.pair_deleted, deleted
            assert deleted.documents_deleted == FILES, deleted
            assert b_final.last_attempt_status == "success", b_final
            for t in (a, b):
                await delete_tenant_schedules(client, t)

        # a lost exactly its cc-pair 1; b lost nothing and still runs.
        assert [p.id for p in await list_cc_pairs(a)] == [2, 3]
        assert [p.id for p in await list_cc_pairs(b)] == [1, 2, 3]
        assert not await fetchval(a, "SELECT count(*) FROM document WHERE id LIKE 'file://%'")
        b_after = await _row_counts(b)
        assert b_after["document"] == b_before["document"] == FILES + 15 + 5
        assert b_after["chunk"] == b_before["chunk"]
        assert (
            b_after["document_by_connector_credential_pair"]
            == (b_before["document_by_connector_credential_pair"])
        )
        assert b_after["index_attempt"] == b_before["index_attempt"] + 1
        assert (
            await fetchval(
                b,
                "SELECT count(*) FROM document_by_connector_credential_pair WHERE cc_pair_id = 1",
            )
            == b_links_1
            == FILES
        )
        assert (
            await _status(client, connector_workflow_id(b, 1), b) == WorkflowExecutionStatus.RUNNING
        )

        # --- removing a third tenant stops only its own workflows (SluiceTenant query).
        async with running_workers(client):
            await _add(client, c, "same-name", "synthetic", count=3, size_bytes=300, seed=55)
            await connector_ops.wait_for_attempts(client, c, 1, 1, timeout=60)
        await eventually(partial(listed_exactly, c, 1), timeout=30)
        removed = await remove_tenant(client, c)
        assert removed.workflows == 1, removed
        assert c not in await list_tenants()
        for t, ccs in ((a, (2, 3)), (b, (1, 2, 3))):
            for cc in ccs:
                status = await _status(client, connector_workflow_id(t, cc), t)
                assert status == WorkflowExecutionStatus.RUNNING, (t, cc, status)
    finally:
        for t in (a, b):
            await delete_tenant_schedules(client, t)


# --------------------------------------------------------------------------- forged headers


class _ForgedHeader(Interceptor):
    """A client that writes ``sluice-tenant-id`` itself, as a hostile or broken caller
    could (the real client interceptor only ever writes a validated tenant)."""

    def __init__(self, payload: Payload | None) -> None:
        self.payload = payload

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _ForgedOutbound(next, self.payload)


class _ForgedOutbound(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, payload: Payload | None) -> None:
        super().__init__(next)
        self.payload = payload

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        headers = dict(input.headers)
        headers.pop(TENANT_HEADER, None)
        if self.payload is not None:
            headers[TENANT_HEADER] = self.payload
        input.headers = headers
        return await super().start_workflow(input)


def _forging_client(client: Client, payload: Payload | None) -> Client:
    """The same connection and payload format as ``client``, with the forging interceptor
    instead of the tenant one."""
    config = client.config()
    return Client(
        config["service_client"],
        namespace=config["namespace"],
        data_converter=config["data_converter"],
        interceptors=[_ForgedHeader(payload)],
    )


def _json(value: object) -> Payload:
    return PayloadConverter.default.to_payload(value)


# name -> (header payload, or None for no header; the input's tenant_id, or None for the
# test's tenant; what the failure message must name)
FORGED: dict[str, tuple[Payload | None, str | None, str]] = {
    "path traversal": (_json("../evil"), None, "'../evil'"),
    "sql": (_json("Robert'); DROP TABLE students;--"), None, "DROP TABLE"),
    "empty": (_json(""), None, "''"),
    "upper case": (_json("Acme"), None, "'Acme'"),
    "reserved schema": (_json("pg_catalog"), None, "'pg_catalog'"),
    "not a string": (_json(42), None, "42"),
    "not json": (
        Payload(metadata={"encoding": b"binary/plain"}, data=b"\xff\xfe"),
        None,
        "not a valid tenant ID",
    ),
    "garbage encoding": (
        Payload(metadata={"encoding": b"no/such-encoding"}, data=b"x"),
        None,
        "not a readable string",
    ),
    "another tenant": (_json("t_someone_else"), None, "does not match"),
    "bad input tenant, no header": (None, "../evil", "input tenant_id '../evil'"),
}


async def test_forged_or_malformed_tenant_header_is_rejected_before_any_activity(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    # A cc-pair row with no workflow: the reconcile sweep's activity, if it ever ran,
    # would start `connector/{tenant}/1`.
    pair = await create_cc_pair(
        tenant, name="bait", source="synthetic", config={"count": 3, "seed": 9}
    )
    bait = connector_workflow_id(tenant, pair.id)
    async with running_workers(client):
        for case, (payload, input_tenant, named) in FORGED.items():
            forger = _forging_client(client, payload)
            handle = await forger.start_workflow(
                SWEEP,
                SweepInput(tenant_id=input_tenant or tenant, job="connector-reconcile"),
                id=f"forged/{tenant}/{uuid.uuid4().hex[:8]}",
                task_queue="primary",
                result_type=SweepResult,
            )
            with pytest.raises(WorkflowFailureError) as caught:
                await asyncio.wait_for(handle.result(), timeout=30)
            cause = caught.value.cause
            assert isinstance(cause, ApplicationError), (case, cause)
            assert cause.type == "InvalidTenantError", (case, cause)
            assert cause.non_retryable, case
            assert named in cause.message, (case, cause.message)
            if input_tenant is None:
                assert TENANT_HEADER in cause.message, (case, cause.message)
            events = [e.event_type async for e in handle.fetch_history_events()]
            assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in events, (case, events)
            assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in events, (case, events)
            assert events[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, case
        assert await _status(client, bait, tenant) is None, "a rejected sweep ran its activity"

        # The same start with the real header runs the activity, which starts the bait:
        # the checks above would have seen it.
        result = await _sweep(client, tenant, "connector-reconcile")
        assert (result.found, result.acted) == (1, 1)
        assert await _status(client, bait, tenant) == WorkflowExecutionStatus.RUNNING
        with tenant_scope(tenant):
            await client.get_workflow_handle(bait).terminate(reason="test over")


async def test_forged_header_on_a_connector_workflow_writes_nothing(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    """The long-lived connector workflow itself: started with another tenant's header
    for this tenant's cc-pair, it fails before its first activity (no attempt row)."""
    client = dev_env.client
    pair = await create_cc_pair(
        tenant, name="target", source="synthetic", config={"count": 3, "seed": 7}
    )
    forger = _forging_client(client, _json("default"))
    async with running_workers(client):
        handle = await forger.start_workflow(
            CONNECTOR,
            ConnectorWorkflowInput(
                tenant_id=tenant, cc_pair_id=pair.id, source=pair.source, name=pair.name
            ),
            id=connector_workflow_id(tenant, pair.id),
            task_queue="primary",
        )
        with pytest.raises(WorkflowFailureError) as caught:
            await asyncio.wait_for(handle.result(), timeout=30)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidTenantError"
    assert "'default' does not match the input's tenant_id" in cause.message
    events = [e.event_type async for e in handle.fetch_history_events()]
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in events
    assert await fetchval(tenant, "SELECT count(*) FROM index_attempt") == 0
    assert await fetchval(tenant, "SELECT count(*) FROM document") == 0
