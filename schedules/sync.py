"""Per-tenant schedule sync (the seed's ``DynamicTenantScheduler``), idempotent.

For one tenant, the schedules on the server are made to match ``schedules/table.py``:
missing ones are created, ones whose spec or action changed are updated, ones whose
job was removed (or is not switched on yet) are deleted, and the rest are left alone.
A schedule an operator paused stays paused through updates. Running it twice changes
nothing the second time.

Schedule IDs are ``{tenant}/{job}``; the tenant is also a search attribute and memo,
so ``temporal schedule list`` and the Web UI's Schedules page can group them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.converter import PayloadConverter
from temporalio.service import RPCError, RPCStatusCode

from schedules.models import SweepInput
from schedules.table import CATCHUP_WINDOW, JOBS, JOBS_BY_NAME, WORKFLOW, PeriodicJob, jitter_for
from sluice.config import Settings
from sluice.errors import ConfigurationError
from sluice.queues import TaskQueue
from sluice.temporal import search


def schedule_id(tenant_id: str, job: str) -> str:
    return f"{tenant_id}/{job}"


def interval_for(job: PeriodicJob, settings: Settings) -> timedelta:
    seconds = settings.schedule_intervals.get(job.name)
    return timedelta(seconds=seconds) if seconds is not None else job.interval


def check_overrides(settings: Settings) -> None:
    """SCHEDULE_INTERVALS may only name jobs that exist (one line naming the bad one)."""
    unknown = sorted(set(settings.schedule_intervals) - set(JOBS_BY_NAME))
    if unknown:
        raise ConfigurationError(
            f"SCHEDULE_INTERVALS names unknown job(s) {', '.join(unknown)}; "
            f"jobs: {', '.join(JOBS_BY_NAME)}"
        )


def desired_schedule(tenant_id: str, job: PeriodicJob, settings: Settings) -> Schedule:
    interval = interval_for(job, settings)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WORKFLOW,
            SweepInput(tenant_id=tenant_id, job=job.name),
            id=schedule_id(tenant_id, job.name),  # the server appends the fire time
            task_queue=TaskQueue.PRIMARY.value,
            execution_timeout=max(interval * 10, timedelta(hours=1)),
            typed_search_attributes=TypedSearchAttributes(
                [SearchAttributePair(search.TENANT, tenant_id)]
            ),
            static_summary=f"{job.name}: {job.description}",
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=interval)], jitter=jitter_for(interval)
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=CATCHUP_WINDOW),
        state=ScheduleState(note=f"seed task {job.seed_task}; {job.description}"),
    )


def _text(value: object) -> object:
    """A described schedule holds its summary as a raw payload; the desired one as text."""
    if isinstance(value, Payload):
        return PayloadConverter.default.from_payload(value, str)
    return value


def _shape(schedule: Schedule) -> tuple[object, ...]:
    """What Sluice sets on a schedule (not its paused state or note), comparable between
    the desired schedule and the one the server describes."""
    action = schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    spec, policy = schedule.spec, schedule.policy
    return (
        action.workflow,
        action.id,
        action.task_queue,
        action.execution_timeout,
        _text(action.static_summary),
        tuple(i.every for i in spec.intervals),
        spec.jitter,
        policy.overlap,
        policy.catchup_window,
    )


@dataclass
class SyncReport:
    tenant_id: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


async def tenant_schedule_ids(client: Client, tenant_id: str) -> list[str]:
    """The schedules Sluice made for this tenant (by ID prefix; listing is unfiltered
    on purpose: the dev server's schedule visibility may not index custom attributes)."""
    prefix = f"{tenant_id}/"
    return [s.id async for s in await client.list_schedules() if s.id.startswith(prefix)]


async def sync_tenant(client: Client, tenant_id: str, settings: Settings) -> SyncReport:
    """Bring one tenant's schedules in line with the table.

    Each wanted schedule is looked up by ID (strongly consistent), so a schedule created
    a moment ago is never created twice; the listing (eventually consistent) is only used
    to find schedules of jobs that no longer exist.
    """
    check_overrides(settings)
    report = SyncReport(tenant_id)
    wanted = {schedule_id(tenant_id, job.name): job for job in JOBS if job.enabled}
    for sid, job in wanted.items():
        desired = desired_schedule(tenant_id, job, settings)
        handle = client.get_schedule_handle(sid)
        try:
            described = await handle.describe()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            await _create(client, tenant_id, sid, desired)
            report.created.append(job.name)
            continue
        if _shape(described.schedule) == _shape(desired):
            report.unchanged.append(job.name)
            continue
        await handle.update(_updater(desired))
        report.updated.append(job.name)
    for sid in sorted(set(await tenant_schedule_ids(client, tenant_id)) - set(wanted)):
        if await _delete(client, sid):
            report.deleted.append(sid.split("/", 1)[1])
    return report


async def _create(client: Client, tenant_id: str, sid: str, schedule: Schedule) -> None:
    try:
        await client.create_schedule(
            sid,
            schedule,
            memo={"tenant": tenant_id},
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(search.TENANT, tenant_id)]
            ),
        )
    except ScheduleAlreadyRunningError:
        pass  # another sync (a second worker starting) created it first


async def _delete(client: Client, sid: str) -> bool:
    try:
        await client.get_schedule_handle(sid).delete()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        return False  # listed a moment after it was deleted
    return True


def _updater(desired: Schedule) -> Callable[[ScheduleUpdateInput], ScheduleUpdate]:
    def update(previous: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule = desired
        old_state = previous.description.schedule.state
        schedule.state.paused = old_state.paused  # an operator's pause survives
        if old_state.paused and old_state.note:
            schedule.state.note = old_state.note
        return ScheduleUpdate(schedule=schedule)

    return update


async def sync_all(client: Client, settings: Settings) -> list[SyncReport]:
    """Sync every migrated tenant (worker start-up and ``sluice schedules sync``)."""
    from sluice.db.migrate import list_tenants

    # A tenant's schema is named exactly like the tenant (sluice.tenancy).
    return [await sync_tenant(client, tenant, settings) for tenant in await list_tenants()]


async def delete_tenant_schedules(client: Client, tenant_id: str) -> list[str]:
    """Every schedule of the tenant: the table's by ID, and any other the listing shows."""
    candidates = {schedule_id(tenant_id, job.name) for job in JOBS}
    candidates |= set(await tenant_schedule_ids(client, tenant_id))
    return [sid for sid in sorted(candidates) if await _delete(client, sid)]
