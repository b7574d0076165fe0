"""Per-unit figures for capacity planning and Kubernetes resource requests.

Run::

    uv run python -m bench.capacity [--docs 5000] [--cycles 4] [--refresh 5] [--json FILE]

Starts the real stack (embedded Postgres + pgvector, Redis, the Temporal dev server; or
DATABASE_URL / REDIS_URL / TEMPORAL_ADDRESS), then every standard-mode worker kind as
its own process (``python -m sluice.cli.main worker <kind>``, as in production) and
measures:

* **worker memory and CPU**: each process's RSS once ``/readyz`` answers and it has
  been idle ``--idle`` seconds; then a busy phase that gives every kind work (a
  synthetic connector of ``--docs`` × 2 KB: primary, docfetching, docprocessing; a CSV
  export of the documents: heavy; a user file: user_file_processing; the connector's
  deletion: light; ``/metrics`` scrapes: monitoring), after which each process's peak
  RSS (VmHWM, which includes start-up) and the CPU seconds it used in the phase;
* **one connector's refresh cycle**: a filesystem connector over ``--files`` unchanged
  files (modified a day ago) with a ``--refresh`` s interval, run through ``--cycles``
  cycles. The workflow continues-as-new after every attempt, so one cycle is one run:
  its history's events and bytes (the serialized events, as the server stores them,
  payloads unencrypted). Then one prune and one permission sync of that connector
  (child workflows, between attempts) and one sweep run (what a schedule starts);
* **shutdown**: how long each process takes to exit after SIGTERM when idle.

The bench tenant is created after the workers start, so no schedules fire for it
(the primary worker syncs schedules at start-up only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from bench.indexing import peak_rss_mb, start_workers, tree_cpu_seconds, wait_ready

STANDARD = (
    "primary",
    "light",
    "heavy",
    "docprocessing",
    "docfetching",
    "user_file_processing",
    "monitoring",
)


def say(message: str) -> None:
    print(f"[capacity {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run_figures(client: Any, handle: Any) -> dict[str, Any]:
    """Events, bytes and contents of one workflow run's history."""
    from temporalio.api.enums.v1 import EventType

    history = await handle.fetch_history()
    types = [e.event_type for e in history.events]
    return {
        "events": len(history.events),
        "bytes": sum(e.ByteSize() for e in history.events),
        "activities": types.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
        "children": types.count(EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED),
        "timers": types.count(EventType.EVENT_TYPE_TIMER_STARTED),
        "workflow_tasks": types.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
        "closed": types[-1]
        in (
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
        ),
    }


async def chain(client: Any, workflow_id: str) -> list[dict[str, Any]]:
    """Every run of ``workflow_id``, oldest first, with its history figures."""
    found = [wf async for wf in client.list_workflows(f'WorkflowId = "{workflow_id}"')]
    runs = []
    for wf in sorted(found, key=lambda wf: wf.start_time):
        figures = await run_figures(client, client.get_workflow_handle(wf.id, run_id=wf.run_id))
        runs.append({"run_id": wf.run_id, **figures})
    return runs


async def wait_runs(client: Any, workflow_id: str, closed: int, timeout: float) -> None:
    """Until visibility lists ``closed`` closed runs of the chain."""
    deadline = time.monotonic() + timeout
    while True:
        query = f'WorkflowId = "{workflow_id}" AND ExecutionStatus != "Running"'
        if len([wf async for wf in client.list_workflows(query)]) >= closed:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{workflow_id}: fewer than {closed} closed runs")
        await asyncio.sleep(0.5)


