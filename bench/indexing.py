"""Indexing throughput: the in-process limit, Sluice (Temporal) and the Celery baseline.

Run::

    uv run python -m bench.indexing [--docs 20000] [--size 2000] [--batch-size 200]
        [--in-flight 2] [--batches-per-fetch 5] [--workers background]
        [--only limit,temporal,celery] [--repeat N] [--no-hnsw] [--json FILE]

Starts the real stack (embedded Postgres + pgvector, Redis, Temporal dev server; or
the ones named by DATABASE_URL / REDIS_URL / TEMPORAL_ADDRESS), then indexes the
same synthetic corpus three times, each time into a fresh tenant:

* **limit**: no orchestration. The synthetic connector's ``load()`` fills an
  ``asyncio.Queue`` with batches and ``--in-flight`` consumer tasks run
  :func:`sluice.indexing.pipeline.index_documents` on them, one transaction per
  batch, in this process. Fetching, embedding and writes overlap. It is the
  ceiling for the same code on this machine.
* **temporal** (Sluice): the production path. A worker started as a separate process
  (``python -m sluice.cli.main worker <kind>``), a connector added with
  :func:`sluice.connector_ops.add_connector` and the given :class:`RunTuning`,
  timed from the add until the attempt's workflow run closes (its last history
  event, so the progress poll interval adds nothing).
* **celery**: the seed's design, docfetching → docprocessing Celery tasks on the
  stack's Redis (``bench/celery_baseline.py``: real ``celery worker`` processes,
  threads pool, acks late, ``--in-flight`` docprocessing threads), timed from the
  enqueue of the fetch task to the last batch's commit.

Each run's schema is dropped after it (then CHECKPOINT), so the next run starts
from the same state; ``--repeat`` reverses the order every other repetition and
prints medians. ``--no-hnsw`` is a diagnostic: without the vector index Postgres
stops being the bottleneck and the orchestration overhead shows.

It checks that every run stored exactly ``--docs`` documents, then prints
documents/s, the ratios sluice/limit, celery/limit and sluice/celery, chunks, peak
RSS, CPU seconds per process (bench, worker, Postgres, Temporal server, Redis,
everything else on the machine) and where the Temporal run spent its time (read
from the workflow history). ``--json FILE`` appends the figures as one JSON line
per repetition, for sweeps.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import psutil

if TYPE_CHECKING:
    from bench.celery_baseline import CeleryWorker

REPO_ROOT = Path(__file__).resolve().parents[1]
SEED = 7
"""Both runs index the same documents (each into its own tenant)."""


# --- parameters and results -----------------------------------------------------------


@dataclass(frozen=True)
class Params:
    docs: int
    size: int
    batch_size: int
    in_flight: int
    batches_per_fetch: int
    workers: tuple[str, ...]
    timeout: float
    keep_tenants: bool = False
    no_hnsw: bool = False

    def synthetic_config(self) -> dict[str, Any]:
        return {"count": self.docs, "size_bytes": self.size, "seed": SEED}


@dataclass
class RunResult:
    name: str
    seconds: float
    docs_stored: int
    chunks_stored: int
    chunks_written: int
    rss_mb: float
    cpu: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def docs_per_s(self, docs: int) -> float:
        return docs / self.seconds if self.seconds > 0 else 0.0

    def system_cpu(self) -> float:
        """CPU-s of the system under test: every process but ``other`` (and steal)."""
        return sum(v for k, v in self.cpu.items() if k not in NOT_THE_SYSTEM)

    def cpu_per_kdoc(self, docs: int) -> tuple[float, float]:
        """(system, outside Postgres) CPU-s per 1,000 documents.

        Noise-robust where docs/s is not: Postgres' CPU for the same inserts varies by up
        to ±20 % between identical runs, and it is the same code in all three paths.
        """
        if docs <= 0:
            return 0.0, 0.0
        total = self.system_cpu()
        return 1000 * total / docs, 1000 * (total - self.cpu.get("postgres", 0.0)) / docs


NOT_THE_SYSTEM = frozenset({"other", "steal"})


# --- process accounting ---------------------------------------------------------------


def tree_cpu_seconds(pid: int, children: bool = True) -> float:
    """User+system CPU of ``pid`` and (with ``children``) its descendants, live or reaped."""
    try:
        root = psutil.Process(pid)
        t = root.cpu_times()
        if not children:
            return t.user + t.system
        total = t.user + t.system + t.children_user + t.children_system
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                ct = child.cpu_times()
                total += ct.user + ct.system
        return total
    except psutil.Error:
        return 0.0


class PgSampler:
    """Postgres CPU by kind of process (client backends, autovacuum, checkpointer...),
    sampled every ``interval`` seconds in a thread. A process that starts and ends
    between two samples (a short autovacuum worker) is missed: it shows up in the
    total as ``unattributed``."""

    KINDS = (
        ("autovacuum", "autovacuum"),
        ("checkpointer", "checkpoint+bgwriter"),
        ("background writer", "checkpoint+bgwriter"),
        ("walwriter", "wal writer"),
        ("io worker", "io workers"),
    )

    def __init__(self, postmaster: int, interval: float = 0.5) -> None:
        self.postmaster = postmaster
        self.interval = interval
        self.first: dict[int, tuple[str, float]] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-sampler", daemon=True)
        self._started = False

    def _kind(self, proc: psutil.Process) -> str:
        title = " ".join(proc.cmdline())
        for needle, kind in self.KINDS:
            if needle in title:
                return kind
        return "backends" if "(" in title else "other"

    def _sample(self) -> None:
        try:
            children = psutil.Process(self.postmaster).children()
        except psutil.Error:
            return
        for child in children:
            try:
                t = child.cpu_times()
                cpu = t.user + t.system
                if child.pid not in self.first:
                    # Seen at the first sample: count from now; born later: from zero.
                    self.first[child.pid] = (self._kind(child), cpu if not self._started else 0.0)
                self.last[child.pid] = cpu
            except psutil.Error:
                continue

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> None:
        self._sample()
        self._started = True
        self._thread.start()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join(5)
        self._sample()
        by_kind: dict[str, float] = defaultdict(float)
        for pid, (kind, start) in self.first.items():
            by_kind[kind] += self.last.get(pid, start) - start
        return {k: round(v, 1) for k, v in sorted(by_kind.items())}


class CpuMeter:
    """CPU seconds per component: one or more process trees; ``bench`` is this process
    alone (the servers and workers are its children, counted under their own names)."""

    def __init__(self, components: dict[str, list[int]]) -> None:
        self.components = components
        self._before: dict[str, float] = {}
        self._pg: PgSampler | None = None

    def snapshot(self) -> dict[str, float]:
        used = {
            name: sum(tree_cpu_seconds(pid, children=name != "bench") for pid in pids)
            for name, pids in self.components.items()
        }
        # Everything else on the machine (other jobs add noise: watch this figure).
        t = psutil.cpu_times()
        busy = sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq"))
        used["other"] = busy - sum(used.values())
        used["steal"] = getattr(t, "steal", 0.0)  # a busy VM host: slower for everyone
        return used

    def begin(self) -> None:
        """Start measuring (and sampling Postgres by kind of process)."""
        if "postgres" in self.components:
            self._pg = PgSampler(self.components["postgres"][0])
            self._pg.start()
        self._before = self.snapshot()

    def end(self) -> tuple[dict[str, float], dict[str, float]]:
        """(CPU seconds per component, Postgres CPU seconds per kind of process)."""
        used = self.since(self._before, self.snapshot())
        by_kind: dict[str, float] = {}
        if self._pg is not None:
            by_kind = self._pg.stop()
            attributed = sum(by_kind.values())
            by_kind["unattributed"] = round(used.get("postgres", 0.0) - attributed, 1)
            self._pg = None
        return used, by_kind

    @staticmethod
    def since(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {name: round(after[name] - before.get(name, 0.0), 2) for name in after}


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of ``pid`` in MB, from /proc (psutil's RSS elsewhere)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    with contextlib.suppress(psutil.Error):
        return psutil.Process(pid).memory_info().rss / 2**20
    return 0.0


# --- costs measured in isolation (explain where the Temporal path spends time) ----------


def micro_costs(p: Params) -> dict[str, float]:
    """Per-batch cost of the work only the Temporal path does, measured in this process."""
    from sluice.connectors.base import ConnectorContext
    from sluice.connectors.registry import build_connector
    from sluice.indexing.staging import decode_documents, encode_documents

    connector = build_connector("synthetic", p.synthetic_config(), ConnectorContext())
    n = min(p.batch_size, max(1, p.docs))
    t0 = time.perf_counter()
    docs = [connector.item(i) for i in range(n)]  # type: ignore[attr-defined]
    generate = time.perf_counter() - t0
    rounds = 5
    t0 = time.perf_counter()
    for _ in range(rounds):
        blob = encode_documents(docs)
    encode = (time.perf_counter() - t0) / rounds
    t0 = time.perf_counter()
    for _ in range(rounds):
        decode_documents(blob)
    decode = (time.perf_counter() - t0) / rounds
    t0 = time.perf_counter()
    for doc in docs:
        doc.content_hash()
    hashing = time.perf_counter() - t0
    return {
        "batch_docs": n,
        "staged_batch_kb": round(len(blob) / 1024, 1),
        "generate_ms_per_batch": round(generate * 1000, 2),
        "encode_ms_per_batch": round(encode * 1000, 2),
        "decode_ms_per_batch": round(decode * 1000, 2),
        "content_hash_ms_per_batch": round(hashing * 1000, 2),
    }


# --- database helpers -----------------------------------------------------------------


async def count_rows(tenant: str) -> tuple[int, int]:
    from sluice.db.session import tenant_connection

    async with tenant_connection(tenant) as (_, raw):
        docs = await raw.fetchval("SELECT count(*) FROM document")
        chunks = await raw.fetchval("SELECT count(*) FROM chunk")
    return int(docs), int(chunks)


async def attempt_chunks_written(tenant: str, cc_pair_id: int) -> int:
    """``chunks_written`` the finished attempt recorded (the workflow forgets it on finish)."""
    from sluice.db.session import tenant_connection

    async with tenant_connection(tenant) as (_, raw):
        value = await raw.fetchval(
            "SELECT chunks_written FROM index_attempt WHERE cc_pair_id = $1 "
            "ORDER BY id DESC LIMIT 1",
            cc_pair_id,
        )
    return int(value or 0)


async def attempt_status(tenant: str, cc_pair_id: int) -> str | None:
    """Status of the cc-pair's first index attempt (``None`` before it exists)."""
    from sluice.db.session import tenant_connection

    async with tenant_connection(tenant) as (_, raw):
        return await raw.fetchval(
            "SELECT status FROM index_attempt WHERE cc_pair_id = $1 ORDER BY id LIMIT 1",
            cc_pair_id,
        )


