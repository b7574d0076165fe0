"""Search latency at scale: p50/p95/p99 of ``sluice.index.search.search()`` per query kind.

Run::

    uv run python -m bench.search_latency [--chunks 100000] [--queries 250]
        [--stack-dir DIR] [--tenant NAME] [--keep-hnsw] [--explain 3] [--json FILE]

Starts embedded Postgres (or uses DATABASE_URL), creates a fresh tenant and indexes at
least ``--chunks`` chunks in-process with :func:`sluice.indexing.pipeline.index_documents`
(WordLlama embeddings, as the worker does). The corpus is real text: the Python sources
of the standard library and of the installed packages (code, docstrings, comments:
a large vocabulary with realistic document frequencies) under one ``filesystem``
cc-pair, plus about 10 % of chunks from the synthetic connector's generator under a
``synthetic`` cc-pair, so filtered queries have a selective filter to honour.

The HNSW index is dropped for the bulk load and built once at the end (with
``maintenance_work_mem`` raised): building it once is several times faster than
inserting 100,000 vectors into it one by one, and search sees the same index either way.
``--keep-hnsw`` loads with the index in place instead.

Then it runs a mixed query set (short keywords, identifiers, natural-language questions,
queries with one very common word, filtered queries with ``connector=`` / ``source=``)
through the public API, one at a time after a warm-up, and prints p50/p95/p99 per kind
and overall, plus where the time goes: the live-generation lookup, embedding the query,
``text_query`` (lexemes and IDFs), the main SQL, and the rest (pool checkout,
transactions, result objects). The slowest queries are re-run statement by statement
with ``EXPLAIN (ANALYZE, BUFFERS)``.

``--stack-dir DIR`` keeps the database between runs; with ``--tenant NAME`` an
already indexed tenant is reused (no re-indexing), so before/after comparisons run on
identical data. Exits non-zero only on errors (nothing is asserted about timings).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import sys
import sysconfig
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEED = 11
MAX_FILE_BYTES = 300_000
"""Skip huge generated files (tables, vendored data): they are not realistic documents."""
SYNTHETIC_SHARE = 0.1
BATCH_DOCS = 100

KINDS = ("keyword", "identifier", "question", "common-word", "filtered")

QUESTIONS = (
    "how do I parse a url with query parameters",
    "what happens when the connection times out",
    "how are cookies stored between requests",
    "how to read a file line by line",
    "why does the decoder raise an error on invalid bytes",
    "how can I retry a failed http request",
    "what is the default encoding used for text files",
    "how to compare two dates with time zones",
    "where is the configuration file loaded from",
    "how do I run a subprocess and capture its output",
    "how to serialize an object to json",
    "what does the lock protect in the thread pool",
    "how are command line arguments parsed",
    "how is the cache invalidated when a file changes",
    "how to validate an email address",
    "what is the maximum recursion depth",
    "how do I create a temporary directory",
    "how are environment variables expanded in paths",
    "how to handle a keyboard interrupt gracefully",
    "what happens if the socket is closed by the peer",
    "how do I compute a hash of a large file",
    "how does the scheduler decide which task runs next",
    "how to format a number with thousands separators",
    "how is a redirect followed with the same method",
    "how to convert a string to a datetime",
    "what exceptions can be raised when opening a database",
    "how do I register a custom type for the encoder",
    "how are unicode characters normalized before comparison",
    "how to iterate over a directory tree recursively",
    "what is the difference between a list and a tuple",
    "how to merge two dictionaries with defaults",
    "how do I log warnings to a file",
    "how are headers case insensitive in responses",
    "how do I limit the size of a queue",
    "how to compress data with gzip before sending",
    "how is the ssl certificate verified",
    "how to cancel a running asyncio task",
    "what does the garbage collector do with reference cycles",
    "how to sort a list of objects by an attribute",
    "how do I mock a function in a unit test",
)


@dataclass
class Query:
    kind: str
    text: str
    connector: int | None = None
    source: str | None = None


@dataclass
class Timing:
    generation: float = 0.0
    embed: float = 0.0
    text_query: float = 0.0
    main_sql: float = 0.0
    total: float = 0.0

    @property
    def other(self) -> float:
        return self.total - self.generation - self.embed - self.text_query - self.main_sql


@dataclass
class Corpus:
    docs: int = 0
    chunks: int = 0
    index_s: float = 0.0
    hnsw_s: float = 0.0
    words: Counter[str] = field(default_factory=Counter)
    identifiers: list[str] = field(default_factory=list)


# --- the corpus -------------------------------------------------------------------------


def source_files() -> Iterator[tuple[str, Path]]:
    """(id, path) of every Python file of the stdlib and site-packages, sorted."""
    roots = [Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])]
    seen: set[Path] = set()
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if "site-packages" in path.parts and root.name != "site-packages":
                continue  # the stdlib root contains site-packages: read it once, below
            real = path.resolve()
            if real in seen:
                continue
            seen.add(real)
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    continue
            except OSError:
                continue
            yield f"{root.name}/{path.relative_to(root).as_posix()}", path


_WORD = re.compile(r"[a-z]{4,}")
_DEF = re.compile(r"^\s*(?:async\s+)?def\s+([a-z][a-z0-9]*_[a-z0-9_]+)\s*\(", re.M)


def code_documents() -> Iterator[Any]:
    from sluice.connectors.models import Document

    for doc_id, path in source_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if not text.strip():
            continue
        yield Document(
            id=doc_id,
            source="filesystem",
            semantic_identifier=doc_id,
            link=f"file://{path}",
            sections=[{"text": text}],  # type: ignore[list-item]
            acl=["public"],
        )


def synthetic_documents(count: int) -> Iterator[Any]:
    from sluice.connectors.base import ConnectorContext
    from sluice.connectors.models import Document
    from sluice.connectors.registry import build_connector

    connector = build_connector(
        "synthetic", {"count": count, "size_bytes": 2000, "seed": SEED}, ConnectorContext()
    )
    for position in range(count):
        item = connector.item(position)  # type: ignore[attr-defined]
        if isinstance(item, Document):
            yield item


async def index_corpus(tenant: str, target: int, keep_hnsw: bool, say: Any) -> Corpus:
    from sluice.ccpairs import create_cc_pair
    from sluice.db.session import tenant_connection
    from sluice.index.embedding import WordLlamaProvider
    from sluice.index.generations import hnsw_index_ddl
    from sluice.indexing.pipeline import index_documents

    corpus = Corpus()
    root = sysconfig.get_paths()["stdlib"]
    code = await create_cc_pair(
        tenant, name="python-sources", source="filesystem", config={"path": root}
    )
    syn = await create_cc_pair(
        tenant,
        name="synthetic",
        source="synthetic",
        config={"count": 1, "size_bytes": 2000, "seed": SEED},
    )
    embedder = WordLlamaProvider()
    embedder.warm_up()
    if not keep_hnsw:
        async with tenant_connection(tenant) as (_, raw):
            await raw.execute("DROP INDEX IF EXISTS ix_chunk_vector_1_hnsw")
    t0 = time.perf_counter()

    async def load(pair_id: int, docs: Iterator[Any], until: int) -> None:
        batch: list[Any] = []

        async def flush() -> None:
            async with tenant_connection(tenant) as (_, raw):
                result, failures = await index_documents(raw, pair_id, batch, embedder)
            if failures:
                raise RuntimeError(f"indexing failed: {failures[:3]}")
            corpus.docs += result.docs_indexed
            corpus.chunks += result.chunks_written
            batch.clear()

        for doc in docs:
            batch.append(doc)
            if len(batch) >= BATCH_DOCS:
                await flush()
                if corpus.chunks >= until:
                    break
        if batch and corpus.chunks < until:
            await flush()

    syn_chunks = int(target * SYNTHETIC_SHARE)
    await load(syn.id, synthetic_documents(syn_chunks), syn_chunks)
    say(f"  synthetic: {corpus.docs} docs, {corpus.chunks} chunks")
    await load(code.id, code_documents(), target)
    corpus.index_s = time.perf_counter() - t0
    say(f"  total: {corpus.docs} docs, {corpus.chunks} chunks in {corpus.index_s:.0f}s")
    if corpus.chunks < target:
        raise RuntimeError(f"only {corpus.chunks} chunks of text found, wanted {target}")
    t1 = time.perf_counter()
    async with tenant_connection(tenant) as (_, raw):
        if not keep_hnsw:
            await raw.execute("SET LOCAL maintenance_work_mem = '1GB'")
            await raw.execute("SET LOCAL max_parallel_maintenance_workers = 2")
            await raw.execute(hnsw_index_ddl("chunk_vector_1", concurrently=False), timeout=3600)
        await raw.execute("ANALYZE", timeout=3600)
    corpus.hnsw_s = time.perf_counter() - t1
    say(f"  HNSW build + ANALYZE: {corpus.hnsw_s:.0f}s")
    return corpus


async def vocabulary_from_index(tenant: str, corpus: Corpus) -> None:
    """Words and identifiers for queries, from a fixed sample of the indexed code chunks
    (the same for a fresh tenant and a reused one, so both runs ask the same queries)."""
    from sluice.db.session import tenant_connection

    async with tenant_connection(tenant) as (_, raw):
        rows = await raw.fetch(
            "SELECT content FROM chunk WHERE document_id NOT LIKE 'syn:%' "
            "ORDER BY md5(document_id || '#' || chunk_id) LIMIT 20000"
        )
    for r in rows:
        corpus.words.update(_WORD.findall(r["content"].lower()))
        corpus.identifiers.extend(_DEF.findall(r["content"])[:1])


# --- the queries ------------------------------------------------------------------------


def make_queries(corpus: Corpus, n: int, pairs: dict[str, int]) -> list[Query]:
    rng = random.Random(SEED)
    ranked = [w for w, _ in corpus.words.most_common()]
    common = [w for w in ranked[:60] if w not in {"self", "none", "true", "false"}][:30]
    common += ["self", "return", "import"]
    mid = ranked[300:6000]
    rare = ranked[6000:30000] or mid
    idents = sorted(set(corpus.identifiers))
    per_kind = max(1, n // len(KINDS))
    out: list[Query] = []
    for _ in range(per_kind):
        words = rng.sample(mid, rng.choice((1, 2, 2, 3)))
        if rng.random() < 0.3:
            words[-1] = rng.choice(rare)
        out.append(Query("keyword", " ".join(words)))
    for i in range(per_kind):
        ident = rng.choice(idents)
        forms = (ident, f"{ident}()", f"def {ident}", f"{rng.choice(mid)}.{ident}")
        out.append(Query("identifier", forms[i % len(forms)]))
    for i in range(per_kind):
        out.append(Query("question", QUESTIONS[i % len(QUESTIONS)]))
    for i in range(per_kind):
        word = rng.choice(common)
        forms = (
            f"{word} {rng.choice(mid)}",
            f"{rng.choice(mid)} {word} {rng.choice(mid)}",
            word,
            f"{word} {rng.choice(idents)}",
        )
        out.append(Query("common-word", forms[i % len(forms)]))
    for i in range(n - len(out)):
        text = rng.choice((rng.choice(QUESTIONS), " ".join(rng.sample(mid, 2))))
        if i % 2:
            out.append(Query("filtered", text, source="synthetic"))
        else:
            out.append(Query("filtered", text, connector=pairs["python-sources"]))
    rng.shuffle(out)
    return out


# --- instrumentation --------------------------------------------------------------------


class Probe:
    """Wraps the pieces ``search()`` calls, adding their time to ``current``."""

    def __init__(self) -> None:
        self.current = Timing()
        self._undo: list[tuple[Any, str, Any]] = []

    def _wrap(self, owner: Any, name: str, slot: str) -> None:
        original = getattr(owner, name)
        probe = self

        async def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                setattr(
                    probe.current,
                    slot,
                    getattr(probe.current, slot) + time.perf_counter() - t,
                )

        setattr(owner, name, timed)
        self._undo.append((owner, name, original))

    def install(self) -> None:
        import sluice.index.generations as generations
        import sluice.index.store as store
        from sluice.index.embedding import WordLlamaProvider

        self._wrap(generations, "live_generation", "generation")
        self._wrap(WordLlamaProvider, "embed", "embed")
        self._wrap(store, "text_query", "text_query")
        self._wrap(store, "hybrid_search", "main_sql")  # minus text_query, below

    def uninstall(self) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()


class Recorder:
    """A raw connection stand-in that records each statement (SQL, args, ms)."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.statements: list[tuple[str, tuple[Any, ...], float]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    async def _timed(self, method: str, sql: str, *args: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return await getattr(self._raw, method)(sql, *args, **kw)
        finally:
            self.statements.append((sql, args, (time.perf_counter() - t) * 1000))

    async def fetch(self, sql: str, *args: Any, **kw: Any) -> Any:
        return await self._timed("fetch", sql, *args, **kw)

    async def fetchrow(self, sql: str, *args: Any, **kw: Any) -> Any:
        return await self._timed("fetchrow", sql, *args, **kw)

    async def fetchval(self, sql: str, *args: Any, **kw: Any) -> Any:
        return await self._timed("fetchval", sql, *args, **kw)

    async def execute(self, sql: str, *args: Any, **kw: Any) -> Any:
        return await self._timed("execute", sql, *args, **kw)


