"""``sluice dev``: the whole system on one machine, with one command.

Starts (or uses, where a URL is set) Temporal with its Web UI, PostgreSQL with
pgvector and Redis; migrates the default tenant; starts the workers of the
deployment mode; adds a filesystem connector over a real corpus and indexes it;
then prints where to look and keeps running until Ctrl-C, which stops every
child process, workers first. Meanwhile it supervises the workers: one that dies
is reported and restarted (see :mod:`sluice.supervise`).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from sluice.cli.common import fail
from sluice.errors import SluiceError

if TYPE_CHECKING:
    from sluice.config import Settings
    from sluice.devstack import DevStack
    from sluice.supervise import Worker

console = Console()
REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_NAME = "demo-docs"


def _default_corpus() -> Path:
    return REPO_ROOT / "docs"


def dev(
    corpus: Path | None = typer.Option(
        None, "--corpus", help="Folder to index in the demo (default: the repo's docs/)."
    ),
    demo: bool = typer.Option(True, "--demo/--no-demo", help="Add and index the demo connector."),
    exit_after_demo: bool = typer.Option(
        False, "--exit", help="Stop everything once the demo has indexed (for scripts)."
    ),
) -> None:
    """Run Temporal, Postgres, Redis, the workers and a demo connector; Ctrl-C stops all."""
    from temporalio.service import RPCError

    from sluice.devstack import dev_stack

    # Only the real environment counts here: `.sluice/dev.env` is this command's own
    # output, and one left behind by a killed run points at services that are gone.
    s = _settings_without_dev_env()
    started = time.monotonic()
    corpus = (corpus or _default_corpus()).resolve()
    if demo and not corpus.is_dir():
        raise fail(f"--corpus {corpus}: not a directory")
    console.print(f"[bold]Sluice dev[/] — data in {s.sluice_data_dir.resolve()}")
    try:
        with dev_stack(
            s.sluice_data_dir,
            database_url=s.database_url,
            redis_url=s.redis_url,
            temporal_address=s.temporal_address,
            namespace=s.temporal_namespace,
            codec_token=_codec_token(s),
        ) as stack:
            _run(stack, started, corpus if demo else None, exit_after_demo)
    except SluiceError as exc:
        raise fail(str(exc)) from None
    except RPCError as exc:
        # Everything was stopped above; say what failed in one line, not a traceback.
        raise fail(
            f"Temporal call failed ({exc.status.name if exc.status else 'error'}: {exc.message}); "
            f"see the worker logs in {s.sluice_data_dir.resolve() / 'logs'}"
        ) from None
    console.print("stopped.")


def _codec_token(s: Settings) -> str | None:
    """With payload encryption on, the dev UI gets a codec server guarded by this token
    (SLUICE_CODEC_TOKEN, or a fresh one for this run)."""
    if not s.payload_keys:
        return None
    import secrets

    return s.sluice_codec_token or secrets.token_urlsafe(24)


def _run(stack: DevStack, started: float, corpus: Path | None, exit_after_demo: bool) -> None:
    """With the services up: workers, migrations, the demo, then supervise until Ctrl-C.

    Workers are stopped (gracefully) before this returns, so the services they use are
    still there while they drain.
    """
    import asyncio

    from sluice.config import DEV_ENV_FILE, get_settings
    from sluice.supervise import stop_workers, supervise, wait_ready

    for note in stack.notes:
        console.print(f"[yellow]note:[/] {note}")
    os.environ.update(stack.env)
    env_file = Path(DEV_ENV_FILE)
    _write_env_file(env_file, stack.env)
    get_settings.cache_clear()
    s = get_settings()
    console.print(
        f"services up in {time.monotonic() - started:.1f}s: Temporal {s.temporal_address}, "
        f"Postgres {s.database_url}, Redis {s.redis_url}"
    )
    workers = _workers(stack.data_dir, stack.env)
    try:
        for w in workers:
            w.start()
        asyncio.run(_prepare(s.default_tenant))
        wait_ready(workers)
        _print_workers(workers, time.monotonic() - started, stack.data_dir / "logs")
        if corpus is not None:
            asyncio.run(_demo(s.default_tenant, corpus))
        _print_next_steps(stack.ui_url, s.default_tenant, stack.codec_endpoint)
        if not exit_after_demo:
            supervise(workers, _say)
    finally:
        console.print("stopping workers...")
        stop_workers(workers)
        env_file.unlink(missing_ok=True)
        console.print("stopping services...")


def _say(line: str) -> None:
    """A supervisor line: plain text (paths are not markup), never wrapped mid-path."""
    console.print(line, markup=False, soft_wrap=True)


def _print_workers(workers: list[Worker], took: float, logs: Path) -> None:
    """Each worker's pid, health URL and log: what to look at when one misbehaves."""
    names = ", ".join(w.kind for w in workers)
    console.print(f"workers ready ({names}) in {took:.1f}s since start; logs in {logs}")
    for w in workers:
        _say(f"  worker {w.kind}: pid {w.pid}, health {w.readyz}, log {w.log}")
    _say("  a worker that dies is reported here and restarted")


def _settings_without_dev_env() -> Settings:
    from sluice.config import load_settings

    try:
        return load_settings(_env_file=None)
    except SluiceError as exc:
        raise fail(str(exc)) from None


