"""``sluice worker``, ``sluice migrate``, ``sluice temporal setup``."""

from __future__ import annotations

import asyncio

import typer

from sluice.cli.common import TenantOption, fail, run, settings, tenant
from sluice.errors import SluiceError
from sluice.logging import configure_logging

temporal_app = typer.Typer(help="Temporal namespace set-up.", no_args_is_help=True)


def worker(
    kind: str = typer.Argument(..., help="Worker kind, e.g. background, light, heavy."),
) -> None:
    """Run one worker process of KIND (serves /healthz and /readyz on HEALTH_PORT)."""
    from workers.kinds import get_kind

    s = settings()
    try:
        get_kind(kind)
    except SluiceError as exc:
        raise fail(str(exc)) from None
    # Imported only now: it pulls in every activity, so a typo fails fast.
    from workers.runner import run_worker

    configure_logging(s.log_format, s.log_level)
    try:
        asyncio.run(run_worker(kind, s))
    except SluiceError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        pass


def migrate(tenant_id: str | None = TenantOption) -> None:
    """Create the tenant's schema and apply every migration (idempotent)."""
    from sluice.db.migrate import migrate_tenant

    t = tenant(tenant_id)
    run(migrate_tenant(t))
    typer.echo(f"tenant {t!r} is at the newest migration")


@temporal_app.command("setup")
def temporal_setup() -> None:
    """Register Sluice's search attributes on TEMPORAL_ADDRESS (idempotent)."""
    from sluice.temporal.setup import register_search_attributes

    added = run(register_search_attributes(settings()))
    typer.echo(f"search attributes ready ({', '.join(added) or 'all present already'})")
