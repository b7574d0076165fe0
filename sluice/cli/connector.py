"""``sluice connector add|list|status|index-now|pause|resume|cancel|delete``.

Imports stay light at module level (typer and rich's console): the database layer, the
Temporal SDK and the workflow models load inside the commands that use them, so
``connector list`` does not load Temporal and ``--help`` loads neither.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from sluice.cli.common import TenantOption, fail, run, tenant
from sluice.errors import SluiceError

if TYPE_CHECKING:
    from sluice.indexing.models import ConnectorProgress, DeletionResult, SettingsApplied

app = typer.Typer(
    help="Add and operate connectors (connector-credential pairs).", no_args_is_help=True
)
console = Console()


def parse_config(pairs: list[str], raw_json: str | None) -> dict[str, Any]:
    """``key=value`` pairs (values parsed as JSON when they can be) and/or a JSON object."""
    config: dict[str, Any] = {}
    if raw_json:
        try:
            loaded = json.loads(raw_json)
        except json.JSONDecodeError as exc:
            raise fail(f"--config-json is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise fail("--config-json must be a JSON object")
        config.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise fail(f"--config {pair!r}: expected key=value")
        try:
            config[key] = json.loads(value)
        except json.JSONDecodeError:
            config[key] = value
    return config


async def wait_with_progress(
    client: Any, tenant_id: str, cc_pair_id: int, attempts: int, timeout: float
) -> ConnectorProgress:
    """Wait until ``attempts`` attempts have ended: a live bar in a terminal, else one
    plain line per state change (readable in logs and CI)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from sluice import connector_ops

    if not console.is_terminal:
        return await connector_ops.wait_for_attempts(
            client, tenant_id, cc_pair_id, attempts, timeout=timeout, on_progress=_line_printer()
        )
    with Progress(
        TextColumn("[bold]cc-pair {task.fields[cc]}[/] {task.fields[state]}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.fields[fetched]} docs"),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("index", total=None, cc=cc_pair_id, state="", detail="", fetched=0)

        def update(p: ConnectorProgress) -> None:
            # Once the attempt has ended, keep its final counts on screen (not "0/0").
            ended = p.attempt_id is None and p.last_attempt_counts is not None
            c = p.last_attempt_counts if ended and p.last_attempt_counts else p.counts
            done = c.docs_indexed + c.docs_skipped + c.docs_failed
            bar.update(
                task,
                completed=done,
                total=max(c.docs_fetched, 1) if p.attempt_id is not None or ended else None,
                fetched=c.docs_fetched,
                state=p.state.value,
                detail=(
                    f"{c.batches} batches, {c.docs_failed} failed, {p.batches_in_flight} in flight"
                ),
            )

        return await connector_ops.wait_for_attempts(
            client, tenant_id, cc_pair_id, attempts, timeout=timeout, on_progress=update
        )


def _line_printer() -> Callable[[ConnectorProgress], None]:
    last: list[tuple[str, int | None, int]] = []

    def show(p: ConnectorProgress) -> None:
        c = p.counts
        key = (p.state.value, p.attempt_id, c.batches // 10)
        if last and last[-1] == key:
            return
        last.append(key)
        console.print(
            f"  cc-pair {p.cc_pair_id} {p.state.value}: attempt {p.attempt_id or '-'}, "
            f"{c.batches} batches, {c.docs_fetched} fetched, {c.docs_indexed} indexed"
        )

    return show


@app.command("add")
def add(
    source: str = typer.Option(..., "--source", "-s", help="filesystem, web or synthetic."),
    name: str = typer.Option(..., "--name", "-n"),
    config: list[str] = typer.Option([], "--config", "-c", help="key=value (repeatable)."),
    config_json: str | None = typer.Option(None, "--config-json", help="Config as a JSON object."),
    refresh: int | None = typer.Option(None, "--refresh", help="Refresh interval in seconds."),
    prune: int | None = typer.Option(None, "--prune", help="Prune interval in seconds."),
    perm_sync: int | None = typer.Option(
        None,
        "--perm-sync",
        help="Permission-sync interval in seconds (default PERMISSION_SYNC_INTERVAL_SECONDS).",
    ),
    wait: bool = typer.Option(False, "--wait", help="Wait for the first run, with a progress bar."),
    timeout: float = typer.Option(3600, "--timeout", help="Seconds --wait waits at most."),
    tenant_id: str | None = TenantOption,
) -> None:
    """Add a connector and start its workflow (validated first: nothing is half-created)."""
    from sluice import connector_ops
    from sluice.ccpairs import check_request
    from sluice.temporal.client import connect

    t = tenant(tenant_id)
    cfg = parse_config(config, config_json)

    async def go() -> None:
        # Validate before anything else: a bad request fails the same with or without
        # a reachable Temporal, and creates nothing.
        check_request(source, cfg, refresh, prune)
        client = await connect()
        pair = await connector_ops.add_connector(
            client,
            t,
            name=name,
            source=source,
            config=cfg,
            refresh_interval_seconds=refresh,
            prune_interval_seconds=prune,
            permission_sync_interval_seconds=perm_sync,
        )
        console.print(
            f"added cc-pair [bold]{pair.id}[/] ({source}); workflow "
            f"[cyan]connector/{t}/{pair.id}[/]"
        )
        if wait:
            final = await wait_with_progress(client, t, pair.id, 1, timeout)
            _print_progress(final)

    run(go())


@app.command("list")
def list_(tenant_id: str | None = TenantOption) -> None:
    """List connectors with their status."""
    from rich.table import Table

    from sluice.ccpairs import list_cc_pairs

    t = tenant(tenant_id)
    pairs = run(list_cc_pairs(t))
    table = Table("id", "name", "source", "status", "refresh s", "last indexed", "flag")
    for p in pairs:
        table.add_row(
            str(p.id),
            p.name,
            p.source,
            p.status,
            str(p.refresh_interval_seconds or "-"),
            p.last_successful_index_at.isoformat(timespec="seconds")
            if p.last_successful_index_at
            else "-",
            p.flag_reason or "",
        )
    console.print(table)


def _print_progress(p: ConnectorProgress) -> None:
    running = p.attempt_id is not None
    c = p.counts if running else (p.last_attempt_counts or p.counts)
    which = (
        f"attempt {p.attempt_id} (running)"
        if running
        else (f"last attempt: {p.last_attempt_status or 'none yet'}")
    )
    console.print(
        f"cc-pair {p.cc_pair_id} [bold]{p.state.value}[/], {p.attempts_started} attempts; "
        f"{which}: {c.batches} batches, {c.docs_fetched} fetched, {c.docs_indexed} indexed, "
        f"{c.docs_skipped} unchanged, {c.docs_failed} failed"
    )
    if p.last_error:
        console.print(f"  last error: {p.last_error}")
    if p.invalid_reason:
        console.print(f"  invalid: {p.invalid_reason}")
    if (perm := p.last_permission_sync) is not None:
        console.print(
            f"  last permission sync: {perm.listed} listed, {perm.changed} ACLs changed, "
            f"{perm.groups.groups} groups, {perm.seconds:.1f} s"
        )


@app.command("status")
def status(
    cc_pair_id: int = typer.Argument(...),
    as_json: bool = typer.Option(False, "--json"),
    tenant_id: str | None = TenantOption,
) -> None:
    """Show the connector's live progress (the workflow's `progress` query)."""
    from sluice import connector_ops
    from sluice.temporal.client import connect

    t = tenant(tenant_id)

    async def go() -> ConnectorProgress:
        return await connector_ops.progress(await connect(), t, cc_pair_id, running_only=True)

    p = run(go())
    if as_json:
        typer.echo(p.model_dump_json(indent=2))
    else:
        _print_progress(p)


AllOption = typer.Option(False, "--all", help="Every connector of the tenant.")
SourceOption = typer.Option(None, "--source", help="Every connector of this source.")
StatusOption = typer.Option(
    None, "--status", help="Every connector in this status: active, paused, invalid, failed."
)


def _bulk_or_one(
    operation: str,
    cc_pair_id: int | None,
    every: bool,
    source: str | None,
    status: str | None,
    tenant_id: str | None,
) -> bool:
    """Run ``operation`` over the selected connectors when a selector is given (True)."""
    from sluice.bulk import BulkOperation, BulkSelector

    selector = BulkSelector(all=every, source=source, status=status)
    selecting = every or source is not None or status is not None
    if cc_pair_id is not None and selecting:
        raise fail("give a cc-pair ID or --all/--source/--status, not both")
    if cc_pair_id is not None:
        return False
    if not selecting:
        raise fail("give a cc-pair ID, or select connectors with --all, --source S or --status X")
    t = tenant(tenant_id)
    try:
        selector.check()
    except SluiceError as exc:
        raise fail(str(exc)) from None

    async def go() -> None:
        from sluice import connector_ops
        from sluice.temporal.client import connect

        client = await connect()
        # The command waits for the bulk workflow's result: refuse up front what would make
        # it wait for ever (its activity retrying a missing tenant, nobody to run it).
        await _require_tenant(t)
        await _require_worker(client, f"the bulk {operation} ({selector.describe()})")
        result = await connector_ops.bulk(client, t, BulkOperation(operation), selector)
        console.print(
            f"{operation} sent to {len(result.signalled)} of {len(result.selected)} connectors"
            + (f"; not running: {result.not_running}" if result.not_running else "")
        )

    run(go())
    return True


@app.command("index-now")
def index_now(
    cc_pair_id: int | None = typer.Argument(None),
    from_beginning: bool = typer.Option(False, "--from-beginning"),
    wait: bool = typer.Option(False, "--wait"),
    timeout: float = typer.Option(3600, "--timeout"),
    every: bool = AllOption,
    source: str | None = SourceOption,
    status: str | None = StatusOption,
    tenant_id: str | None = TenantOption,
) -> None:
    """Run an indexing attempt now (optionally re-fetching everything); one connector, or
    many at once with --all / --source / --status."""
    from sluice import connector_ops
    from sluice.temporal.client import connect

    if _bulk_or_one("index_now", cc_pair_id, every, source, status, tenant_id):
        return
    assert cc_pair_id is not None
    t = tenant(tenant_id)

    async def go() -> None:
        client = await connect()
        started = await _attempts_started(client, t, cc_pair_id) if wait else 0
        await connector_ops.index_now(client, t, cc_pair_id, from_beginning)
        console.print(f"index-now sent to cc-pair {cc_pair_id}")
        if wait:
            final = await wait_with_progress(client, t, cc_pair_id, started + 1, timeout)
            _print_progress(final)

    run(go())


@app.command("update")
def update(
    cc_pair_id: int = typer.Argument(...),
    refresh: int | None = typer.Option(
        None, "--refresh", help="Refresh interval in seconds (0: index-now only)."
    ),
    config: list[str] = typer.Option([], "--config", "-c", help="key=value to set (repeatable)."),
    config_json: str | None = typer.Option(None, "--config-json", help="Keys as a JSON object."),
    tenant_id: str | None = TenantOption,
) -> None:
    """Change a running connector's interval or config (a workflow Update, no restart)."""
    from sluice import connector_ops
    from sluice.temporal.client import connect

    t = tenant(tenant_id)
    changes = parse_config(config, config_json)
    if refresh is not None and refresh < 0:
        raise fail(f"--refresh {refresh}: must be a positive number of seconds (0: index-now only)")
    if refresh is None and not changes:
        raise fail("nothing to change: give --refresh or --config key=value")

    async def go() -> SettingsApplied:
        import asyncio

        from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError

        from sluice.ccpairs import get_cc_pair

        client = await connect()
        await get_cc_pair(t, cc_pair_id)  # no such cc-pair (or tenant) comes first
        # The Update waits until a worker has validated and applied it: with none polling,
        # say so and send nothing; one that does not answer is bounded (it may apply later).
        await _require_worker(client, f"updating cc-pair {cc_pair_id}")
        try:
            async with asyncio.timeout(UPDATE_TIMEOUT_SECONDS):
                return await connector_ops.update_connector(
                    client, t, cc_pair_id, refresh_interval_seconds=refresh, config=changes
                )
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise SluiceError(
                f"cc-pair {cc_pair_id}'s workflow did not accept the update within "
                f"{UPDATE_TIMEOUT_SECONDS:.0f}s: is a worker running? (sluice status); "
                "it may still apply once a worker picks it up"
            ) from None

    applied = run(go())
    every = (
        f"every {applied.refresh_interval_seconds} s"
        if applied.refresh_interval_seconds
        else ("on index-now only")
    )
    due = applied.next_run_in_seconds
    console.print(
        f"cc-pair {cc_pair_id} updated: refresh {every}"
        + (f", next run in {due:.0f} s" if due is not None else "")
        + (f"; config {json.dumps(applied.config, sort_keys=True)}" if changes else "")
    )


@app.command("retry-failed")
def retry_failed(
    cc_pair_id: int = typer.Argument(...),
    wait: bool = typer.Option(False, "--wait"),
    timeout: float = typer.Option(3600, "--timeout"),
    tenant_id: str | None = TenantOption,
) -> None:
    """Fetch again only the documents recent attempts recorded as failed (by ID)."""
    from sluice import connector_ops
    from sluice.temporal.client import connect

    t = tenant(tenant_id)

    async def go() -> None:
        client = await connect()
        started = await _attempts_started(client, t, cc_pair_id) if wait else 0
        await connector_ops.retry_failed(client, t, cc_pair_id)
        console.print(f"retry-failed sent to cc-pair {cc_pair_id}")
        if wait:
            final = await wait_with_progress(client, t, cc_pair_id, started + 1, timeout)
            _print_progress(final)

    run(go())


@app.command("prune")
def prune(
    cc_pair_id: int = typer.Argument(...),
    wait: bool = typer.Option(False, "--wait", help="Wait for the pruning run's counts."),
    timeout: float = typer.Option(600, "--timeout"),
    tenant_id: str | None = TenantOption,
) -> None:
    """Remove documents that vanished at the source (runs between attempts)."""
    from sluice import connector_ops
    from sluice.temporal.client import connect

    t = tenant(tenant_id)

    async def go() -> None:
        client = await connect()
        result = await connector_ops.prune(client, t, cc_pair_id, wait=wait, timeout=timeout)
        console.print(f"prune sent to cc-pair {cc_pair_id}")
        if result is not None:
            if result.refused:
                raise fail(f"cc-pair {cc_pair_id}: {result.refused}")
            console.print(
                f"cc-pair {cc_pair_id} pruned: the source lists {result.listed}, "
                f"{result.vanished} vanished, {result.deleted} documents deleted, "
                f"{result.unlinked - result.deleted} kept for other connectors"
            )

    run(go())


@app.command("sync-permissions")
def sync_permissions(
    cc_pair_id: int = typer.Argument(...),
    wait: bool = typer.Option(False, "--wait", help="Wait for the permission-sync counts."),
    timeout: float = typer.Option(600, "--timeout"),
    tenant_id: str | None = TenantOption,
) -> None:
    """Read ACLs and groups at the source again (runs between attempts, no re-embedding)."""
    from sluice import connector_ops
    from sluice.temporal.client import connect

    t = tenant(tenant_id)

    async def go() -> None:
        client = await connect()
        result = await connector_ops.sync_permissions(
            client, t, cc_pair_id, wait=wait, timeout=timeout
        )
        console.print(f"sync-permissions sent to cc-pair {cc_pair_id}")
        if result is not None:
            groups = (
                f"{result.groups.groups} groups, {result.groups.memberships} memberships"
                if result.groups.synced
                else "no groups at this source"
            )
            console.print(
                f"cc-pair {cc_pair_id} permissions synced in {result.seconds:.1f} s: the source "
                f"lists {result.listed}, {result.changed} ACLs changed, {result.written} "
                f"written in {result.batches} batches; {groups}"
            )

    run(go())


UPDATE_TIMEOUT_SECONDS = 10.0
"""How long `update` waits for the connector's workflow to accept the Update."""


async def _attempts_started(client: Any, tenant_id: str, cc_pair_id: int) -> int:
    """Attempts started so far, for ``--wait`` of a command that starts one. A closed
    (terminated) workflow still answers from history, but the command starts a new one
    that counts from 0: waiting for the old count + 1 would only time out."""
    from sluice import connector_ops
    from sluice.ccpairs import get_cc_pair
    from sluice.errors import NotFoundError

    try:
        current = await connector_ops.progress(client, tenant_id, cc_pair_id, running_only=True)
    except NotFoundError:
        await get_cc_pair(tenant_id, cc_pair_id)  # the pair itself missing: say that
        return 0  # only its workflow is gone
    return current.attempts_started


async def _require_worker(client: Any, what: str) -> None:
    """Before sending what only a worker completes, and the command waits for: with no
    worker polling the workflows' queue, fail now, nothing sent."""
    from sluice.monitoring import describe_queue
    from sluice.queues import TaskQueue

    queue = TaskQueue.PRIMARY.value
    described = await describe_queue(client, queue, "workflow")
    if described.error is not None:
        return  # Temporal could not say: let the call itself decide
    if not described.pollers:
        raise SluiceError(
            f"no worker is polling task queue {queue!r} (start one: `sluice dev` or "
            f"`sluice worker background`): {what} needs one; nothing was sent"
        )


async def _require_tenant(tenant_id: str) -> None:
    from sluice.db.migrate import list_tenants

    if tenant_id not in await list_tenants():
        raise SluiceError(
            f"tenant {tenant_id!r} does not exist in this database "
            f"(create it with `sluice migrate --tenant {tenant_id}`)"
        )


def _signal(name: str, cc_pair_id: int, tenant_id: str | None) -> None:
    from sluice import connector_ops
    from sluice.temporal.client import connect

    t = tenant(tenant_id)

    async def go() -> None:
        await connector_ops.send(await connect(), t, cc_pair_id, name)

    run(go())
    console.print(f"{name} sent to cc-pair {cc_pair_id}")


@app.command("pause")
def pause(
    cc_pair_id: int | None = typer.Argument(None),
    every: bool = AllOption,
    source: str | None = SourceOption,
    status: str | None = StatusOption,
    tenant_id: str | None = TenantOption,
) -> None:
    """Pause: the running attempt stops (resumable); no new runs until resumed."""
    if not _bulk_or_one("pause", cc_pair_id, every, source, status, tenant_id):
        assert cc_pair_id is not None
        _signal("pause", cc_pair_id, tenant_id)


@app.command("resume")
def resume(
    cc_pair_id: int | None = typer.Argument(None),
    every: bool = AllOption,
    source: str | None = SourceOption,
    status: str | None = StatusOption,
    tenant_id: str | None = TenantOption,
) -> None:
    """Resume a paused (or invalid) connector."""
    if not _bulk_or_one("resume", cc_pair_id, every, source, status, tenant_id):
        assert cc_pair_id is not None
        _signal("resume", cc_pair_id, tenant_id)


@app.command("cancel")
def cancel(cc_pair_id: int = typer.Argument(...), tenant_id: str | None = TenantOption) -> None:
    """Cancel the running attempt; the next run resumes from its checkpoint."""
    from sluice import connector_ops
    from sluice.temporal.client import connect

    t = tenant(tenant_id)

    async def go() -> bool:
        client = await connect()
        current = await connector_ops.progress(client, t, cc_pair_id, running_only=True)
        if current.attempt_id is None:
            return False
        await connector_ops.send(client, t, cc_pair_id, "cancel_run")
        return True

    if run(go()):
        console.print(f"cancel_run sent to cc-pair {cc_pair_id}")
    else:
        console.print(f"cc-pair {cc_pair_id} has no attempt running: nothing to cancel")


@app.command("delete")
def delete(
    cc_pair_id: int = typer.Argument(...),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
    tenant_id: str | None = TenantOption,
) -> None:
    """Delete the connector and the documents only it held: its workflow stops cleanly
    (the running attempt closed), then its deletion workflow removes everything."""
    from sluice import connector_ops
    from sluice.ccpairs import get_cc_pair
    from sluice.temporal.client import connect

    t = tenant(tenant_id)
    run(get_cc_pair(t, cc_pair_id))  # no such cc-pair (or tenant): say so before asking
    if not yes:
        typer.confirm(f"delete cc-pair {cc_pair_id} and its documents?", abort=True)

    async def go() -> DeletionResult | None:
        return await connector_ops.delete_connector(await connect(), t, cc_pair_id)

    result = run(go())
    assert result is not None
    shared = result.links_removed - result.documents_deleted
    console.print(
        f"deleted cc-pair {cc_pair_id} ({result.documents_deleted} documents removed, "
        f"{shared} shared with other connectors kept)"
    )