async def busy_phase(client: Any, tenant: str, args: argparse.Namespace, tmp: Path) -> dict:
    """Work for every kind; returns what it did and how long each step took."""
    from sluice import connector_ops
    from sluice.exports import ops as export_ops
    from sluice.exports.models import ExportKind, ExportRequest
    from sluice.userfiles import ops as user_file_ops

    steps: dict[str, float] = {}
    t0 = time.monotonic()
    pair = await connector_ops.add_connector(
        client,
        tenant,
        name="load",
        source="synthetic",
        config={"count": args.docs, "size_bytes": 2000, "seed": 7},
    )
    final = await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=1800)
    assert final.last_attempt_status == "success", final
    steps["index"] = time.monotonic() - t0

    t0 = time.monotonic()
    export = ExportRequest(tenant_id=tenant, export_id="capacity", kind=ExportKind.DOCUMENTS)
    await (await export_ops.start(client, export)).result()
    steps["csv_export"] = time.monotonic() - t0

    t0 = time.monotonic()
    note = tmp / "upload.md"
    note.write_text("# Upload\n\n" + "A user's note about capacity planning. " * 200)
    info = await user_file_ops.upload(client, tenant, note, "ann")
    await user_file_ops.wait_processed(client, tenant, info.id)
    steps["user_file"] = time.monotonic() - t0

    t0 = time.monotonic()
    deleted = await connector_ops.delete_connector(client, tenant, pair.id, timeout=1800)
    assert deleted is not None and deleted.pair_deleted, deleted
    steps["deletion"] = time.monotonic() - t0
    return {"steps_seconds": {k: round(v, 1) for k, v in steps.items()}}


async def connector_phase(client: Any, tenant: str, args: argparse.Namespace, tmp: Path) -> dict:
    from schedules.models import SweepInput, SweepResult
    from sluice import connector_ops
    from sluice.temporal.tenant_context import tenant_scope
    from sluice.temporal.workflow_ids import (
        SWEEP,
        connector_workflow_id,
        permission_sync_workflow_id,
        pruning_workflow_id,
    )

    folder = tmp / "corpus"
    folder.mkdir()
    day_ago = time.time() - 86400
    for n in range(args.files):
        path = folder / f"page{n:03d}.md"
        path.write_text(f"# Page {n}\n\n" + f"Paragraph about topic {n}. " * 80)
        os.utime(path, (day_ago, day_ago))
    never = 10**8  # no prune or permission sync unless asked (we ask once below)
    pair = await connector_ops.add_connector(
        client,
        tenant,
        name="cycles",
        source="filesystem",
        config={"path": str(folder)},
        refresh_interval_seconds=args.refresh,
        prune_interval_seconds=never,
        permission_sync_interval_seconds=never,
    )
    wid = connector_workflow_id(tenant, pair.id)
    await connector_ops.wait_for_attempts(
        client, tenant, pair.id, args.cycles + 1, timeout=60 + args.cycles * (args.refresh + 30)
    )
    await wait_runs(client, wid, args.cycles + 1, timeout=60)
    runs = [r for r in await chain(client, wid) if r["closed"]]
    first, cycles = runs[0], runs[1 : args.cycles + 1]

    pruned = await connector_ops.prune(client, tenant, pair.id, wait=True, timeout=300)
    synced = await connector_ops.sync_permissions(client, tenant, pair.id, wait=True, timeout=300)
    await wait_runs(client, wid, len(runs) + 2, timeout=120)
    after = [r for r in await chain(client, wid) if r["closed"]][len(runs) :]
    with_child = [r for r in after if r["children"]]
    prune_child = await run_figures(
        client, client.get_workflow_handle(pruning_workflow_id(tenant, pair.id))
    )
    sync_child = await run_figures(
        client, client.get_workflow_handle(permission_sync_workflow_id(tenant, pair.id))
    )

    with tenant_scope(tenant):
        sweep = await client.start_workflow(
            SWEEP,
            SweepInput(tenant_id=tenant, job="connector-reconcile"),
            id=f"capacity-sweep/{tenant}",
            task_queue="primary",
            result_type=SweepResult,
        )
        await sweep.result()
    sweep_figures = await run_figures(client, sweep)

    def median(key: str, rows: list[dict[str, Any]]) -> float:
        return statistics.median(r[key] for r in rows) if rows else 0

    return {
        "files": args.files,
        "refresh_seconds": args.refresh,
        "first_run": {k: first[k] for k in ("events", "bytes", "activities", "workflow_tasks")},
        "cycle_runs": [
            {k: r[k] for k in ("events", "bytes", "activities", "workflow_tasks")} for r in cycles
        ],
        "cycle_median_events": median("events", cycles),
        "cycle_median_bytes": median("bytes", cycles),
        "prune": {"result": pruned.model_dump() if pruned else None, "child": prune_child},
        "permission_sync": {
            "result": synced.model_dump() if synced else None,
            "child": sync_child,
        },
        "parent_runs_with_a_child": [
            {k: r[k] for k in ("events", "bytes", "children", "workflow_tasks")} for r in with_child
        ],
        "workflow_tasks_in_phase": sum(r["workflow_tasks"] for r in await chain(client, wid))
        + prune_child["workflow_tasks"]
        + sync_child["workflow_tasks"],
        "sweep_run": sweep_figures,
    }


