"""The Celery baseline: the seed's docfetching → docprocessing design on Celery 5 + Redis.

What Sluice replaces, run on the same stack and the same code, for
``bench/indexing.py`` (``--only celery``):

* **docfetching** (queue ``connector_doc_fetching``): runs the connector, stages each
  batch and enqueues one **docprocessing** task per batch. The seed stages batches in
  its *file store* (Postgres-backed) and passes references through Redis; here they go
  to Postgres, into Sluice's own ``staged_batch`` table with the same encoding
  (:func:`sluice.indexing.staging.stage_batch`), so staging costs the same on both sides
  and only the orchestration differs. No backpressure: the seed's docfetching enqueues
  as fast as the connector yields.
* **docprocessing** (queue ``docprocessing``): in one transaction, loads the batch,
  runs :func:`sluice.indexing.pipeline.index_documents` (the function the in-process
  limit runs; the Temporal activity runs its two halves), records the attempt's
  counters and releases the staged documents, then reports the commit to a Redis list.
  A redelivered task (``acks_late``) finds the batch processed and writes nothing.

The workers are real ``celery worker`` processes with the seeds' settings:
``--pool threads``, ``task_acks_late=True``, ``worker_prefetch_multiplier=1``. One per
queue, as the seed's dedicated workers: docfetching with 1 thread, docprocessing with
as many threads as Sluice's ``max_batches_in_flight``, so at most that many batches
are processed at once on both sides. Each worker runs the async pipeline on one event
loop in its own thread (one connection pool per process, like the limit's consumers);
task threads wait for their coroutine. The WordLlama model is loaded before the worker
reports ready.

The clock runs from the enqueue of the fetch task until the last batch commits
(the commit times the tasks report).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import redis
from celery import Celery
from celery.signals import worker_ready
from kombu import Exchange, Queue

from sluice.ccpairs import create_cc_pair
from sluice.config import get_settings
from sluice.connectors.base import ConnectorContext
from sluice.connectors.models import Checkpoint, Document
from sluice.connectors.registry import build_connector
from sluice.db.session import tenant_connection
from sluice.devstack import die_with_parent
from sluice.index.embedding import EmbeddingProvider, embedder_from_settings
from sluice.indexing.attempts import add_batch_result, create_attempt, record_failures
from sluice.indexing.models import ProcessResult
from sluice.indexing.pipeline import index_documents
from sluice.indexing.staging import delete_attempt_batches, load_batch, mark_processed, stage_batch

FETCH_QUEUE = "connector_doc_fetching"
PROCESS_QUEUE = "docprocessing"
READY_KEY_ENV = "SLUICE_BENCH_CELERY_READY_KEY"
WARM_ENV = "SLUICE_BENCH_CELERY_WARM"
REPO_ROOT = Path(__file__).resolve().parents[1]

app = Celery("sluice_bench_celery")
app.conf.update(
    broker_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    task_queues=[Queue(q, Exchange(q), routing_key=q) for q in (FETCH_QUEUE, PROCESS_QUEUE)],
    task_routes={"docfetching": {"queue": FETCH_QUEUE}, "docprocessing": {"queue": PROCESS_QUEUE}},
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@dataclass(frozen=True)
class Job:
    """One indexing run, as the tasks receive it (JSON)."""

    tenant: str
    cc_pair_id: int
    attempt_id: int
    config: dict[str, Any]
    batch_size: int
    events: str
    """The Redis list the tasks report to (fetched, processed, errors)."""
    source: str = "synthetic"


def use_broker(url: str) -> None:
    """Point this process's app at ``url`` (before it first connects)."""
    app.conf.broker_url = url


@cache
def _redis_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def _redis() -> redis.Redis:
    return _redis_for(app.conf.broker_url)


def _report(key: str, **fields: Any) -> None:
    _redis().rpush(key, json.dumps(fields))


# --- the worker side ------------------------------------------------------------------

