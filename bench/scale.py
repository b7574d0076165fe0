"""Scale: many idle connector workflows, index_now latency under them, a long run's memory.

Run::

    uv run python -m bench.scale [--idle 1000] [--idle-seconds 60] [--sample 100]
        [--docs 100000] [--size 2000] [--skip idle|run] [--json FILE]

Starts the real stack (embedded Postgres + pgvector, Redis, the Temporal dev server; or
the ones named by DATABASE_URL / REDIS_URL / TEMPORAL_ADDRESS) and one
``python -m sluice.cli.main worker background`` process, as ``bench/indexing.py`` does,
then measures, each figure in this run:

1. **idle connectors**: the worker's, the Temporal server's and Postgres' CPU (CPU
   seconds / wall seconds, from ``/proc/<pid>/stat``; Postgres is the postmaster and
   every backend) and RSS (``/proc/<pid>/status``, sampled every second), first with no
   connector (baseline), then with ``--idle`` synthetic connectors (count=1, refresh
   every ``--idle-refresh`` s) waiting on their timers after their first attempt; and how
   long adding them and their first attempts took;
2. **index_now -> first fetch**: ``connector_ops.index_now`` (what ``sluice connector
   index-now`` calls) to ``--sample`` of those connectors, one every
   ``--index-now-interval`` s. The latency is read afterwards from each signalled run's
   history: from the client's call to the ``ActivityTaskStarted`` event of its
   ``fetch_documents`` (server time on the same host), so nothing polls meanwhile;
3. **history per connector per day**: one more connector of the same source, refreshing
   every ``--cycle-refresh`` s for ``--cycles`` cycles; each cycle is one
   continued-as-new run, its events and serialized bytes read as ``bench/capacity.py``
   does, then multiplied by the cycles a day holds at ``--day-refresh``;
4. **a long run**: one synthetic connector of ``--docs`` documents x ``--size`` bytes,
   the worker's RSS sampled every second against the attempt's ``docs_indexed``: RSS at
   start, max and end, the least-squares slope in MB per 10,000 documents, and a verdict.

``--skip idle`` leaves out 1-3, ``--skip run`` leaves out 4.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.capacity import chain, wait_runs
from bench.indexing import (
    WorkerProc,
    _terminate_as_interrupt,
    _ts,
    peak_rss_mb,
    start_workers,
    stop_workers,
    tree_cpu_seconds,
    wait_ready,
)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TERMINAL = ("success", "completed_with_errors", "failed", "canceled", "interrupted")
FLAT_MB = 50.0
FLAT_FRACTION = 0.15
"""The run's RSS is "flat" if its growth (max - start) is under 50 MB or under 15 %.
The steady-state verdict applies the same rule from the first indexed batch on."""


def say(message: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- /proc ------------------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` itself (fields 14 and 15 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def proc_rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` in MiB (/proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass(frozen=True)
class Pids:
    worker: int
    temporal: int | None
    postgres: int | None


def cpu_now(pids: Pids) -> dict[str, float]:
    used = {"worker": proc_cpu_seconds(pids.worker)}
    if pids.temporal is not None:
        used["temporal"] = proc_cpu_seconds(pids.temporal)
    if pids.postgres is not None:  # postmaster, live backends and reaped ones
        used["postgres"] = tree_cpu_seconds(pids.postgres)
    return used


async def sample_idle(pids: Pids, seconds: float) -> dict[str, Any]:
    """CPU % (CPU seconds / wall) per process and RSS every second, over ``seconds``."""
    rss: dict[str, list[float]] = {"worker": [], "temporal": []}
    before, t0 = cpu_now(pids), time.monotonic()
    while (elapsed := time.monotonic() - t0) < seconds:
        rss["worker"].append(proc_rss_mb(pids.worker))
        if pids.temporal is not None:
            rss["temporal"].append(proc_rss_mb(pids.temporal))
        await asyncio.sleep(min(1.0, max(0.0, seconds - elapsed)))
    after, wall = cpu_now(pids), time.monotonic() - t0
    out: dict[str, Any] = {"seconds": round(wall, 1)}
    for name, value in after.items():
        used = value - before[name]
        out[name] = {"cpu_s": round(used, 2), "cpu_pct": round(100 * used / wall, 2)}
        if rss.get(name):
            out[name]["rss_mb_mean"] = round(statistics.fmean(rss[name]), 1)
            out[name]["rss_mb_max"] = round(max(rss[name]), 1)
    t = os.getloadavg()
    out["loadavg"] = [round(x, 2) for x in t]
    return out


# --- database ---------------------------------------------------------------------------


async def count_terminal_attempts(tenant: str, cc_pair_ids: list[int] | None = None) -> int:
    from sluice.db.session import tenant_connection

    query = "SELECT count(*) FROM index_attempt WHERE status = ANY($1::text[])"
    async with tenant_connection(tenant) as (_, raw):
        if cc_pair_ids is None:
            return int(await raw.fetchval(query, list(TERMINAL)))
        query += " AND cc_pair_id = ANY($2::int[])"
        return int(await raw.fetchval(query, list(TERMINAL), cc_pair_ids))


async def latest_attempt(tenant: str, cc_pair_id: int) -> tuple[str | None, int]:
    """(status, docs_indexed) of the pair's latest attempt."""
    from sluice.db.session import tenant_connection

    async with tenant_connection(tenant) as (_, raw):
        row = await raw.fetchrow(
            "SELECT status, docs_indexed FROM index_attempt WHERE cc_pair_id = $1 "
            "ORDER BY id DESC LIMIT 1",
            cc_pair_id,
        )
    return (row["status"], int(row["docs_indexed"])) if row else (None, 0)