async def remove_schedules() -> int:
    """Delete the periodic jobs' schedules of every migrated tenant (the bench's).

    A worker serving ``primary`` creates each migrated tenant's schedules when it starts
    (``workers/runner.py``). The bench measures indexing: the Celery baseline runs no
    Beat, and the schedules of earlier runs' dropped tenants would keep firing on the
    shared dev server (measured: 8-10 CPU-s of server time during the limit and Celery
    runs after a Sluice run, 33 during a third Sluice run, with the worker at 46).
    """
    from schedules.sync import delete_tenant_schedules
    from sluice.db.migrate import list_tenants
    from sluice.temporal.client import connect

    client = await connect()
    return sum([len(await delete_tenant_schedules(client, t)) for t in await list_tenants()])


async def _in_own_loop(step: Callable[[], Awaitable[int]]) -> int:
    """``step`` in an event loop of its own: the engine's pool goes with the loop."""
    from sluice.db.engine import dispose_engines

    try:
        return await step()
    finally:
        await dispose_engines()


async def drop_tenant(tenant: str) -> None:
    """Drop the run's schema and checkpoint, so the next run starts from the same state
    (its HNSW graph neither competes for shared buffers nor leaves WAL to flush)."""
    from sqlalchemy import text

    from sluice.db.engine import get_engine
    from sluice.tenancy import quoted_schema

    with contextlib.suppress(Exception):  # no schedule is left firing for a dropped tenant
        await remove_schedules()
    async with get_engine().begin() as conn:
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {quoted_schema(tenant)} CASCADE"))
    with contextlib.suppress(Exception):  # CHECKPOINT needs a privileged role
        async with get_engine().connect() as conn:
            await conn.execute(text("CHECKPOINT"))