async def explain(tenant: str, q: Query) -> list[str]:
    """Each statement of one search with its time; EXPLAIN (ANALYZE, BUFFERS) of the slowest."""
    from sluice.config import get_settings
    from sluice.db.session import tenant_connection
    from sluice.index.generations import live_generation
    from sluice.index.search import _query_embedders
    from sluice.index.store import hybrid_search

    settings = get_settings()
    async with tenant_connection(tenant) as (_, raw):
        generation = await live_generation(raw)
    vector = (await _query_embedders().for_spec(generation.spec).embed([q.text]))[0]
    lines: list[str] = []
    async with tenant_connection(tenant) as (_, raw):
        rec = Recorder(raw)
        await hybrid_search(
            rec,
            q.text,
            vector,
            vector_table=generation.table,
            limit=10,
            candidates=settings.search_candidates,
            cc_pair_id=q.connector,
            source=q.source,
            group=True,
            vector_weight=settings.search_vector_weight,
            text_weight=settings.search_text_weight,
            rrf_k=settings.search_rrf_k,
        )
        for sql, _, ms in rec.statements:
            lines.append(f"    {ms:8.2f} ms  {' '.join(sql.split())[:100]}")
        slow = sorted(
            (s for s in rec.statements if s[0].lstrip().upper().startswith(("SELECT", "WITH"))),
            key=lambda s: -s[2],
        )[:2]
        for sql, args, ms in slow:
            plan = await raw.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
            lines.append(f"  EXPLAIN of the {ms:.1f} ms statement:")
            lines.extend("    " + r[0] for r in plan)
    return lines


