"""``sluice index create|update|delete|status``: seed 002's document indexes from the shell.

Registered on the ``sluice index`` group (``sluice/cli/index.py``). Imports typer alone at
load time; the scheduler, database and Temporal load inside each command.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from sluice.cli.common import TenantOption, fail, run, tenant

if TYPE_CHECKING:
    from sluice.scheduler import TaskResult, TemporalTaskScheduler

TypesOption = typer.Option(
    "", "--types", help="Comma-separated: vector, fulltext, graph, summary (default: all)."
)
WaitOption = typer.Option(False, "--wait", help="Wait until the task is done.")


def _types(value: str) -> list[str]:
    from sluice.documents.models import parse_index_types
    from sluice.errors import ConfigurationError

    names = [v.strip() for v in value.split(",") if v.strip()]
    try:
        return [t.value for t in parse_index_types(names)]
    except ConfigurationError as exc:
        raise fail(f"--types: {str(exc).removeprefix('index_types: ')}") from None


async def _scheduler(tenant_id: str) -> TemporalTaskScheduler:
    from sluice.scheduler import TemporalTaskScheduler
    from sluice.temporal.client import connect

    return TemporalTaskScheduler(await connect(), tenant_id)


def _echo_result(result: TaskResult) -> None:
    typer.echo(
        f"task {result.task_id}: {result.status}" + (f" ({result.error})" if result.error else "")
    )
    for kind, row in ((result.data or {}).get("indexes") or {}).items():
        typer.echo(
            f"  {kind:<9} {row['status']:<9} v{row['version']} (active: v{row['observed_version']})"
            + (f"  {row['error']}" if row["error"] else "")
        )


async def _finish(scheduler: TemporalTaskScheduler, task_id: str, wait: bool) -> None:
    typer.echo(f"task {task_id}")
    if not wait:
        return
    while True:
        result = await scheduler.get_task_status(task_id)
        if result is None or result.done:
            break
        await asyncio.sleep(0.5)
    if result is not None:
        _echo_result(result)
        if not result.success:
            raise typer.Exit(1)


def create(
    paths: list[Path] = typer.Argument(..., help="Files to add (text, Markdown, HTML)."),
    collection: str = typer.Option(..., "--collection", "-c", help="The collection."),
    types: str = TypesOption,
    wait: bool = WaitOption,
    tenant_id: str | None = TenantOption,
) -> None:
    """Add documents to a collection and build their indexes (parse → indexes in parallel)."""
    t, kinds = tenant(tenant_id), _types(types)
    for path in paths:
        if not path.is_file():
            raise fail(f"paths: {path} is not a file")

    async def go() -> None:
        from sluice.documents import ops

        scheduler = await _scheduler(t)
        for path in paths:
            doc_id = await ops.add_file(t, collection, path)
            typer.echo(f"document {doc_id}")
            await _finish(scheduler, await scheduler.schedule_create_index(doc_id, kinds), wait)

    run(go())


def update(
    document_id: str = typer.Argument(..., help="Document ID (as `create` printed it)."),
    types: str = TypesOption,
    wait: bool = WaitOption,
    tenant_id: str | None = TenantOption,
) -> None:
    """Rebuild a document's indexes (also how a failed index is retried)."""
    t, kinds = tenant(tenant_id), _types(types)

    async def go() -> None:
        scheduler = await _scheduler(t)
        await _finish(scheduler, await scheduler.schedule_update_index(document_id, kinds), wait)

    run(go())


def delete(
    document_id: str | None = typer.Argument(None, help="Document ID."),
    types: str = TypesOption,
    collection: str | None = typer.Option(
        None, "--collection", help="Delete a whole collection instead (collection GC)."
    ),
    wait: bool = WaitOption,
    tenant_id: str | None = TenantOption,
) -> None:
    """Remove a document's indexes (every trace), or mark a collection deleted."""
    t, kinds = tenant(tenant_id), _types(types)
    if (document_id is None) == (collection is None):
        raise fail("document_id: give a document ID or --collection, not both")
    if collection is not None:
        run(_delete_collection(t, collection))
        return

    async def go() -> None:
        scheduler = await _scheduler(t)
        await _finish(
            scheduler, await scheduler.schedule_delete_index(str(document_id), kinds), wait
        )

    run(go())


async def _delete_collection(tenant_id: str, collection: str) -> None:
    from sluice.documents import ops

    if not await ops.delete_collection(tenant_id, collection):
        raise fail(f"--collection: no active collection {collection!r}")
    typer.echo(f"collection {collection} marked deleted; collection GC removes its rows")


def status(
    target: str = typer.Argument(..., help="A task ID, or a document ID."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document."),
    tenant_id: str | None = TenantOption,
) -> None:
    """A task's status, or every index state row of a document."""
    t = tenant(tenant_id)
    found: Any = run(_status(t, target))
    if as_json:
        typer.echo(json.dumps(found if isinstance(found, list) else found.model_dump(), indent=2))
    elif isinstance(found, list):
        for row in found:
            typer.echo(
                f"{row['index_type']:<9} {row['status']:<9} v{row['version']} "
                f"(active: v{row['observed_version']}) {row['error'] or ''}".rstrip()
            )
    else:
        _echo_result(found)


async def _status(tenant_id: str, target: str) -> Any:
    from sluice.documents import ops

    if target.split("-", 1)[0] in ("create", "update", "delete") and ":" not in target:
        result = await (await _scheduler(tenant_id)).get_task_status(target)
        if result is None:
            raise fail(f"target: no task {target!r}")
        return result
    return [s.model_dump() for s in await ops.document_states(tenant_id, target)]


def register(app: typer.Typer) -> None:
    for name, fn in (
        ("create", create),
        ("update", update),
        ("delete", delete),
        ("status", status),
    ):
        app.command(name)(fn)