async def count_documents(tenant: str) -> int:
    from sluice.db.session import tenant_connection

    async with tenant_connection(tenant) as (_, raw):
        return int(await raw.fetchval("SELECT count(*) FROM document"))


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout: float, what: str, poll: float = 1.0
) -> float:
    """Poll ``check`` until true; the seconds it took."""
    t0 = time.monotonic()
    while not await check():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{what}: not done after {timeout:.0f} s")
        await asyncio.sleep(poll)
    return time.monotonic() - t0


# --- 1. idle connectors -----------------------------------------------------------------


async def add_idle_connectors(
    client: Any, tenant: str, n: int, refresh: int, concurrency: int
) -> list[int]:
    """``n`` synthetic connectors of one document each (each its own ID space)."""
    from sluice import connector_ops

    gate = asyncio.Semaphore(concurrency)

    async def add(i: int) -> int:
        async with gate:
            pair = await connector_ops.add_connector(
                client,
                tenant,
                name=f"idle-{i:05d}",
                source="synthetic",
                config={"count": 1, "size_bytes": 2000, "name": f"idle{i}"},
                refresh_interval_seconds=refresh,
            )
            return pair.id

    return list(await asyncio.gather(*(add(i) for i in range(n))))


async def wait_settled(client: Any, tenant: str, n: int, timeout: float) -> None:
    """Every first attempt terminal in Postgres and every first run continued-as-new
    (the connectors now wait on their timers in their second run)."""
    from sluice.temporal.workflow_ids import CONNECTOR

    async def attempts_done() -> bool:
        return await count_terminal_attempts(tenant) >= n

    query = (
        f'WorkflowType = "{CONNECTOR}" AND SluiceTenant = "{tenant}" '
        'AND ExecutionStatus = "ContinuedAsNew"'
    )

    async def runs_done() -> bool:
        return (await client.count_workflows(query)).count >= n

    await wait_until(attempts_done, timeout, "first attempts")
    await wait_until(runs_done, timeout, "first runs continued-as-new")