async def _prepare(tenant_id: str) -> None:
    """The default tenant: schema, tables and schedules (the workers sync schedules too,
    but may start before the tenant's schema exists)."""
    from sluice.config import get_settings
    from sluice.db.engine import dispose_engines
    from sluice.temporal.client import connect
    from sluice.tenant_ops import add_tenant

    try:
        report = await add_tenant(await connect(), tenant_id, get_settings())
    finally:
        await dispose_engines()
    synced = len(report.created) + len(report.updated) + len(report.unchanged)
    console.print(
        f"tenant {tenant_id}: {synced} schedules (`sluice schedules list`, or the Web UI's "
        "Schedules page)"
    )


def _workers(data_dir: Path, env: dict[str, str]) -> list[Worker]:
    """One supervised worker per kind of the deployment mode, each on its own health port."""
    from sluice.config import get_settings
    from sluice.devstack import free_port
    from sluice.supervise import Worker
    from workers.kinds import kinds_for_mode

    workers = []
    for kind in kinds_for_mode(get_settings().sluice_mode):
        port = free_port()
        workers.append(
            Worker(
                kind=kind.name,
                argv=[sys.executable, "-m", "sluice.cli.main", "worker", kind.name],
                env={**os.environ, **env, "HEALTH_PORT": str(port), "LOG_FORMAT": "json"},
                port=port,
                log=data_dir / "logs" / f"worker-{kind.name}.log",
            )
        )
    return workers


async def _demo(tenant_id: str, corpus: Path) -> None:
    from sluice import connector_ops
    from sluice.ccpairs import list_cc_pairs
    from sluice.cli.connector import _print_progress, wait_with_progress
    from sluice.db.engine import dispose_engines
    from sluice.db.session import tenant_connection
    from sluice.index.search import search_chunks
    from sluice.temporal.client import connect

    try:
        client = await connect()
        existing = [p for p in await list_cc_pairs(tenant_id) if p.name == DEMO_NAME]
        if existing and existing[0].config.get("path") == str(corpus):
            pair = existing[0]
            await connector_ops.start_connector_workflow(client, tenant_id, pair)
            before = await connector_ops.progress(client, tenant_id, pair.id)
            await connector_ops.index_now(client, tenant_id, pair.id)
            console.print(f"demo connector exists (cc-pair {pair.id}); indexing changes only")
            target = before.attempts_started + 1
        else:
            for old in existing:
                await connector_ops.delete_connector(client, tenant_id, old.id)
            pair = await connector_ops.add_connector(
                client,
                tenant_id,
                name=DEMO_NAME,
                source="filesystem",
                config={"path": str(corpus)},
                refresh_interval_seconds=3600,
            )
            console.print(f"added demo connector cc-pair {pair.id} over {corpus}")
            target = 1
        t0 = time.monotonic()
        final = await wait_with_progress(client, tenant_id, pair.id, target, timeout=600)
        _print_progress(final)
        console.print(f"demo indexing took {time.monotonic() - t0:.1f}s")
        # The progress query describes the current attempt (none, once it ended): say
        # what the index holds now, so a re-run visibly picks up changed files.
        async with tenant_connection(tenant_id) as (_, raw):
            held = await raw.fetchval(
                "SELECT count(*) FROM document_by_connector_credential_pair WHERE cc_pair_id = $1",
                pair.id,
            )
        console.print(f"the demo connector's index holds {held} documents")
        query = "how does a connector resume after a worker crash"
        hits = await search_chunks(tenant_id, query, limit=3)
        console.print(f'sluice search "{query}":')
        for hit in hits:
            console.print(f"  - {hit.title} [dim]({hit.document_id} #{hit.chunk_id})[/]")
    finally:
        await dispose_engines()


def _print_next_steps(ui_url: str | None, tenant_id: str, codec: str | None = None) -> None:
    from sluice.config import get_settings

    console.print()
    if ui_url:
        console.print(f"[bold green]Temporal Web UI:[/] {ui_url}")
    if codec:
        _say(f"Payloads are encrypted; the UI decrypts them through the codec server {codec}")
    console.print("Try, in another shell (same directory):")
    console.print('  uv run sluice search "checkpoint"')
    console.print("  uv run sluice connector list")
    # The temporal CLI does not read .sluice/dev.env and defaults to 127.0.0.1:7233, which
    # is another server when this stack's Temporal had to move: name this stack's address.
    s = get_settings()
    target = f"--address {s.temporal_address}"
    if codec:
        target += f" --codec-endpoint {codec}"
    if s.temporal_namespace != "default":
        target += f" --namespace {s.temporal_namespace}"
    workflow = f"--workflow-id connector/{tenant_id}/1"
    running = """'SluiceState = "running" AND ExecutionStatus = "Running"'"""
    console.print("The temporal CLI (in .venv/bin/), pointed at this stack's Temporal:")
    for line in (
        f"temporal workflow query  {workflow} --name progress {target}",
        f"temporal workflow signal {workflow} --name pause {target}",
        f"temporal workflow signal {workflow} --name resume {target}",
        f"temporal workflow signal {workflow} --name index_now {target}",
        f"temporal workflow signal {workflow} --name cancel_run {target}",
        f"temporal workflow list --query {running} {target}",
    ):
        _say(f"  {line}")
    console.print("Ctrl-C stops everything.")


def _write_env_file(path: Path, env: dict[str, str]) -> None:
    """Let `sluice ...` in another shell find this stack (real env vars still win)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