async def prepare(tenants: list[str], p: Params) -> None:
    from sqlalchemy import text

    from sluice.db.engine import dispose_engines, get_engine
    from sluice.db.migrate import migrate_tenant
    from sluice.tenancy import quoted_schema

    try:
        for tenant in tenants:
            await migrate_tenant(tenant)
            if p.no_hnsw:
                async with get_engine().begin() as conn:
                    await conn.execute(
                        text(f"DROP INDEX {quoted_schema(tenant)}.ix_chunk_vector_1_hnsw")
                    )
    finally:
        await dispose_engines()


# --- the limit: the same pipeline in one process, no orchestration ---------------------


async def run_limit(tenant: str, p: Params, cpu: CpuMeter) -> RunResult:
    from sluice.ccpairs import create_cc_pair
    from sluice.config import get_settings
    from sluice.connectors.base import ConnectorContext
    from sluice.connectors.models import Checkpoint, Document
    from sluice.connectors.registry import build_connector
    from sluice.db.engine import dispose_engines
    from sluice.db.session import tenant_connection
    from sluice.indexing.pipeline import index_documents
    from workers.runner import embedder_factory

    try:
        config = p.synthetic_config()
        pair = await create_cc_pair(tenant, name="bench-limit", source="synthetic", config=config)
        embedder = embedder_factory(get_settings())()
        warm_up = getattr(embedder, "warm_up", None)
        if warm_up is not None:
            warm_up()  # the model load is not indexing; the worker's is reported apart
        connector = build_connector("synthetic", config, ConnectorContext(tenant, pair.id, 1))
        queue: asyncio.Queue[list[Document] | None] = asyncio.Queue(maxsize=p.in_flight)
        stages: dict[str, float] = defaultdict(float)
        totals: dict[str, int] = defaultdict(int)
        errors: list[str] = []

        async def produce() -> None:
            batch: list[Document] = []
            async for output in connector.load(Checkpoint()):
                if output.document is not None:
                    batch.append(output.document)
                    if len(batch) >= p.batch_size:
                        await queue.put(batch)
                        batch = []
            if batch:
                await queue.put(batch)
            for _ in range(p.in_flight):
                await queue.put(None)

        async def consume() -> None:
            while (batch := await queue.get()) is not None:
                last = time.perf_counter()

                def mark(stage: str) -> None:
                    nonlocal last
                    now = time.perf_counter()
                    stages[stage] += now - last
                    last = now

                async with tenant_connection(tenant) as (_, raw):
                    mark("connect")
                    result, failures = await index_documents(
                        raw, pair.id, batch, embedder, on_progress=mark
                    )
                mark("commit")
                totals["batches"] += 1
                totals["docs_indexed"] += result.docs_indexed
                totals["chunks_written"] += result.chunks_written
                errors.extend(f.message for f in failures)

        cpu.begin()
        t0 = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            group.create_task(produce())
            for _ in range(p.in_flight):
                group.create_task(consume())
        seconds = time.perf_counter() - t0
        used, pg_by_kind = cpu.end()
        docs, chunks = await count_rows(tenant)
        if not p.keep_tenants:
            await drop_tenant(tenant)
    finally:
        await dispose_engines()
    return RunResult(
        name="limit",
        seconds=seconds,
        docs_stored=docs,
        chunks_stored=chunks,
        chunks_written=totals["chunks_written"],
        rss_mb=peak_rss_mb(os.getpid()),
        cpu=used,
        details={
            "batches": totals["batches"],
            "stage_busy_s": {k: round(v, 2) for k, v in stages.items()},
            "postgres_cpu_by_kind": pg_by_kind,
        },
        errors=errors[:5],
    )


