"""Retrieval quality and latency on a real corpus: hybrid search vs the old ranking vs BM25.

Run::

    uv run python -m bench.search_eval [--qrels bench/eval/qrels.tsv] [-k 5] [--json FILE]

Copies the Python sources of the installed ``httpx`` and ``click`` packages into a
temporary folder, starts Postgres (embedded, or DATABASE_URL), indexes the folder into
a fresh tenant with the filesystem connector and the in-process pipeline
(:func:`sluice.indexing.pipeline.index_documents`, the same code the worker runs),
then scores the judged queries of ``--qrels`` three ways:

* **bm25-files**: plain BM25 (``rank_bm25.BM25Okapi``) over whole files, tokens
  ``\\w+`` lowercased: the baseline;
* **before**: the ranking this change replaced (``websearch_to_tsquery`` AND-match
  on ``content_tsv``, vector side, RRF k=60, chunk-level, first chunk per document);
* **after**: :func:`sluice.index.search.search` (what ``sluice eval`` runs).

Prints hits@k and MRR@10 per query kind and the in-process search latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

PACKAGES = ("httpx", "click")

LEGACY_SQL = """
WITH vec AS (
    SELECT c.document_id, c.chunk_id, row_number() OVER (ORDER BY c.embedding <=> $1) AS rnk
    FROM chunk_vector_1 c ORDER BY c.embedding <=> $1 LIMIT 50
),
txt AS (
    SELECT c.document_id, c.chunk_id,
           row_number() OVER (
               ORDER BY ts_rank_cd(c.content_tsv, websearch_to_tsquery('english', $2)) DESC
           ) AS rnk
    FROM chunk c WHERE c.content_tsv @@ websearch_to_tsquery('english', $2)
    ORDER BY ts_rank_cd(c.content_tsv, websearch_to_tsquery('english', $2)) DESC LIMIT 50
)
SELECT coalesce(v.document_id, t.document_id) AS document_id,
       coalesce(1.0 / (60 + v.rnk), 0) + coalesce(1.0 / (60 + t.rnk), 0) AS score
FROM vec v FULL OUTER JOIN txt t
  ON v.document_id = t.document_id AND v.chunk_id = t.chunk_id
