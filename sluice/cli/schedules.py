"""``sluice schedules sync|list|trigger``: the per-tenant Temporal Schedules that replace Beat."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from sluice.cli.common import TenantOption, fail, run, settings, tenant

if TYPE_CHECKING:
    from schedules.status import ScheduleRow
    from schedules.sync import SyncReport

app = typer.Typer(help="Periodic jobs as Temporal Schedules, per tenant.", no_args_is_help=True)


@app.command("sync")
def sync(
    all_tenants: bool = typer.Option(False, "--all", help="Every tenant, not just one."),
    tenant_id: str | None = TenantOption,
) -> None:
    """Create missing schedules, update changed ones, delete removed ones (idempotent;
    a schedule an operator paused stays paused)."""
    t = None if all_tenants else tenant(tenant_id)
    reports = run(_sync(t))
    for r in reports:
        typer.echo(
            f"tenant {r.tenant_id}: {len(r.created)} created, {len(r.updated)} updated, "
            f"{len(r.deleted)} deleted, {len(r.unchanged)} unchanged"
        )


async def _sync(tenant_id: str | None) -> list[SyncReport]:
    from schedules.sync import sync_all, sync_tenant
    from sluice.temporal.client import connect

    client = await connect()
    if tenant_id is None:
        return await sync_all(client, settings())
    return [await sync_tenant(client, tenant_id, settings())]


@app.command("list")
def list_(
    as_json: bool = typer.Option(False, "--json", help="One JSON document."),
    tenant_id: str | None = TenantOption,
) -> None:
    """Every periodic job: interval, state, last result and next run."""
    from schedules.status import schedule_rows
    from sluice.temporal.client import connect

    t = tenant(tenant_id)

    async def rows() -> list[ScheduleRow]:
        return await schedule_rows(await connect(), t, settings())

    found = run(rows())
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in found], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("job", "every", "state", "runs", "last run", "last result", "next run")
    for r in found:
        table.add_row(
            r.job,
            f"{r.interval_seconds:g} s",
            r.state,
            str(r.runs),
            r.last_run_at.strftime("%H:%M:%S") if r.last_run_at else "",
            r.last_result or "",
            r.next_run_at.strftime("%H:%M:%S") if r.next_run_at else "",
        )
    Console().print(table)


@app.command("trigger")
def trigger(
    job: str = typer.Argument(..., help="The job's name (see `sluice schedules list`)."),
    tenant_id: str | None = TenantOption,
) -> None:
    """Run one job now (the schedule's overlap policy still applies)."""
    from schedules.table import JOBS_BY_NAME

    t = tenant(tenant_id)
    found = JOBS_BY_NAME.get(job)
    if found is None:
        raise fail(f"unknown job {job!r}; jobs: {', '.join(JOBS_BY_NAME)}")
    if not found.enabled:
        raise fail(
            f"job {job!r} is declared but not switched on (arrives with {found.arrives_with})"
        )
    run(_trigger(t, job))
    typer.echo(f"{t}/{job} triggered")


async def _trigger(tenant_id: str, job: str) -> None:
    from temporalio.service import RPCError, RPCStatusCode

    from schedules.sync import schedule_id
    from sluice.errors import NotFoundError
    from sluice.temporal.client import connect

    client = await connect()
    try:
        await client.get_schedule_handle(schedule_id(tenant_id, job)).trigger()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            sid = schedule_id(tenant_id, job)
            raise NotFoundError(f"schedule {sid} does not exist: `sluice schedules sync`") from None
        raise