# --- the run ----------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


async def run(args: argparse.Namespace, say: Any) -> dict[str, Any]:
    from sluice.ccpairs import list_cc_pairs
    from sluice.db.migrate import migrate_tenant
    from sluice.db.session import tenant_connection
    from sluice.index.search import search

    tenant = args.tenant or "bench_lat_" + uuid.uuid4().hex[:8]
    await migrate_tenant(tenant)
    async with tenant_connection(tenant) as (_, raw):
        have = int(await raw.fetchval("SELECT count(*) FROM chunk"))
    corpus = Corpus()
    if have >= args.chunks:
        say(f"reusing tenant {tenant}: {have} chunks indexed")
        corpus.chunks = have
    else:
        if have:
            raise RuntimeError(f"tenant {tenant} holds {have} chunks, fewer than --chunks")
        say(f"indexing into tenant {tenant} (at least {args.chunks} chunks)")
        corpus = await index_corpus(tenant, args.chunks, args.keep_hnsw, say)
    await vocabulary_from_index(tenant, corpus)
    pairs = {p.name: p.id for p in await list_cc_pairs(tenant)}
    queries = make_queries(corpus, args.queries, pairs)

    for q in queries[: args.warmup]:  # model load, pool, catalog and buffer cache
        await search(tenant, q.text, k=10, connector=q.connector, source=q.source)

    probe = Probe()
    probe.install()
    timings: list[tuple[Query, Timing, int]] = []
    results: list[list[str]] = []
    try:
        for q in queries:
            probe.current = Timing()
            t = time.perf_counter()
            hits = await search(tenant, q.text, k=10, connector=q.connector, source=q.source)
            probe.current.total = time.perf_counter() - t
            probe.current.main_sql -= probe.current.text_query
            timings.append((q, probe.current, len(hits)))
            results.append([h.document_id for h in hits])
    finally:
        probe.uninstall()

    by_kind: dict[str, list[Timing]] = defaultdict(list)
    for q, tm, _ in timings:
        by_kind[q.kind].append(tm)
    all_t = [tm for _, tm, _ in timings]
    table = {}
    for kind, ts in [*((k, by_kind[k]) for k in KINDS), ("overall", all_t)]:
        ms = [t.total * 1000 for t in ts]
        table[kind] = {
            "n": len(ts),
            "p50": pct(ms, 50),
            "p95": pct(ms, 95),
            "p99": pct(ms, 99),
            "max": max(ms, default=float("nan")),
        }
    parts = ("generation", "embed", "text_query", "main_sql", "other")
    breakdown = {
        kind: {
            part: {
                "mean": statistics.fmean(getattr(t, part) * 1000 for t in ts),
                "p95": pct([getattr(t, part) * 1000 for t in ts], 95),
            }
            for part in parts
        }
        for kind, ts in [*((k, by_kind[k]) for k in KINDS), ("overall", all_t)]
    }
    slowest = sorted(timings, key=lambda x: -x[1].total)[: args.explain]
    explained = []
    for q, tm, _ in slowest:
        lines = await explain(tenant, q)
        explained.append(
            {
                "kind": q.kind,
                "query": q.text,
                "connector": q.connector,
                "source": q.source,
                "ms": tm.total * 1000,
                "lines": lines,
            }
        )
    empty = sum(1 for _, _, n in timings if n == 0)
    return {
        "tenant": tenant,
        "corpus": {
            "docs": corpus.docs,
            "chunks": corpus.chunks,
            "index_s": corpus.index_s,
            "hnsw_s": corpus.hnsw_s,
        },
        "queries": len(timings),
        "empty_results": empty,
        "latency_ms": table,
        "breakdown_ms": breakdown,
        "slowest": explained,
        "results": [
            {
                "kind": q.kind,
                "query": q.text,
                "connector": q.connector,
                "source": q.source,
                "top": top,
            }
            for (q, _, _), top in zip(timings, results, strict=True)
        ],
        "machine": {"cpus": os.cpu_count()},
    }


