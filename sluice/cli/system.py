"""``sluice worker``, ``sluice status``, ``sluice migrate``, ``sluice temporal setup``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from sluice.cli.common import TenantOption, fail, run, settings, tenant
from sluice.errors import SluiceError

if TYPE_CHECKING:
    from rich.console import Console

    from sluice.status import Report

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
    # Imported only now: the runner pulls in every activity, so a typo fails fast.
    import asyncio

    from sluice.logging import configure_logging
    from workers.runner import run_worker

    configure_logging(s.log_format, s.log_level)
    try:
        asyncio.run(run_worker(kind, s))
    except SluiceError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        pass


def status(
    queues: list[str] | None = typer.Option(
        None, "--queue", "-q", help="Only this task queue (repeatable; default: every queue)."
    ),
    tenant_id: str | None = TenantOption,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Show whether Temporal, Postgres and Redis answer, each task queue's pollers and
    backlog, and the tenant's connectors and index size; alert-worthy states are marked.

    Exit code 0 when all is well, 1 when a service is down, a queue has no poller, or
    an alert holds (backlog older than ALERT_BACKLOG_MINUTES, a failing connector).
    """
    from sluice.queues import ALL_QUEUES
    from sluice.status import collect

    known = [q.value for q in ALL_QUEUES]
    unknown = [q for q in queues or [] if q not in known]
    if unknown:
        raise fail(f"unknown task queue {unknown[0]!r}; expected one of: {', '.join(known)}")
    t = tenant(tenant_id)
    report = run(collect(settings(), list(dict.fromkeys(queues or known)), t))
    if as_json:
        import json

        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        _print_report(report)
    if not report.healthy:
        raise typer.Exit(1)


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m"


def _print_report(report: Report) -> None:
    """Tables and a verdict; every cell is plain text (errors may contain brackets)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    services = Table("service", "state")
    for svc in report.services:
        services.add_row(svc.name, Text(svc.detail, style="green" if svc.ok else "red"))
    console.print(services)
    queues = Table("queue", "state", "pollers", "backlog", "oldest")
    for q in report.queues:
        pollers = sorted({*q.workflow_pollers, *q.activity_pollers})
        queues.add_row(
            q.queue,
            Text(q.state, style="green" if q.polled else "red"),
            Text(", ".join(pollers) or "-"),
            str(q.backlog),
            _minutes(q.backlog_age_seconds) if q.backlog else "-",
        )
    console.print(queues)
    _print_connectors(console, report)
    _print_verdict(console, report)


def _print_connectors(console: Console, report: Report) -> None:
    from rich.table import Table
    from rich.text import Text

    if report.figures is None or not report.figures.connectors:
        return
    table = Table("cc-pair", "name", "state", "last attempt", "took", "last success", "attempts")
    for c in report.figures.connectors:
        state = Text("failing", style="red") if c.failing else Text(c.status, style="green")
        table.add_row(
            str(c.cc_pair),
            Text(c.name),
            state,
            c.last_attempt_status or "-",
            _minutes(c.last_attempt_seconds),
            f"{_minutes(c.last_success_age_seconds)} ago" if c.last_success_age_seconds else "-",
            ", ".join(f"{k} {v}" for k, v in sorted(c.attempts.items())),
        )
    console.print(table)
    for index in report.figures.index:
        console.print(
            f"index of {index.tenant}: {index.documents} documents, {index.chunks} chunks"
        )


def _print_verdict(console: Console, report: Report) -> None:
    from rich.text import Text

    for note in report.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    for line in report.alerts:
        console.print(Text(f"ALERT: {line}", style="bold red"))
    down = [s.name for s in report.services if not s.ok]
    idle = [q for q in report.queues if not q.polled and q.error is None]
    unknown = [q for q in report.queues if q.error is not None]
    if report.healthy:
        console.print(f"healthy: {len(report.queues)} queues polled")
        return
    parts = [f"{', '.join(down)} down"] if down else []
    parts += [f"{len(idle)} of {len(report.queues)} queues not polled"] if idle else []
    parts += [f"{len(unknown)} queues not checked"] if unknown else []
    parts += [f"{len(report.alerts)} alerts"] if report.alerts else []
    console.print(Text(f"unhealthy: {'; '.join(parts)}", style="red"))


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
