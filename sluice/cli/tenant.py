"""``sluice tenant add|remove|list``: a tenant's schema, tables and schedules as one thing."""

from __future__ import annotations

import typer

from sluice.cli.common import fail, run, settings

app = typer.Typer(
    help="Tenants: each has its own schema and its own schedules.", no_args_is_help=True
)


@app.command("add")
def add(tenant_id: str = typer.Argument(..., help="a-z, 0-9 and _, up to 63 characters.")) -> None:
    """Create the tenant's schema and tables and its schedules (idempotent)."""
    from sluice.tenancy import validate_tenant_id

    try:
        validate_tenant_id(tenant_id)
    except Exception as exc:
        raise fail(str(exc)) from None

    async def go() -> object:
        from sluice.temporal.client import connect
        from sluice.tenant_ops import add_tenant

        return await add_tenant(await connect(), tenant_id, settings())

    report = run(go())
    typer.echo(f"tenant {tenant_id} ready; schedules: {report}")


@app.command("remove")
def remove(
    tenant_id: str = typer.Argument(...),
    yes: bool = typer.Option(False, "--yes", help="Confirm: every document of it is dropped."),
) -> None:
    """Delete the tenant's schedules, stop its workflows and drop all its data."""
    if not yes:
        raise fail(f"removing tenant {tenant_id!r} drops all its data: add --yes to confirm")

    async def go() -> object:
        from sluice.temporal.client import connect
        from sluice.tenant_ops import remove_tenant

        return await remove_tenant(await connect(), tenant_id)

    removed = run(go())
    typer.echo(f"tenant removed: {removed}")


@app.command("list")
def list_() -> None:
    """Every tenant (every migrated schema)."""
    from sluice.db.migrate import list_tenants

    for name in run(list_tenants()):
        typer.echo(name)
