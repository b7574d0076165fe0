"""Shared CLI plumbing: settings, the tenant option, one-line errors, running coroutines.

Every command module imports this one, so it imports typer alone at load time: settings
(pydantic), logging (structlog) and asyncio load when a command runs, not for ``--help``.
"""

from __future__ import annotations

import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from sluice.config import Settings

T = TypeVar("T")

TenantOption = typer.Option(
    None, "--tenant", "-t", help="Tenant ID (default: DEFAULT_TENANT, 'default')."
)


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def settings() -> Settings:
    from sluice.config import get_settings
    from sluice.errors import SluiceError

    try:
        return get_settings()
    except SluiceError as exc:
        raise fail(str(exc)) from None


def tenant(value: str | None) -> str:
    from sluice.cli import failures
    from sluice.errors import SluiceError
    from sluice.tenancy import validate_tenant_id

    try:
        tenant_id = validate_tenant_id(value or settings().default_tenant)
    except SluiceError as exc:
        raise fail(str(exc)) from None
    failures.current_tenant = tenant_id  # named if its tables turn out to be missing
    return tenant_id


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; its errors become one red line and exit code 2 (see failures)."""
    import asyncio

    from sluice.logging import configure_logging

    s = settings()
    # No workflow runs in a CLI process: Temporal's workflow logger is left alone, and so
    # the Temporal SDK is imported only by the commands that talk to Temporal.
    configure_logging(
        s.log_format, s.log_level if sys.stderr.isatty() else "WARNING", workflow_logger=False
    )
    try:
        return asyncio.run(_with_cleanup(coro))
    except Exception as exc:
        from sluice.cli.failures import describe

        line = describe(exc)
        if line is None:
            raise
        raise fail(line) from None


async def _with_cleanup(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return await coro
    finally:
        # Only a command that used the database has engines to close: one that did not
        # (a Temporal query) does not import SQLAlchemy just to find none.
        engine = sys.modules.get("sluice.db.engine")
        if engine is not None:
            await engine.dispose_engines()