ORDER BY score DESC LIMIT 50
"""


def copy_corpus(dest: Path) -> int:
    import importlib

    count = 0
    for name in PACKAGES:
        src = Path(importlib.import_module(name).__file__ or "").parent
        for path in src.rglob("*.py"):
            target = dest / name / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            count += 1
    return count


def bm25_rankings(root: Path, queries: list[str]) -> list[list[str]]:
    from rank_bm25 import BM25Okapi

    files = sorted(p for p in root.rglob("*.py"))
    tokens = [re.findall(r"\w+", p.read_text(encoding="utf-8").lower()) for p in files]
    bm25 = BM25Okapi(tokens)
    ids = [p.relative_to(root).as_posix() for p in files]
    out = []
    for q in queries:
        scores = bm25.get_scores(re.findall(r"\w+", q.lower()))
        order = sorted(range(len(ids)), key=lambda i: -scores[i])
        out.append(["/" + ids[i] for i in order[:10]])
    return out


async def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    from sluice.ccpairs import create_cc_pair
    from sluice.connectors.base import ConnectorContext
    from sluice.connectors.models import Checkpoint, Document
    from sluice.connectors.registry import build_connector
    from sluice.db.migrate import migrate_tenant
    from sluice.db.session import tenant_connection
    from sluice.index.embedding import WordLlamaProvider
    from sluice.index.evaluation import QueryOutcome, rank_of, read_qrels, report
    from sluice.index.search import search
    from sluice.indexing.pipeline import index_documents

    judged = read_qrels(Path(args.qrels))
    tenant = "bench_" + uuid.uuid4().hex[:8]
    await migrate_tenant(tenant)
    config = {"path": str(root), "extensions": [".py"]}
    pair = await create_cc_pair(tenant, name="eval", source="filesystem", config=config)
    connector = build_connector("filesystem", config, ConnectorContext(tenant, pair.id, 1))
    docs: list[Document] = []
    async for output in connector.load(Checkpoint()):
        if output.document is not None:
            docs.append(output.document)
    embedder = WordLlamaProvider()
    t0 = time.perf_counter()
    async with tenant_connection(tenant) as (_, raw):
        result, failures = await index_documents(raw, pair.id, docs, embedder)
        await raw.execute("ANALYZE chunk")
    indexed_s = time.perf_counter() - t0
    assert not failures, failures

    def outcomes(rankings: list[list[str]]) -> list[QueryOutcome]:
        return [
            QueryOutcome(
                kind=j.kind,
                query=j.query,
                expected=j.expected,
                rank=rank_of(r, j.expected),
                top=r[: args.k],
            )
            for j, r in zip(judged, rankings, strict=True)
        ]

    baseline = outcomes(bm25_rankings(root, [j.query for j in judged]))

    legacy: list[list[str]] = []
    for j in judged:
        vector = (await embedder.embed([j.query]))[0]
        async with tenant_connection(tenant) as (_, raw):
            rows = await raw.fetch(LEGACY_SQL, vector, j.query)
        seen: list[str] = []
        for r in rows:
            if r["document_id"] not in seen:
                seen.append(r["document_id"])
        legacy.append(seen[:10])

    after: list[list[str]] = []
    latencies: list[float] = []
    for j in judged:
        t = time.perf_counter()
        hits = await search(tenant, j.query, k=10)
        latencies.append((time.perf_counter() - t) * 1000)
        after.append([h.document_id for h in hits])

    figures = {
        name: report(outcomes(r) if name != "bm25-files" else baseline, args.k)
        for name, r in (("bm25-files", []), ("before", legacy), ("after", after))
    }
    latencies.sort()
    return {
        "corpus": {"files": len(docs), "chunks": result.chunks_written, "index_s": indexed_s},
        "latency_ms": {
            "median": statistics.median(latencies),
            "p95": latencies[int(0.95 * (len(latencies) - 1))],
        },
        "figures": {name: r.model_dump(exclude={"outcomes"}) for name, r in figures.items()},
        "misses": {
            name: [(o.kind, o.query, o.expected, o.rank) for o in r.outcomes if not o.rank]
            for name, r in figures.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qrels", default=str(Path(__file__).parent / "eval" / "qrels.tsv"))
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--json", default=None, help="append the figures to this file")
    parser.add_argument("--misses", action="store_true", help="list queries not found in top 10")
    args = parser.parse_args()

    from sluice.config import get_settings
    from sluice.db.engine import dispose_engines
    from sluice.devstack import dev_stack

    with tempfile.TemporaryDirectory(prefix="sluice-eval-") as tmp:
        root = Path(tmp) / "corpus"
        copy_corpus(root)
        with dev_stack(
            Path(tmp) / "stack",
            database_url=os.environ.get("DATABASE_URL") or None,
            ports={"postgres": None, "redis": None},
            with_temporal=False,
        ) as stack:
            os.environ.update(stack.env)
            get_settings.cache_clear()

            async def go() -> dict[str, Any]:
                try:
                    return await run(args, root)
                finally:
                    await dispose_engines()

            out = asyncio.run(go())
    c = out["corpus"]
    print(f"corpus: {c['files']} files, {c['chunks']} chunks, indexed in {c['index_s']:.1f}s")
    print(f"{'ranking':<11} {'kind':<11} {'n':>3} {f'hits@{args.k}':>7} {'MRR@10':>7}")
    for name, fig in out["figures"].items():
        rows = [*fig["by_kind"].items(), ("overall", fig["overall"])]
        for kind, f in rows:
            print(
                f"{name:<11} {kind:<11} {f['queries']:>3} {f['hits_at_k']:>7.2f} "
                f"{f['mrr_at_10']:>7.3f}"
            )
    lat = out["latency_ms"]
    print(f"search latency in-process: median {lat['median']:.1f} ms, p95 {lat['p95']:.1f} ms")
    if args.misses:
        for name, items in out["misses"].items():
            for kind, query, expected, _ in items:
                print(f"miss {name:<11} [{kind}] {query!r} -> {expected}")
    if args.json:
        with open(args.json, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