# --- the worker process ---------------------------------------------------------------


def _child_setup() -> None:
    """In the child before exec: own session, and SIGTERM when this process dies (Linux)."""
    os.setsid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class WorkerProc:
    kind: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path


def start_workers(kinds: tuple[str, ...], env: dict[str, str], log_dir: Path) -> list[WorkerProc]:
    from sluice.devstack import free_port

    log_dir.mkdir(parents=True, exist_ok=True)
    started = []
    for kind in kinds:
        port = free_port()
        log = log_dir / f"worker-{kind}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "sluice.cli.main", "worker", kind],
                env={**os.environ, **env, "HEALTH_PORT": str(port), "LOG_FORMAT": "json"},
                cwd=REPO_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_child_setup,
            )
        started.append(WorkerProc(kind, proc, port, log))
    return started


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_ready(workers: list[WorkerProc], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    pending = list(workers)
    while pending:
        for w in list(pending):
            if w.proc.poll() is not None:
                raise RuntimeError(
                    f"worker {w.kind} exited with {w.proc.returncode}:\n{_tail(w.log)}"
                )
            try:
                url = f"http://127.0.0.1:{w.port}/readyz"
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        pending.remove(w)
            except OSError:
                pass
        if pending and time.monotonic() > deadline:
            names = ", ".join(w.kind for w in pending)
            raise RuntimeError(f"workers not ready after {timeout:.0f}s: {names}")
        time.sleep(0.2)


def stop_workers(workers: list[WorkerProc], timeout: float = 20) -> None:
    """SIGTERM (graceful shutdown), then SIGKILL whatever is still there after ``timeout``."""
    for w in workers:
        if w.proc.poll() is None:
            w.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for w in workers:
        try:
            w.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait(5)


# --- the Temporal run -----------------------------------------------------------------


def _ts(event: Any) -> float:
    return event.event_time.seconds + event.event_time.nanos / 1e9


def analyse_history(events: list[Any]) -> dict[str, Any]:
    """Activity queue/run times, workflow-task latency and idle gaps, from one run's history."""
    scheduled: dict[int, tuple[str, float]] = {}
    started: dict[int, float] = {}
    acts: dict[str, list[tuple[float, float, float]]] = defaultdict(list)  # sched, start, close
    wft_sched: dict[int, float] = {}
    wft: list[float] = []
    for e in events:
        kind = e.WhichOneof("attributes")
        t = _ts(e)
        if kind == "activity_task_scheduled_event_attributes":
            attrs = e.activity_task_scheduled_event_attributes
            scheduled[e.event_id] = (attrs.activity_type.name, t)
        elif kind == "activity_task_started_event_attributes":
            started[e.activity_task_started_event_attributes.scheduled_event_id] = t
        elif kind in (
            "activity_task_completed_event_attributes",
            "activity_task_failed_event_attributes",
            "activity_task_timed_out_event_attributes",
        ):
            sid = getattr(e, kind).scheduled_event_id
            name, ts = scheduled[sid]
            acts[name].append((ts, started.get(sid, ts), t))
        elif kind == "workflow_task_scheduled_event_attributes":
            wft_sched[e.event_id] = t
        elif kind == "workflow_task_completed_event_attributes":
            sid = e.workflow_task_completed_event_attributes.scheduled_event_id
            if sid in wft_sched:
                wft.append(t - wft_sched[sid])
    out: dict[str, Any] = {
        "events": len(events),
        "history_kb": round(sum(e.ByteSize() for e in events) / 1024, 1),
        "run_span_s": round(_ts(events[-1]) - _ts(events[0]), 2) if events else 0.0,
        "workflow_tasks": len(wft),
        "workflow_task_ms_mean": round(statistics.fmean(wft) * 1000, 1) if wft else 0.0,
    }
    for name, rows in acts.items():
        queue = [s - sc for sc, s, _ in rows]
        run = [c - s for _, s, c in rows]
        out[name] = {
            "n": len(rows),
            "queue_ms_mean": round(statistics.fmean(queue) * 1000, 1),
            "run_s_mean": round(statistics.fmean(run), 3),
            "run_s_sum": round(sum(run), 2),
            "first_start_s": round(min(s for _, s, _ in rows) - _ts(events[0]), 2),
            "last_close_s": round(max(c for _, _, c in rows) - _ts(events[0]), 2),
        }
    proc = acts.get("process_batch", [])
    if proc:
        first = min(s for _, s, _ in proc)
        last = max(c for _, _, c in proc)
        busy = sum(c - s for _, s, c in proc)
        out["process_concurrency_mean"] = round(busy / (last - first), 2) if last > first else 0
        # Refill latency: a batch finishing -> the next process_batch scheduled (a workflow
        # task round trip) when one was scheduled later.
        starts = sorted(sc for sc, _, _ in proc)
        gaps = []
        for _, _, close in proc:
            later = [sc for sc in starts if sc >= close]
            if later:
                gaps.append(later[0] - close)
        if gaps:
            out["refill_ms_median"] = round(statistics.median(gaps) * 1000, 1)
        out["tail_after_last_batch_s"] = round(_ts(events[-1]) - last, 2)
    return out


async def _first_run_history(client: Any, workflow_id: str) -> list[Any]:
    """Events of the run that did the attempt: the one the current run continued from."""
    current = client.get_workflow_handle(workflow_id)
    history = await current.fetch_history()
    first = history.events[0].workflow_execution_started_event_attributes
    previous = first.continued_execution_run_id
    if not previous:
        return list(history.events)
    done = await client.get_workflow_handle(workflow_id, run_id=previous).fetch_history()
    return list(done.events)


async def wait_finished(
    client: Any, tenant: str, cc_pair_id: int, p: Params, on_progress: Callable[[Any], None]
) -> tuple[str | None, list[str]]:
    """Wait with ``wait_for_attempts``; when the progress query itself fails (a busy or
    failing workflow task cannot answer it), fall back to the attempt row in Postgres."""
    from temporalio.service import RPCError

    from sluice import connector_ops
    from sluice.db.models import AttemptStatus

    loop = asyncio.get_running_loop()
    deadline = loop.time() + p.timeout
    query_errors: list[str] = []
    while True:
        try:
            final = await connector_ops.wait_for_attempts(
                client,
                tenant,
                cc_pair_id,
                1,
                timeout=max(1.0, deadline - loop.time()),
                on_progress=on_progress,
                poll=1.0,  # the end time comes from history; fewer queries, less noise
            )
            return final.last_attempt_status, query_errors
        except RPCError as exc:
            query_errors.append(f"{time.strftime('%H:%M:%S')} {exc.status.name}: {exc}")
            status = await attempt_status(tenant, cc_pair_id)
            if status is not None and AttemptStatus(status).is_terminal:
                return status, query_errors
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def run_temporal(
    tenant: str, p: Params, cpu: CpuMeter, workers: list[WorkerProc]
) -> RunResult:
    from sluice import connector_ops
    from sluice.db.engine import dispose_engines
    from sluice.indexing.models import RunTuning
    from sluice.temporal.client import connect
    from sluice.temporal.tenant_context import tenant_scope
    from sluice.temporal.workflow_ids import connector_workflow_id

    errors: list[str] = []
    try:
        client = await connect()
        tuning = RunTuning(
            batch_size=p.batch_size,
            batches_per_fetch=p.batches_per_fetch,
            max_batches_in_flight=p.in_flight,
        )
        rss_samples: dict[int, float] = defaultdict(float)

        def sample(_progress: Any) -> None:
            for w in workers:
                with contextlib.suppress(psutil.Error):
                    rss = psutil.Process(w.proc.pid).memory_info().rss / 2**20
                    rss_samples[w.proc.pid] = max(rss_samples[w.proc.pid], rss)

        cpu.begin()
        wall0 = time.time()
        t0 = time.perf_counter()
        pair = await connector_ops.add_connector(
            client,
            tenant,
            name="bench-temporal",
            source="synthetic",
            config=p.synthetic_config(),
            tuning=tuning,
        )
        status, query_errors = await wait_finished(client, tenant, pair.id, p, sample)
        polled = time.perf_counter() - t0
        used, pg_by_kind = cpu.end()
        if status != "success":
            errors.append(f"attempt ended {status}")
        details: dict[str, Any] = {
            "seconds_polled": round(polled, 2),
            "postgres_cpu_by_kind": pg_by_kind,
        }
        if query_errors:
            details["progress_query_errors"] = query_errors
        seconds = polled
        try:
            with tenant_scope(tenant):
                events = await _first_run_history(client, connector_workflow_id(tenant, pair.id))
            details["history"] = analyse_history(events)
            # The attempt ends when its run continues-as-new: server time, no poll lag.
            seconds = _ts(events[-1]) - wall0
        except Exception as exc:  # the figures above still stand
            details["history_error"] = repr(exc)
        written = await attempt_chunks_written(tenant, pair.id)
        docs, chunks = await count_rows(tenant)
        with contextlib.suppress(Exception), tenant_scope(tenant):
            await client.get_workflow_handle(connector_workflow_id(tenant, pair.id)).terminate(
                reason="benchmark over"
            )
        if not p.keep_tenants:
            await drop_tenant(tenant)
    finally:
        await dispose_engines()
    rss = {w.kind: round(peak_rss_mb(w.proc.pid), 1) for w in workers}
    details["worker_peak_rss_mb"] = rss
    details["worker_sampled_rss_mb"] = {
        w.kind: round(rss_samples.get(w.proc.pid, 0.0), 1) for w in workers
    }
    return RunResult(
        name="temporal",
        seconds=seconds,
        docs_stored=docs,
        chunks_stored=chunks,
        chunks_written=written,
        rss_mb=sum(rss.values()),
        cpu=used,
        details=details,
        errors=errors,
    )


# --- the Celery baseline --------------------------------------------------------------


async def run_celery(
    tenant: str, p: Params, cpu: CpuMeter, workers: list[CeleryWorker]
) -> RunResult:
    """The seed's design on Celery (``bench/celery_baseline.py``), timed from the enqueue
    of the fetch task to the last batch's commit."""
    from bench import celery_baseline
    from sluice.db.engine import dispose_engines

    try:
        job = await celery_baseline.create_job(tenant, p.synthetic_config(), p.batch_size)
        cpu.begin()
        run = await asyncio.to_thread(celery_baseline.enqueue_and_wait, job, p.timeout)
        used, pg_by_kind = cpu.end()
        run.details["staged_batches_deleted"] = await celery_baseline.delete_staged(job)
        docs, chunks = await count_rows(tenant)
        if not p.keep_tenants:
            await drop_tenant(tenant)
    finally:
        await dispose_engines()
    rss = {w.queue: round(peak_rss_mb(w.proc.pid), 1) for w in workers}
    return RunResult(
        name="celery",
        seconds=run.seconds,
        docs_stored=docs,
        chunks_stored=chunks,
        chunks_written=run.chunks_written,
        rss_mb=sum(rss.values()),
        cpu=used,
        details={
            **run.details,
            "batches": run.batches,
            "worker_peak_rss_mb": rss,
            "postgres_cpu_by_kind": pg_by_kind,
        },
        errors=run.errors,
    )


# --- reporting ------------------------------------------------------------------------


def _fmt_cpu(cpu: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in cpu.items() if v >= 0.05) or "-"


RUNS = ("limit", "temporal", "celery")
"""Every run, in the order of the table's columns (``--only`` names them)."""
LABELS = {"limit": "limit", "temporal": "sluice", "celery": "celery"}
RATIOS = (("temporal", "limit"), ("celery", "limit"), ("temporal", "celery"))
_HEADERS = {"limit": "limit", "temporal": "sluice (temporal)", "celery": "celery"}
_RSS_OF = {"limit": "bench process", "temporal": "worker", "celery": "2 workers"}


def ratios(p: Params, runs: dict[str, RunResult]) -> dict[str, float]:
    """docs/s ratios ``sluice/limit``, ``celery/limit``, ``sluice/celery`` (those present)."""
    out: dict[str, float] = {}
    for a, b in RATIOS:
        if a in runs and b in runs and runs[a].seconds > 0 and runs[b].seconds > 0:
            value = runs[a].docs_per_s(p.docs) / runs[b].docs_per_s(p.docs)
            out[f"{LABELS[a]}/{LABELS[b]}"] = round(value, 3)
    return out


def _table(p: Params, runs: dict[str, RunResult], out: Callable[[str], None]) -> None:
    rows: list[tuple[str, Callable[[RunResult], str]]] = [
        ("wall s", lambda r: f"{r.seconds:.2f}"),
        ("documents/s", lambda r: f"{r.docs_per_s(p.docs):.0f}"),
        ("documents stored", lambda r: str(r.docs_stored)),
        ("chunks written", lambda r: str(r.chunks_written)),
        ("peak RSS MB", lambda r: f"{r.rss_mb:.0f} ({_RSS_OF[r.name]})"),
        (
            "CPU-s/1k docs",
            lambda r: "{:.2f} (outside Postgres {:.2f})".format(*r.cpu_per_kdoc(p.docs)),
        ),
    ]
    names = [n for n in RUNS if n in runs]
    cells = [[fn(runs[n]) for n in names] for _, fn in rows]
    width = max(len(c) for c in [*(_HEADERS[n] for n in names), *(c for r in cells for c in r)])
    width += 2
    out(f"{'':<18}" + "".join(f"{_HEADERS[n]:<{width}}" for n in names).rstrip())
    for (label, _), row in zip(rows, cells, strict=True):
        out(f"{label:<18}" + "".join(f"{c:<{width}}" for c in row).rstrip())
    found = ratios(p, runs)
    if found:
        out(f"{'ratios':<18}" + "  ".join(f"{k} = {v:.2f}" for k, v in found.items()))


def _run_details(run: RunResult, out: Callable[[str], None]) -> None:
    name, details = run.name, run.details
    out(f"{name} CPU s: {_fmt_cpu(run.cpu)}")
    out(f"{name} Postgres CPU s by process: {details.get('postgres_cpu_by_kind')}")
    if name == "limit":
        out(f"limit stage busy s (summed over consumers): {details['stage_busy_s']}")
    elif name == "temporal":
        history = details.get("history")
        if history:
            out(f"temporal history: {json.dumps(history)}")
        elif "history_error" in details:
            out(f"temporal history unavailable: {details['history_error']}")
        out(f"temporal wall (client poll) s: {details['seconds_polled']}")
        for error in details.get("progress_query_errors", []):
            out(f"warning: progress query failed at {error}")
    else:
        rest = {k: v for k, v in details.items() if k != "postgres_cpu_by_kind"}
        out(f"celery: {json.dumps(rest)}")


def report(
    p: Params,
    micro: dict[str, float],
    runs: dict[str, RunResult],
    out: Callable[[str], None] = print,
    title: str = "",
) -> list[str]:
    """Print the table; return the verification errors (wrong document counts...)."""
    problems: list[str] = []
    for run in runs.values():
        if run.docs_stored != p.docs:
            problems.append(f"{run.name}: {run.docs_stored} documents stored, expected {p.docs}")
        problems.extend(f"{run.name}: {e}" for e in run.errors)
    out("")
    out(
        f"Sluice indexing benchmark  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  "
        f"{os.cpu_count()} cores  Python {platform.python_version()}"
    )
    out(
        f"docs={p.docs} size={p.size}B batch_size={p.batch_size} in_flight={p.in_flight} "
        f"batches_per_fetch={p.batches_per_fetch} workers={','.join(p.workers)}"
        + (" no_hnsw" if p.no_hnsw else "")
        + (f"  ({title})" if title else "")
    )
    if runs:
        _table(p, runs, out)
    for name in RUNS:
        if name in runs:
            _run_details(runs[name], out)
    out(f"isolated costs: {json.dumps(micro)}")
    for problem in problems:
        out(f"ERROR: {problem}")
    return problems


# --- main -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.indexing", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--docs", type=int, default=20000, help="documents to index")
    parser.add_argument("--size", type=int, default=2000, help="bytes of text per document")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--in-flight", type=int, default=2, help="batches processed at once")
    parser.add_argument("--batches-per-fetch", type=int, default=5)
    parser.add_argument(
        "--workers",
        default="background",
        help="worker kinds, comma-separated (background, or e.g. "
        "primary,docfetching,docprocessing,light)",
    )
    parser.add_argument(
        "--only",
        type=_run_names,
        default=RUNS,
        help="runs to do, comma-separated: limit, temporal, celery (default: all three; "
        "'both' is limit,temporal)",
    )
    parser.add_argument(
        "--temporal-first",
        action="store_true",
        help="start with the Temporal path (temporal, limit, celery; to check for order effects)",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run, at most")
    parser.add_argument(
        "--keep-tenants",
        action="store_true",
        help="keep the runs' schemas (default: drop each after its run, for equal footing)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="repetitions (order alternates), medians at the end"
    )
    parser.add_argument(
        "--no-hnsw",
        action="store_true",
        help="diagnostic: drop the HNSW vector index in every run's tenant, so Postgres is not "
        "the bottleneck and the orchestration overhead shows",
    )
    parser.add_argument("--json", type=Path, default=None, help="append results to this file")
    parser.add_argument(
        "--keep-logs", type=Path, default=None, help="copy the stack and worker logs here"
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so workers and servers are stopped on the way out."""

    def handler(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_names(value: str) -> tuple[str, ...]:
    names = {n.strip() for n in value.split(",") if n.strip()}
    if "both" in names:
        names = (names - {"both"}) | {"limit", "temporal"}
    unknown = names - set(RUNS)
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"expected some of {', '.join(RUNS)}, got {value!r}")
    return tuple(n for n in RUNS if n in names)


def _say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_order(rep: int, only: tuple[str, ...], temporal_first: bool) -> list[str]:
    """The runs of repetition ``rep``: the order reverses every other repetition (ABC CBA),
    so no path always runs on a freshly started or a well-warmed server."""
    order = ["temporal", "limit", "celery"] if temporal_first else list(RUNS)
    if rep % 2 == 1:
        order.reverse()
    return [name for name in order if name in only]


@dataclass
class Bench:
    """The stack started once; each ``do_*`` runs one path into a fresh tenant."""

    p: Params
    env: dict[str, str]
    components: dict[str, list[int]]
    logs: Path

    def do_limit(self, tenant: str) -> RunResult:
        _say(f"limit run: {self.p.docs} documents in-process (tenant {tenant})")
        return asyncio.run(run_limit(tenant, self.p, CpuMeter(self.components)))

    def do_temporal(self, tenant: str) -> RunResult:
        _say(f"starting worker(s): {', '.join(self.p.workers)}")
        workers = start_workers(self.p.workers, self.env, self.logs)
        try:
            wait_ready(workers)
            removed = asyncio.run(_in_own_loop(remove_schedules))
            _say(f"removed {removed} schedules the worker made at start (no periodic jobs)")
            meter = CpuMeter({**self.components, "worker": [w.proc.pid for w in workers]})
            _say(f"temporal run: {self.p.docs} documents via the connector workflow ({tenant})")
            return asyncio.run(run_temporal(tenant, self.p, meter, workers))
        finally:
            _say("stopping worker(s)")
            stop_workers(workers)

    def do_celery(self, tenant: str) -> RunResult:
        from bench import celery_baseline

        celery_baseline.use_broker(self.env["REDIS_URL"])
        _say(f"starting celery workers (docprocessing: {self.p.in_flight} threads)")
        workers = celery_baseline.start_workers(self.env, self.logs, self.p.in_flight)
        try:
            celery_baseline.wait_ready(workers)
            meter = CpuMeter({**self.components, "worker": [w.proc.pid for w in workers]})
            _say(f"celery run: {self.p.docs} documents via docfetching/docprocessing ({tenant})")
            return asyncio.run(run_celery(tenant, self.p, meter, workers))
        finally:
            _say("stopping celery workers")
            celery_baseline.stop_workers(workers)

    def run(self, name: str, tenant: str) -> RunResult:
        runner = {"limit": self.do_limit, "temporal": self.do_temporal, "celery": self.do_celery}
        result = runner[name](tenant)
        _say(f"{name}: {result.seconds:.2f}s, {result.docs_per_s(self.p.docs):.0f} docs/s")
        return result


def _usage_error(message: str) -> NoReturn:
    """One line on stderr and exit status 2, as the CLI does for bad input."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def unpolled_queues(kinds: tuple[str, ...]) -> list[str]:
    """The queues a connector's indexing run uses that none of ``kinds`` polls.

    Without this check a worker set such as ``primary,docfetching,docprocessing`` (no
    ``light``, which polls ``checkpoint_cleanup``) leaves the attempt waiting for ever.
    """
    from sluice.queues import TaskQueue
    from sluice.temporal import policies
    from workers.kinds import get_kind

    needed = [TaskQueue.PRIMARY]  # the connector workflow's own queue
    for policy in (
        policies.STORE_SETTINGS,
        policies.FETCH_DOCUMENTS,
        policies.PROCESS_BATCH,
        policies.ATTEMPT_BOOKKEEPING,
        policies.STAGED_BATCH_CLEANUP,
    ):
        needed.append(policy.task_queue)
    polled = {queue for kind in kinds for queue in get_kind(kind).queues}
    return [queue.value for queue in dict.fromkeys(needed) if queue not in polled]


def _params(args: argparse.Namespace) -> Params:
    kinds = tuple(k.strip() for k in args.workers.split(",") if k.strip())
    from sluice.errors import ConfigurationError

    try:
        missing = unpolled_queues(kinds)
    except ConfigurationError as err:  # a typo in a kind's name
        _usage_error(f"--workers: {err}")
    if missing and "temporal" in args.only:
        _usage_error(
            f"--workers {','.join(kinds)}: no worker polls {', '.join(missing)}, "
            "which an indexing run uses (add the kind that does, e.g. light)"
        )
    return Params(
        docs=args.docs,
        size=args.size,
        batch_size=args.batch_size,
        in_flight=args.in_flight,
        batches_per_fetch=args.batches_per_fetch,
        workers=kinds,
        timeout=args.timeout,
        keep_tenants=args.keep_tenants,
        no_hnsw=args.no_hnsw,
    )


def _start(exits: contextlib.ExitStack, p: Params, args: argparse.Namespace) -> Bench:
    """Start the stack (or use the servers the environment names) for the whole run."""
    from sluice.config import get_settings
    from sluice.devstack import dev_stack

    tmp = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="sluice-bench-")))
    _say("starting the stack")
    stack = exits.enter_context(
        dev_stack(
            tmp,
            database_url=os.environ.get("DATABASE_URL") or None,
            redis_url=os.environ.get("REDIS_URL") or None,
            temporal_address=os.environ.get("TEMPORAL_ADDRESS") or None,
            ports={"postgres": None, "redis": None, "temporal": None, "temporal_ui": None},
            ui=False,
        )
    )
    if args.keep_logs is not None:
        exits.callback(_copy_logs, tmp / "logs", args.keep_logs)
    os.environ.update(stack.env)
    get_settings.cache_clear()
    services = {s.name: s.proc.pid for s in stack.services}
    components = {"bench": [os.getpid()]}
    for name in ("postgres", "temporal", "redis"):
        if name in services:
            components[name] = [services[name]]
    return Bench(p, dict(stack.env), components, tmp / "logs")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    p = _params(args)
    problems: list[str] = []
    reps: list[dict[str, RunResult]] = []
    with contextlib.ExitStack() as exits:
        exits.enter_context(_terminate_as_interrupt())
        bench = _start(exits, p, args)
        micro = micro_costs(p)
        for rep in range(args.repeat):
            order = run_order(rep, args.only, args.temporal_first)
            suffix = uuid.uuid4().hex[:8]
            tenants = {name: f"bench_{name}_{suffix}" for name in order}
            _say(f"migrating tenants {', '.join(tenants.values())}")
            asyncio.run(prepare(list(tenants.values()), p))
            runs = {name: bench.run(name, tenants[name]) for name in order}
            title = f"repetition {rep + 1}/{args.repeat}, order {' then '.join(order)}"
            found = report(p, micro, runs, title=title)
            problems.extend(found)
            reps.append(runs)
            if args.json is not None:
                _append_json(args.json, p, micro, runs, found, rep, order)
        if len(reps) > 1:
            summarise(p, reps)
        _say("stopping the stack")
    return 1 if problems else 0


