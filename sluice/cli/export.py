"""``sluice export attempts|documents|errors [--cc-pair N] --out FILE``.

The export runs on a heavy worker (queue ``csv_generation``), streamed page by page into
the file store; this command shows its progress from the heartbeats and copies the file
to ``--out`` when it is done. A worker that dies mid-export is replaced without a
duplicated or missing row.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from sluice.cli.common import TenantOption, fail, run, tenant

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle

    from sluice.exports.models import ExportResult

KINDS = ("attempts", "documents", "errors")


def export(
    kind: str = typer.Argument(..., help="attempts, documents or errors."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the CSV."),
    cc_pair: int | None = typer.Option(None, "--cc-pair", help="Only this cc-pair's rows."),
    page_size: int = typer.Option(5000, "--page-size", min=1, max=100_000),
    tenant_id: str | None = TenantOption,
) -> None:
    """Export rows as CSV (streamed, resumable), with a progress bar."""
    if kind not in KINDS:
        raise fail(f"unknown export {kind!r}: expected one of {', '.join(KINDS)}")
    t = tenant(tenant_id)

    async def go() -> None:
        from sluice.exports import ops
        from sluice.exports.models import ExportKind, ExportRequest
        from sluice.temporal.client import connect

        client = await connect()
        request = ExportRequest(
            tenant_id=t,
            export_id=ops.new_export_id(),
            kind=ExportKind(kind),
            cc_pair_id=cc_pair,
            page_size=page_size,
        )
        handle = await ops.start(client, request)
        result = await _watch(client, handle, t)
        await ops.copy_out(result, out)
        rate = result.rows / result.seconds if result.seconds else 0.0
        typer.echo(
            f"{result.rows} rows ({result.bytes} bytes) in {result.seconds:.1f} s "
            f"({rate:,.0f} rows/s) -> {out}"
        )

    run(go())


async def _watch(
    client: Client, handle: WorkflowHandle[Any, ExportResult], tenant_id: str
) -> ExportResult:
    """Show the heartbeated position until the workflow ends; its result."""
    import asyncio

    from rich.progress import Progress

    from sluice.exports import ops
    from sluice.temporal.tenant_context import tenant_scope

    with tenant_scope(tenant_id):
        done = asyncio.ensure_future(handle.result())
    with Progress(transient=True) as bar:
        task = bar.add_task("exporting", total=None)
        while not done.done():
            await asyncio.wait({done}, timeout=0.5)
            pos = await ops.position(client, handle, tenant_id)
            if pos is not None:
                bar.update(task, total=pos.total or None, completed=pos.rows)
    return done.result()