_T = TypeVar("_T")
_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def run_async(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` on the process's event loop (started on first use in its own thread)
    and wait: task threads share one loop, so they share one connection pool."""
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="bench-loop", daemon=True).start()
    return asyncio.run_coroutine_threadsafe(coro, _loop).result()


@cache
def embedder() -> EmbeddingProvider:
    """The configured embedding provider, loaded once per worker process."""
    provider = embedder_from_settings(get_settings())
    warm_up = getattr(provider, "warm_up", None)
    if warm_up is not None:
        warm_up()
    return provider


@worker_ready.connect
def _on_worker_ready(**_kwargs: Any) -> None:
    if os.environ.get(WARM_ENV):
        embedder()
    key = os.environ.get(READY_KEY_ENV)
    if key:
        _redis().set(key, os.getpid())


async def _stage_and_enqueue(job: Job, seq: int, documents: list[Document]) -> None:
    async with tenant_connection(job.tenant) as (_, raw):
        ref = await stage_batch(raw, job.cc_pair_id, job.attempt_id, seq, documents)
    docprocessing.apply_async((asdict(job), ref.batch_id, time.time()))


async def _fetch(job: Job) -> tuple[int, int]:
    """Run the connector; stage and enqueue each batch. (batches, per-document failures)"""
    context = ConnectorContext(job.tenant, job.cc_pair_id, 1)
    connector = build_connector(job.source, job.config, context)
    batch: list[Document] = []
    seq = failures = 0
    async for output in connector.load(Checkpoint()):
        if output.document is None:
            failures += 1
            continue
        batch.append(output.document)
        if len(batch) >= job.batch_size:
            await _stage_and_enqueue(job, seq, batch)
            seq, batch = seq + 1, []
    if batch:
        await _stage_and_enqueue(job, seq, batch)
        seq += 1
    return seq, failures


async def _process(job: Job, batch_id: int) -> ProcessResult:
    """Index one staged batch in one transaction (nothing twice on a redelivery)."""
    async with tenant_connection(job.tenant) as (_, raw):
        documents, done = await load_batch(raw, batch_id)
        if done is not None:
            return done
        result, failures = await index_documents(raw, job.cc_pair_id, documents, embedder())
        await record_failures(raw, job.attempt_id, job.cc_pair_id, "processing", failures)
        await add_batch_result(raw, job.attempt_id, result)
        await mark_processed(raw, batch_id, result)
    return result


@app.task(name="docfetching")
def docfetching(job: dict[str, Any]) -> None:
    spec = Job(**job)
    try:
        batches, failures = run_async(_fetch(spec))
    except Exception as exc:
        _report(spec.events, kind="fetch_error", error=repr(exc))
        raise
    _report(spec.events, kind="fetched", batches=batches, failures=failures, at=time.time())


@app.task(name="docprocessing")
def docprocessing(job: dict[str, Any], batch_id: int, enqueued_at: float) -> None:
    spec = Job(**job)
    started = time.time()
    try:
        result = run_async(_process(spec, batch_id))
    except Exception as exc:
        _report(spec.events, kind="process_error", batch_id=batch_id, error=repr(exc))
        raise
    _report(
        spec.events,
        kind="processed",
        batch_id=batch_id,
        enqueued=enqueued_at,
        started=started,
        committed=time.time(),
        docs=result.docs_indexed,
        failed=result.docs_failed,
        chunks=result.chunks_written,
    )


# --- the bench side: workers --------------------------------------------------------


@dataclass
class CeleryWorker:
    queue: str
    proc: subprocess.Popen[bytes]
    log: Path
    ready_key: str


def start_workers(env: dict[str, str], log_dir: Path, in_flight: int) -> list[CeleryWorker]:
    """``celery worker`` processes: docfetching (1 thread), docprocessing (``in_flight``)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    workers = []
    for queue, threads in ((FETCH_QUEUE, 1), (PROCESS_QUEUE, in_flight)):
        log = log_dir / f"celery-{queue}.log"
        ready_key = f"sluice-bench:ready:{queue}:{tag}"
        extra = {READY_KEY_ENV: ready_key, WARM_ENV: "1" if queue == PROCESS_QUEUE else ""}
        args = [sys.executable, "-m", "celery", "-A", "bench.celery_baseline", "worker"]
        args += ["--pool", "threads", "--concurrency", str(threads), "-Q", queue]
        args += ["-n", f"{queue}@{tag}", "--without-gossip", "--without-mingle"]
        args += ["--without-heartbeat", "--loglevel", "WARNING"]
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                args,
                env={**os.environ, **env, **extra},
                cwd=REPO_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent(),
            )
        workers.append(CeleryWorker(queue, proc, log, ready_key))
    return workers


def wait_ready(workers: list[CeleryWorker], timeout: float = 120) -> None:
    """Until every worker has set its ready key (after its model load)."""
    deadline = time.monotonic() + timeout
    pending = list(workers)
    while pending:
        for w in list(pending):
            if w.proc.poll() is not None:
                tail = "\n".join(w.log.read_text(errors="replace").splitlines()[-15:])
                raise RuntimeError(f"celery worker {w.queue} exited: {w.proc.returncode}\n{tail}")
            if _redis().get(w.ready_key) is not None:
                pending.remove(w)
        if pending and time.monotonic() > deadline:
            names = ", ".join(w.queue for w in pending)
            raise RuntimeError(f"celery workers not ready after {timeout:.0f}s: {names}")
        time.sleep(0.1)


def stop_workers(workers: list[CeleryWorker], timeout: float = 20) -> None:
    """SIGTERM (Celery's warm shutdown), then SIGKILL after ``timeout``."""
    for w in workers:
        if w.proc.poll() is None:
            w.proc.terminate()
    deadline = time.monotonic() + timeout
    for w in workers:
        try:
            w.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait(5)
        _redis().delete(w.ready_key)


# --- the bench side: one run ---------------------------------------------------------


async def create_job(tenant: str, config: dict[str, Any], batch_size: int) -> Job:
    """The cc-pair and the index-attempt row the staged batches belong to."""
    pair = await create_cc_pair(tenant, name="bench-celery", source="synthetic", config=config)
    run_id = f"celery-{tenant}"
    async with tenant_connection(tenant) as (_, raw):
        attempt_id = await create_attempt(raw, pair.id, True, "celery", run_id)
    events = f"sluice-bench:events:{tenant}"
    return Job(tenant, pair.id, attempt_id, config, batch_size, events)


async def delete_staged(job: Job) -> int:
    """The seed's cleanup of staged batches, after the clock."""
    async with tenant_connection(job.tenant) as (_, raw):
        return await delete_attempt_batches(raw, job.attempt_id)


@dataclass
class CeleryRun:
    seconds: float
    batches: int
    docs_indexed: int
    chunks_written: int
    errors: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Tally:
    """What the tasks reported so far."""

    expected: int | None = None
    fetched_at: float | None = None
    processed: dict[int, dict[str, Any]] = field(default_factory=dict)
    failed_batches: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    fetch_failed: bool = False
    repeats: int = 0
    """Tasks that ran again (a redelivery, or a message routed twice): 0 expected."""

    def add(self, event: dict[str, Any]) -> None:
        kind = event["kind"]
        if kind == "fetched":
            self.repeats += self.expected is not None
            self.expected, self.fetched_at = event["batches"], event["at"]
            if event["failures"]:
                self.errors.append(f"{event['failures']} documents failed to fetch")
        elif kind == "processed":
            self.repeats += event["batch_id"] in self.processed
            self.processed[event["batch_id"]] = event
        elif kind == "process_error":
            self.failed_batches.add(event["batch_id"])
            self.errors.append(f"batch {event['batch_id']}: {event['error']}")
        else:
            self.fetch_failed = True
            self.errors.append(f"docfetching: {event.get('error')}")

    def finished(self) -> bool:
        done = len(self.processed.keys() | self.failed_batches)
        return self.fetch_failed or (self.expected is not None and done >= self.expected)


def enqueue_and_wait(job: Job, timeout: float) -> CeleryRun:
    """Enqueue the fetch task and wait until every batch it staged has committed."""
    r = _redis()
    r.delete(job.events)
    app.control.purge()  # nothing a failed earlier run left in the queues
    tally = _Tally()
    t0 = time.time()
    docfetching.apply_async((asdict(job),))
    deadline = time.monotonic() + timeout
    while not tally.finished():
        if time.monotonic() > deadline:
            tally.errors.append(f"timed out after {timeout:.0f}s")
            break
        item = r.blpop([job.events], timeout=1)
        if item is not None:
            tally.add(json.loads(item[1]))
    return _summary(tally, t0)


def _summary(tally: _Tally, t0: float) -> CeleryRun:
    events = list(tally.processed.values())
    end = max((e["committed"] for e in events), default=time.time())
    details: dict[str, Any] = {"batches_expected": tally.expected, "task_repeats": tally.repeats}
    if tally.fetched_at is not None:
        details["fetch_done_s"] = round(tally.fetched_at - t0, 2)
    if events:
        busy = sum(e["committed"] - e["started"] for e in events)
        first = min(e["started"] for e in events)
        details["first_commit_s"] = round(min(e["committed"] for e in events) - t0, 2)
        details["queue_wait_s_mean"] = round(
            sum(e["started"] - e["enqueued"] for e in events) / len(events), 2
        )
        details["process_s_mean"] = round(busy / len(events), 3)
        details["process_concurrency_mean"] = round(busy / (end - first), 2) if end > first else 0
    return CeleryRun(
        seconds=end - t0,
        batches=len(events),
        docs_indexed=sum(e["docs"] for e in events),
        chunks_written=sum(e["chunks"] for e in events),
        errors=tally.errors[:5],
        details=details,
    )