async def scrape_monitoring(port: int, times: int) -> float:
    t0 = time.monotonic()
    for _ in range(times):
        await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read()
        )
        await asyncio.sleep(0.2)
    return time.monotonic() - t0


async def measure(args: argparse.Namespace, workers: list[Any], tmp: Path) -> dict[str, Any]:
    from sluice.config import get_settings
    from sluice.db.engine import dispose_engines
    from sluice.db.migrate import migrate_tenant
    from sluice.temporal.client import connect

    client = await connect(get_settings())
    tenant = "capacity_" + uuid.uuid4().hex[:8]
    await migrate_tenant(tenant)
    monitoring = next(w for w in workers if w.kind == "monitoring")
    cpu_before = {w.kind: tree_cpu_seconds(w.proc.pid) for w in workers}
    say(f"busy phase: {args.docs} documents, export, user file, deletion (tenant {tenant})")
    scrapes = asyncio.create_task(scrape_monitoring(monitoring.port, 20))
    busy = await busy_phase(client, tenant, args, tmp)
    await scrapes
    cpu_after = {w.kind: tree_cpu_seconds(w.proc.pid) for w in workers}
    say(f"connector cycles: {args.cycles} × {args.refresh} s over {args.files} files")
    cycles = await connector_phase(client, tenant, args, tmp)
    cpu_cycles = {w.kind: tree_cpu_seconds(w.proc.pid) for w in workers}
    await dispose_engines()
    return {
        "busy": busy,
        "busy_cpu_seconds": {k: round(cpu_after[k] - cpu_before[k], 1) for k in cpu_after},
        "connector": cycles,
        # Includes the primary worker's idle work (polling) over the phase's wall time.
        "connector_phase_cpu_seconds": {
            k: round(cpu_cycles[k] - cpu_after[k], 2) for k in cpu_after
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--refresh", type=int, default=5)
    parser.add_argument("--idle", type=float, default=10)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    from sluice.config import get_settings
    from sluice.devstack import dev_stack

    with tempfile.TemporaryDirectory(prefix="sluice-capacity-") as tmp_name:
        tmp = Path(tmp_name)
        say("starting the stack")
        with dev_stack(
            tmp / "stack",
            database_url=os.environ.get("DATABASE_URL") or None,
            redis_url=os.environ.get("REDIS_URL") or None,
            temporal_address=os.environ.get("TEMPORAL_ADDRESS") or None,
            ports={"postgres": None, "redis": None, "temporal": None, "temporal_ui": None},
            ui=False,
        ) as stack:
            os.environ.update(stack.env)
            get_settings.cache_clear()
            say(f"starting workers: {', '.join(STANDARD)}")
            started = time.monotonic()
            workers = start_workers(STANDARD, stack.env, tmp / "logs")
            try:
                wait_ready(workers, timeout=300)
                ready_s = time.monotonic() - started
                time.sleep(args.idle)
                idle = {w.kind: round(rss_mb(w.proc.pid)) for w in workers}
                result = asyncio.run(measure(args, workers, tmp))
                peak = {w.kind: round(peak_rss_mb(w.proc.pid)) for w in workers}
                after = {w.kind: round(rss_mb(w.proc.pid)) for w in workers}
            finally:
                exit_s: dict[str, float] = {}
                for w in workers:
                    if w.proc.poll() is None:
                        w.proc.terminate()
                t0 = time.monotonic()
                for w in workers:
                    try:
                        w.proc.wait(60)
                    except Exception:
                        w.proc.kill()
                    exit_s[w.kind] = round(time.monotonic() - t0, 1)
    result = {
        "workers_ready_seconds": round(ready_s, 1),
        "rss_mb": {k: {"idle": idle[k], "peak": peak[k], "after": after[k]} for k in idle},
        **result,
        "sigterm_exit_seconds_idle": exit_s,
    }
    print(json.dumps(result, indent=2))
    if args.json is not None:
        with args.json.open("a") as fh:
            fh.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