def summarise(p: Params, reps: list[dict[str, RunResult]]) -> None:
    """Medians over the repetitions (single runs vary by ~10 % on a shared 2-core box)."""
    print("")
    print(f"summary over {len(reps)} repetitions (median [min-max]):")

    def line(label: str, values: list[float], fmt: str) -> None:
        if values:
            med, lo, hi = statistics.median(values), min(values), max(values)
            print(f"  {label:<23}{med:{fmt}} [{lo:{fmt}}-{hi:{fmt}}]")

    for name in RUNS:
        values = [runs[name].docs_per_s(p.docs) for runs in reps if name in runs]
        line(f"{LABELS[name]} docs/s", values, ".0f")
    per_rep = [ratios(p, runs) for runs in reps]
    for key in dict.fromkeys(k for found in per_rep for k in found):
        line(key, [found[key] for found in per_rep if key in found], ".2f")
    for name in RUNS:
        system = [runs[name].cpu_per_kdoc(p.docs) for runs in reps if name in runs]
        line(f"{LABELS[name]} CPU-s/1k docs", [total for total, _ in system], ".2f")
        line("  outside Postgres", [outside for _, outside in system], ".2f")
    for name, what in (("temporal", "sluice worker RSS MB"), ("celery", "celery workers RSS MB")):
        line(what, [runs[name].rss_mb for runs in reps if name in runs], ".0f")


def _copy_logs(source: Path, target: Path) -> None:
    import shutil

    target.mkdir(parents=True, exist_ok=True)
    for log in source.glob("*.log"):
        shutil.copy2(log, target / log.name)


def _append_json(
    path: Path,
    p: Params,
    micro: dict[str, float],
    runs: dict[str, RunResult],
    problems: list[str],
    repetition: int,
    order: list[str],
) -> None:
    record: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "params": asdict(p),
        "repetition": repetition,
        "order": order,
        "micro": micro,
        "problems": problems,
    }
    for run in runs.values():
        record[run.name] = {**asdict(run), "docs_per_s": round(run.docs_per_s(p.docs), 1)}
    record["ratios"] = ratios(p, runs)
    if "sluice/limit" in record["ratios"]:
        record["ratio"] = record["ratios"]["sluice/limit"]  # as earlier lines have it
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as out:
        out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