def compare(out: dict[str, Any], path: str) -> None:
    """Top-10 overlap with an earlier run's results (the same queries): did ranking move?"""
    with open(path, encoding="utf-8") as handle:
        earlier = json.loads(handle.read().splitlines()[-1])["results"]
    key = lambda r: (r["kind"], r["query"], r["connector"], r["source"])  # noqa: E731
    before = {key(r): r["top"] for r in earlier}
    overlap: dict[str, list[float]] = defaultdict(list)
    same_first: dict[str, list[bool]] = defaultdict(list)
    for r in out["results"]:
        old = before.get(key(r))
        if old is None:
            continue
        for kind in (r["kind"], "overall"):
            overlap[kind].append(len(set(old) & set(r["top"])) / max(1, len(old)))
            same_first[kind].append(old[:1] == r["top"][:1])
    print(f"\nresults against {path}: top-10 overlap and same first hit")
    for kind, values in overlap.items():
        print(
            f"{kind:<12} {len(values):>4} queries  overlap@10 {statistics.fmean(values):.3f}"
            f"  same top-1 {statistics.fmean(same_first[kind]):.3f}"
        )


def report(out: dict[str, Any]) -> None:
    c = out["corpus"]
    print(
        f"\ncorpus: {c['chunks']} chunks"
        + (f", {c['docs']} docs, indexed in {c['index_s']:.0f}s" if c["docs"] else "")
        + (f" + {c['hnsw_s']:.0f}s HNSW build/ANALYZE" if c["hnsw_s"] else "")
        + f"; {out['queries']} queries ({out['empty_results']} with no hit), "
        f"{out['machine']['cpus']} CPUs"
    )
    print(f"\n{'kind':<12} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind, f in out["latency_ms"].items():
        print(
            f"{kind:<12} {f['n']:>4} {f['p50']:>8.1f} {f['p95']:>8.1f} {f['p99']:>8.1f} "
            f"{f['max']:>8.1f}"
        )
    parts = ("generation", "embed", "text_query", "main_sql", "other")
    print("\nwhere the time goes, mean (p95) ms:")
    print(f"{'kind':<12} " + " ".join(f"{p:>15}" for p in parts))
    for kind, b in out["breakdown_ms"].items():
        cells = " ".join(f"{b[p]['mean']:>7.2f} ({b[p]['p95']:>5.1f})" for p in parts)
        print(f"{kind:<12} {cells}")
    for s in out["slowest"]:
        filt = f" connector={s['connector']}" if s["connector"] else ""
        filt += f" source={s['source']}" if s["source"] else ""
        print(f"\nslow [{s['kind']}] {s['query']!r}{filt}: {s['ms']:.1f} ms; re-run per statement:")
        print("\n".join(s["lines"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=250)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--explain", type=int, default=3, help="EXPLAIN the N slowest queries")
    parser.add_argument("--stack-dir", default=None, help="keep the database here")
    parser.add_argument("--tenant", default=None, help="reuse this tenant if indexed")
    parser.add_argument("--keep-hnsw", action="store_true", help="load with the HNSW index")
    parser.add_argument("--json", default=None, help="append the figures to this file")
    parser.add_argument(
        "--compare", default=None, help="a --json file of an earlier run: top-10 overlap"
    )
    args = parser.parse_args(argv)

    from sluice.config import get_settings
    from sluice.db.engine import dispose_engines
    from sluice.devstack import dev_stack

    def say(message: str) -> None:
        print(message, flush=True)

    with tempfile.TemporaryDirectory(prefix="sluice-latency-") as tmp:
        stack_dir = Path(args.stack_dir) if args.stack_dir else Path(tmp) / "stack"
        with dev_stack(
            stack_dir,
            database_url=os.environ.get("DATABASE_URL") or None,
            ports={"postgres": None, "redis": None},
            with_temporal=False,
        ) as stack:
            os.environ.update(stack.env)
            get_settings.cache_clear()

            async def go() -> dict[str, Any]:
                try:
                    return await run(args, say)
                finally:
                    await dispose_engines()

            out = asyncio.run(go())  # an error raises: traceback, exit 1
    report(out)
    if args.compare:
        compare(out, args.compare)
    if args.json:
        with open(args.json, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