async def idle_phase(
    client: Any, tenant: str, pids: Pids, args: argparse.Namespace
) -> tuple[dict[str, Any], list[int]]:
    say(f"baseline: no connector, sampling {args.baseline_seconds:.0f} s")
    baseline = await sample_idle(pids, args.baseline_seconds)
    say(f"adding {args.idle} idle connectors ({args.add_concurrency} at a time)")
    t0 = time.monotonic()
    ids = await add_idle_connectors(
        client, tenant, args.idle, args.idle_refresh, args.add_concurrency
    )
    added = time.monotonic() - t0
    say(f"added in {added:.1f} s; waiting for their first attempts")
    await wait_settled(client, tenant, args.idle, args.timeout)
    settled = time.monotonic() - t0
    say(f"first attempts done {settled:.1f} s after the first add; settling 10 s")
    await asyncio.sleep(10)
    say(f"sampling {args.idle_seconds:.0f} s with {args.idle} idle connectors")
    idle = await sample_idle(pids, args.idle_seconds)
    return {
        "connectors": args.idle,
        "refresh_seconds": args.idle_refresh,
        "add_concurrency": args.add_concurrency,
        "add_seconds": round(added, 1),
        "first_attempts_done_seconds": round(settled, 1),
        "baseline": baseline,
        "idle": idle,
    }, ids


# --- 2. index_now -> first fetch --------------------------------------------------------


def fetch_start_times(events: list[Any]) -> dict[str, float]:
    """Server times of the ``index_now`` signal and the first ``fetch_documents``'s
    scheduling and start (absent keys: not in this run)."""
    times: dict[str, float] = {}
    fetch_ids: set[int] = set()
    for e in events:
        kind = e.WhichOneof("attributes")
        if kind == "workflow_execution_signaled_event_attributes":
            name = e.workflow_execution_signaled_event_attributes.signal_name
            if name == "index_now":
                times.setdefault("signalled", _ts(e))
        elif kind == "activity_task_scheduled_event_attributes":
            if e.activity_task_scheduled_event_attributes.activity_type.name == "fetch_documents":
                fetch_ids.add(e.event_id)
                times.setdefault("scheduled", _ts(e))
        elif kind == "activity_task_started_event_attributes":
            if e.activity_task_started_event_attributes.scheduled_event_id in fetch_ids:
                times["started"] = _ts(e)
                break
    return times


async def send_index_now(
    client: Any, tenant: str, ids: list[int], interval: float
) -> list[tuple[int, str, float]]:
    """Signal each pair in turn; (cc_pair_id, the run signalled, wall time of the call)."""
    from sluice import connector_ops

    sent = []
    for cc_pair_id in ids:
        described = await connector_ops.handle(client, tenant, cc_pair_id).describe()
        t0 = time.time()
        await connector_ops.index_now(client, tenant, cc_pair_id)
        sent.append((cc_pair_id, described.run_id, t0))
        await asyncio.sleep(max(0.0, interval - (time.time() - t0)))
    return sent


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    p99 = ordered[0]
    if len(ordered) > 1:
        p99 = statistics.quantiles(ordered, n=100, method="inclusive")[98]
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(p99 * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "min_ms": round(ordered[0] * 1000, 1),
    }


def pick_sample(ids: list[int], k: int) -> list[int]:
    """``k`` pairs spread evenly over ``ids`` (every ``len/k``-th)."""
    step = max(1, len(ids) // max(1, k))
    return ids[::step][:k]


async def index_now_phase(
    client: Any, tenant: str, sample: list[int], args: argparse.Namespace
) -> dict[str, Any]:
    from sluice.temporal.tenant_context import tenant_scope
    from sluice.temporal.workflow_ids import connector_workflow_id

    say(f"index_now to {len(sample)} connectors, one every {args.index_now_interval} s")
    sent = await send_index_now(client, tenant, sample, args.index_now_interval)

    async def done() -> bool:
        return await count_terminal_attempts(tenant, sample) >= 2 * len(sample)

    await wait_until(done, args.timeout, "index_now attempts")
    spans: dict[str, list[float]] = {"call": [], "signal": [], "queue": []}
    missing = 0
    for cc_pair_id, run_id, t0 in sent:
        wid = connector_workflow_id(tenant, cc_pair_id)
        with tenant_scope(tenant):
            history = await client.get_workflow_handle(wid, run_id=run_id).fetch_history()
        times = fetch_start_times(list(history.events))
        if "started" not in times:
            missing += 1
            continue
        spans["call"].append(times["started"] - t0)
        if "signalled" in times:
            spans["signal"].append(times["started"] - times["signalled"])
        spans["queue"].append(times["started"] - times["scheduled"])
    return {
        "sample": len(sample),
        "interval_seconds": args.index_now_interval,
        "call_to_fetch_started": percentiles(spans["call"]),
        "signal_event_to_fetch_started": percentiles(spans["signal"]),
        "fetch_scheduled_to_started": percentiles(spans["queue"]),
        "runs_without_a_fetch": missing,
    }


# --- 3. history per connector per day ---------------------------------------------------


async def history_phase(
    client: Any, tenant: str, idle_pair: int, args: argparse.Namespace
) -> dict[str, Any]:
    from sluice import connector_ops
    from sluice.temporal.workflow_ids import connector_workflow_id

    say(f"history: one connector refreshing every {args.cycle_refresh} s, {args.cycles} cycles")
    pair = await connector_ops.add_connector(
        client,
        tenant,
        name="cycles",
        source="synthetic",
        config={"count": 1, "size_bytes": 2000, "name": "cycles"},
        refresh_interval_seconds=args.cycle_refresh,
    )
    wid = connector_workflow_id(tenant, pair.id)
    budget = 120 + args.cycles * (args.cycle_refresh + 60)
    await connector_ops.wait_for_attempts(
        client, tenant, pair.id, args.cycles + 1, timeout=budget, poll=1.0
    )
    await wait_runs(client, wid, args.cycles + 1, timeout=120)
    await connector_ops.send(client, tenant, pair.id, "pause")  # no cycles during the run
    runs = [r for r in await chain(client, wid) if r["closed"]]
    cycles = runs[1 : args.cycles + 1]  # the first run is the first index
    waiting = await chain(client, connector_workflow_id(tenant, idle_pair))
    open_run = next((r for r in waiting if not r["closed"]), None)
    events = statistics.median(r["events"] for r in cycles)
    size = statistics.median(r["bytes"] for r in cycles)
    per_day = 86400 / args.day_refresh
    return {
        "cycle_refresh_seconds": args.cycle_refresh,
        "first_run": {k: runs[0][k] for k in ("events", "bytes", "activities")},
        "cycles": [{k: r[k] for k in ("events", "bytes", "activities")} for r in cycles],
        "cycle_median_events": events,
        "cycle_median_bytes": size,
        "idle_connector_open_run": (
            {k: open_run[k] for k in ("events", "bytes")} if open_run else None
        ),
        "day_refresh_seconds": args.day_refresh,
        "cycles_per_day": round(per_day, 2),
        "events_per_day": round(events * per_day),
        "bytes_per_day": round(size * per_day),
        "idle_refresh_cycles_per_day": round(86400 / args.idle_refresh, 2),
        "events_per_day_at_idle_refresh": round(events * 86400 / args.idle_refresh, 1),
        "bytes_per_day_at_idle_refresh": round(size * 86400 / args.idle_refresh),
    }


# --- 4. the long run --------------------------------------------------------------------


@dataclass
class RssTrace:
    samples: list[tuple[float, float, int]] = field(default_factory=list)  # t, MB, docs

    def summary(self, start_mb: float) -> dict[str, Any]:
        mbs = [mb for _, mb, _ in self.samples]
        docs = [d for _, _, d in self.samples]
        out: dict[str, Any] = {
            "samples": len(self.samples),
            "rss_mb_start": round(start_mb, 1),
            "rss_mb_max": round(max(mbs, default=start_mb), 1),
            "rss_mb_end": round(mbs[-1] if mbs else start_mb, 1),
        }
        out["slope_mb_per_10k_docs"] = _slope(docs, mbs)
        half = len(self.samples) // 2
        out["slope_mb_per_10k_docs_second_half"] = _slope(docs[half:], mbs[half:])
        first = next((mb for _, mb, d in self.samples if d > 0), None)
        if first is not None:  # the first fetch and batch allocate once, before any doc
            out["rss_mb_first_batch"] = round(first, 1)
        later = [mb for _, mb, d in self.samples if d >= 0.1 * max(docs, default=0)]
        if later:  # after the first 10 % of documents: warm-up allocations left out
            out["rss_mb_at_10pct"] = round(later[0], 1)
            out["growth_after_10pct_mb"] = round(max(later) - later[0], 1)
        growth = out["rss_mb_max"] - start_mb
        out["growth_mb"] = round(growth, 1)
        out["growth_pct"] = round(100 * growth / start_mb, 1) if start_mb else 0.0
        flat = growth < FLAT_MB or growth < FLAT_FRACTION * start_mb
        out["verdict"] = "flat" if flat else "grows"
        if first is not None:
            # Steady state: from the first indexed batch (the first embedding call's working
            # arrays, tens of MB, are allocated once), and no upward trend in the second half.
            steady = out["rss_mb_max"] - first
            trend = out["slope_mb_per_10k_docs_second_half"] or 0.0
            out["steady_growth_mb"] = round(steady, 1)
            settled = (steady < FLAT_MB or steady < FLAT_FRACTION * first) and trend < 1.0
            out["steady_verdict"] = "flat" if settled else "grows"
        return out


def _slope(x: list[int], y: list[float]) -> float | None:
    """Least-squares MB per 10,000 documents; None when x does not vary."""
    if len(set(x)) < 2:
        return None
    return round(statistics.linear_regression(x, y).slope * 10_000, 2)


async def run_phase(client: Any, worker_pid: int, args: argparse.Namespace) -> dict[str, Any]:
    from sluice import connector_ops
    from sluice.db.migrate import migrate_tenant

    tenant = "scale_run_" + uuid.uuid4().hex[:8]
    await migrate_tenant(tenant)
    trace = RssTrace()
    load_start = [round(x, 2) for x in os.getloadavg()]
    start_mb = proc_rss_mb(worker_pid)
    say(f"long run: {args.docs} documents x {args.size} B (tenant {tenant}), RSS every 1 s")
    t0 = time.monotonic()
    pair = await connector_ops.add_connector(
        client,
        tenant,
        name="long-run",
        source="synthetic",
        config={"count": args.docs, "size_bytes": args.size, "seed": 7},
    )
    status: str | None = None
    while status not in TERMINAL:
        if time.monotonic() - t0 > args.timeout:
            raise TimeoutError(f"long run not finished after {args.timeout:.0f} s")
        await asyncio.sleep(1.0)
        status, docs = await latest_attempt(tenant, pair.id)
        trace.samples.append((time.monotonic() - t0, proc_rss_mb(worker_pid), docs))
    seconds = time.monotonic() - t0
    stored = await count_documents(tenant)
    say(f"long run: {status} in {seconds:.0f} s, {stored} documents stored")
    return {
        "tenant": tenant,
        "docs": args.docs,
        "size_bytes": args.size,
        "status": status,
        "docs_stored": stored,
        "seconds": round(seconds, 1),
        "docs_per_s": round(args.docs / seconds, 1),
        "loadavg_start_end": [load_start, [round(x, 2) for x in os.getloadavg()]],
        "worker_vmhwm_mb": round(peak_rss_mb(worker_pid), 1),
        **trace.summary(start_mb),
        "trace": [[round(t, 1), round(mb, 1), d] for t, mb, d in trace.samples],
    }


# --- orchestration ----------------------------------------------------------------------


async def measure(args: argparse.Namespace, pids: Pids) -> dict[str, Any]:
    from sluice.config import get_settings
    from sluice.db.engine import dispose_engines
    from sluice.db.migrate import migrate_tenant
    from sluice.temporal.client import connect

    client = await connect(get_settings())
    result: dict[str, Any] = {}
    try:
        if "idle" not in args.skip:
            tenant = "scale_idle_" + uuid.uuid4().hex[:8]
            await migrate_tenant(tenant)  # after the worker started: no schedules for it
            result["tenant"] = tenant
            result["idle"], ids = await idle_phase(client, tenant, pids, args)
            sample = pick_sample(ids, args.sample)
            result["index_now"] = await index_now_phase(client, tenant, sample, args)
            idle_pair = next((i for i in ids if i not in sample), ids[-1])
            result["history"] = await history_phase(client, tenant, idle_pair, args)
        if "run" not in args.skip:
            result["run"] = await run_phase(client, pids.worker, args)
    finally:
        await dispose_engines()
    return result


# --- report -----------------------------------------------------------------------------


def _proc_line(label: str, figures: dict[str, Any]) -> str:
    rss = ""
    if "rss_mb_mean" in figures:
        rss = f"  RSS {figures['rss_mb_mean']:.0f} MB (max {figures['rss_mb_max']:.0f})"
    return f"  {label:<34}CPU {figures['cpu_pct']:6.2f} % ({figures['cpu_s']:.2f} s){rss}"


def report_idle(r: dict[str, Any], out: Callable[[str], None]) -> None:
    idle = r["idle"]
    out(
        f"Idle connectors: {idle['connectors']} synthetic (1 document each), refresh every "
        f"{idle['refresh_seconds']} s"
    )
    out(
        f"  added in {idle['add_seconds']:.1f} s ({idle['add_concurrency']} adds at a time); "
        f"every first attempt ended and run continued-as-new "
        f"{idle['first_attempts_done_seconds']:.1f} s after the first add"
    )
    for phase, label in (("baseline", "no connector"), ("idle", f"{idle['connectors']} idle")):
        sample = idle[phase]
        out(f"  {label}: sampled {sample['seconds']} s, load average {sample['loadavg']}")
        for proc in ("worker", "temporal", "postgres"):
            if proc in sample:
                out(_proc_line(f"{proc} ({label})", sample[proc]))
    now = r["index_now"]
    e2e, srv = now["call_to_fetch_started"], now["signal_event_to_fetch_started"]
    out(
        f"index_now -> fetch_documents started ({now['sample']} connectors, one every "
        f"{now['interval_seconds']} s; from history, no polling):"
    )
    if e2e:
        out(
            f"  client call -> fetch started:  p50 {e2e['p50_ms']} ms  p99 {e2e['p99_ms']} ms  "
            f"max {e2e['max_ms']} ms  (n={e2e['n']})"
        )
    if srv:
        out(
            f"  signal event -> fetch started: p50 {srv['p50_ms']} ms  p99 {srv['p99_ms']} ms  "
            f"max {srv['max_ms']} ms"
        )
    queue = now["fetch_scheduled_to_started"]
    if queue:
        out(
            f"  of which fetch scheduled -> started (task queue): p50 {queue['p50_ms']} ms  "
            f"p99 {queue['p99_ms']} ms"
        )
    if now["runs_without_a_fetch"]:
        out(f"  WARNING: {now['runs_without_a_fetch']} signalled runs had no fetch_documents")
    report_history(r["history"], out)


def report_history(h: dict[str, Any], out: Callable[[str], None]) -> None:
    out(
        "History: one refresh cycle (one continued-as-new run, refresh "
        f"{h['cycle_refresh_seconds']} s): {h['cycle_median_events']} events, "
        f"{h['cycle_median_bytes']} bytes (median of "
        f"{len(h['cycles'])}: {[c['events'] for c in h['cycles']]} events, "
        f"{[c['bytes'] for c in h['cycles']]} B)"
    )
    out(f"  first run (first index): {h['first_run']}")
    if h["idle_connector_open_run"]:
        out(f"  an idle connector's open run, waiting: {h['idle_connector_open_run']}")
    out(
        f"  computed per connector per day at refresh {h['day_refresh_seconds']} s "
        f"({h['cycles_per_day']} cycles): {h['events_per_day']} events, "
        f"{h['bytes_per_day'] / 1024:.0f} KiB"
    )
    out(
        f"  at the idle connectors' refresh ({h['idle_refresh_cycles_per_day']} cycles/day): "
        f"{h['events_per_day_at_idle_refresh']} events, "
        f"{h['bytes_per_day_at_idle_refresh'] / 1024:.1f} KiB"
    )


def report_run(run: dict[str, Any], out: Callable[[str], None]) -> None:
    out(
        f"Long run: {run['docs']} documents x {run['size_bytes']} B: {run['status']}, "
        f"{run['docs_stored']} stored, {run['seconds']} s, {run['docs_per_s']} docs/s "
        f"(load average at start, end: {run['loadavg_start_end']})"
    )
    out(
        f"  worker RSS (every 1 s, {run['samples']} samples): start {run['rss_mb_start']} MB, "
        f"max {run['rss_mb_max']} MB, end {run['rss_mb_end']} MB; VmHWM {run['worker_vmhwm_mb']} MB"
    )
    out(
        f"  slope {run['slope_mb_per_10k_docs']} MB per 10k documents (least squares over the "
        f"run; second half {run['slope_mb_per_10k_docs_second_half']})"
    )
    out(
        f"  growth (max - start) {run['growth_mb']} MB = {run['growth_pct']} %: "
        f"{run['verdict'].upper()} (flat: under {FLAT_MB:.0f} MB or {FLAT_FRACTION:.0%})"
    )
    if "rss_mb_first_batch" in run:
        out(
            f"  at the first indexed batch: {run['rss_mb_first_batch']} MB; from there to the "
            f"max +{run['rss_mb_max'] - run['rss_mb_first_batch']:.1f} MB: steady state "
            f"{run['steady_verdict'].upper()} (the same rule from the first batch, and a "
            "second-half slope under 1 MB per 10k)"
        )
    if "rss_mb_at_10pct" in run:
        out(
            f"  from 10 % of the documents on: {run['rss_mb_at_10pct']} MB, then at most "
            f"+{run['growth_after_10pct_mb']} MB"
        )


def report(result: dict[str, Any], out: Callable[[str], None] = print) -> list[str]:
    """Print the figures; return what went wrong (wrong counts, failed attempts)."""
    problems = []
    out("")
    out(
        f"Sluice scale benchmark  {result['date']}  {result['cores']} cores  "
        f"Python {platform.python_version()}  one background worker"
    )
    if "idle" in result:
        report_idle(result, out)
    run = result.get("run")
    if run is not None:
        report_run(run, out)
        if run["status"] != "success" or run["docs_stored"] != run["docs"]:
            problems.append(f"long run {run['status']}, {run['docs_stored']}/{run['docs']} stored")
    for problem in problems:
        out(f"ERROR: {problem}")
    return problems


# --- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description=(__doc__ or "").split("\n\n")[0]
    )
    add = parser.add_argument
    add("--idle", type=int, default=1000, help="idle connector workflows to add")
    add("--idle-refresh", type=int, default=86400, help="their refresh interval, s")
    add("--idle-seconds", type=float, default=60, help="how long to sample them idle")
    add("--baseline-seconds", type=float, default=30, help="sample before any connector")
    add("--add-concurrency", type=int, default=8, help="add_connector calls at once")
    add("--sample", type=int, default=100, help="connectors sent index_now")
    add("--index-now-interval", type=float, default=1.0, help="seconds between index_nows")
    add("--cycles", type=int, default=3, help="refresh cycles measured for history size")
    add("--cycle-refresh", type=int, default=10, help="that connector's refresh interval, s")
    add(
        "--day-refresh",
        type=int,
        default=3600,
        help="interval for the per-day figure: a cc-pair has none by default (index-now "
        "only); 3600 s is what `sluice dev` gives its connector (sluice/cli/dev.py)",
    )
    add("--docs", type=int, default=100_000, help="documents in the long run")
    add("--size", type=int, default=2000, help="bytes per document")
    add("--skip", choices=("idle", "run"), action="append", default=[], help="leave out")
    add("--timeout", type=float, default=3600, help="seconds per wait, at most")
    add("--json", type=Path, default=None, help="append the figures as one JSON line")
    return parser.parse_args(argv)


def run_with_stack(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from sluice.config import get_settings
    from sluice.devstack import dev_stack

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
        services = {s.name: s.proc.pid for s in stack.services}
        say("starting the worker: background")
        workers: list[WorkerProc] = start_workers(("background",), stack.env, tmp / "logs")
        try:
            wait_ready(workers, timeout=300)
            pids = Pids(workers[0].proc.pid, services.get("temporal"), services.get("postgres"))
            return asyncio.run(measure(args, pids))
        finally:
            say("stopping the worker and the stack")
            stop_workers(workers)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result: dict[str, Any] = {
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "cores": os.cpu_count(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    with _terminate_as_interrupt(), tempfile.TemporaryDirectory(prefix="sluice-scale-") as tmp:
        result.update(run_with_stack(args, Path(tmp)))
    problems = report(result)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        with args.json.open("a") as fh:
            fh.write(json.dumps({**result, "problems": problems}) + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
