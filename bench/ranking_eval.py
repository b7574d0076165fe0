"""Ranking figures on judged queries: Sluice hybrid, vector only, text only, BM25 files.

Run::

    uv run python -m bench.ranking_eval                          # Git manual, all queries
    uv run python -m bench.ranking_eval --split holdout
    uv run python -m bench.ranking_eval --corpus sources         # httpx + click sources
    uv run python -m bench.ranking_eval --dims 256,128,64        # WordLlama dimensions
    uv run python -m bench.ranking_eval --set text_weight=2 --set rrf_k=20

Corpora: ``gitdocs`` is ``bench/eval/gitdocs/`` (Git's manual as Markdown, 241
pages) judged by ``bench/eval/gitdocs-qrels.tsv``; ``sources`` copies the Python
sources of the installed ``httpx`` and ``click`` into a temporary folder, judged by
``bench/eval/qrels.tsv``. Either is read with the filesystem connector and indexed
with the in-process pipeline (:func:`sluice.indexing.pipeline.index_documents`, the
code the worker runs) into a fresh tenant of an embedded Postgres (or DATABASE_URL).

Rankings, each one hit per document, top 10:

* **hybrid**: :func:`sluice.index.store.hybrid_search` with the settings' defaults
  (what ``sluice search`` and ``sluice eval`` run), changed by ``--set name=value``;
* **vector**: the same call with the text side's weight at 0;
* **text**: the same call with the vector side's weight at 0;
* **bm25-files**: plain BM25 (``rank_bm25.BM25Okapi``) over whole files, tokens
  ``\\w+`` lowercased: the baseline.

``--dims``: WordLlama is Matryoshka-trained, so its 64- and 128-d prefixes are
embeddings too. Each other dimension is an index generation of its own (built as a
model swap builds one, see ``sluice/index/generations.py``). The
chunk embedding throughput is measured separately: all chunk texts in one
``embed`` call with the provider's default threads, the median of 3 runs.

``--split``: the queries of each kind are numbered in file order; ``dev`` takes the
odd-numbered ones, ``holdout`` the even-numbered ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sluice.index.evaluation import EvalReport, Judged

EVAL_DIR = Path(__file__).parent / "eval"
CORPORA: dict[str, tuple[str, str]] = {
    # name: (file extension, default qrels)
    "gitdocs": (".md", str(EVAL_DIR / "gitdocs-qrels.tsv")),
    "sources": (".py", str(EVAL_DIR / "qrels.tsv")),
}


async def vectors_for_dim(tenant: str, dim: int) -> str:
    """The vector table of a WordLlama ``dim`` generation of the tenant's chunks.

    256 is generation 1 (what indexing wrote). Another dimension is a second index
    generation built in-process the way a model swap builds it (the chunks are embedded
    again, HNSW index included) without switching search over to it; the caller drops it
    with :func:`drop_dim` once measured (one generation builds at a time).
    """
    from sluice.db.session import tenant_connection
    from sluice.index import generations
    from sluice.index.embedding import WordLlamaProvider
    from sluice.index.generations import EmbeddingSpec

    async with tenant_connection(tenant) as (_, raw):
        live = await generations.live_generation(raw)
        if live.spec.dim == dim:
            return live.table
        gen = await generations.start_generation(
            raw, EmbeddingSpec(provider="local", dim=dim), f"bench/{dim}"
        )
    embedder = WordLlamaProvider(dim=dim)
    while True:
        async with tenant_connection(tenant) as (_, raw):
            page = await generations.chunks_without_vector(raw, gen, None, 2000)
            if not page:
                break
            vectors = await embedder.embed([c.text for c in page])
            keys = [(c.document_id, c.chunk_id) for c in page]
            await generations.add_vectors(raw, gen, keys, vectors)
    async with tenant_connection(tenant) as (_, raw):
        await raw.execute(generations.hnsw_index_ddl(gen.table, concurrently=False))
    return gen.table


async def drop_dim(tenant: str, table: str) -> None:
    from sluice.db.session import tenant_connection
    from sluice.index import generations

    async with tenant_connection(tenant) as (_, raw):
        if table != (await generations.live_generation(raw)).table:
            generation_id = int(table.rsplit("_", 1)[1])
            await generations.abandon_generation(raw, generation_id, "canceled", "measured")


def split(judged: list[Judged], which: str) -> list[Judged]:
    if which == "all":
        return judged
    seen: dict[str, int] = {}
    out = []
    for j in judged:
        seen[j.kind] = seen.get(j.kind, 0) + 1
        if (seen[j.kind] % 2 == 1) == (which == "dev"):
            out.append(j)
    return out


def bm25_rankings(root: Path, ext: str, queries: list[str]) -> list[list[str]]:
    from rank_bm25 import BM25Okapi

    files = sorted(root.rglob("*" + ext))
    tokens = [re.findall(r"\w+", p.read_text(encoding="utf-8").lower()) for p in files]
    bm25 = BM25Okapi(tokens)
    ids = [p.relative_to(root).as_posix() for p in files]
    out = []
    for q in queries:
        scores = bm25.get_scores(re.findall(r"\w+", q.lower()))
        order = sorted(range(len(ids)), key=lambda i: -scores[i])
        out.append(["/" + ids[i] for i in order[:10]])
    return out


def parse_sets(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            out[name] = json.loads(value)
        except json.JSONDecodeError:
            out[name] = value
    return out


def hybrid_defaults() -> dict[str, Any]:
    """The keyword arguments :func:`sluice.index.search.search` passes from settings."""
    from sluice.config import get_settings

    s = get_settings()
    return {
        "candidates": s.search_candidates,
        "vector_weight": s.search_vector_weight,
        "text_weight": s.search_text_weight,
        "rrf_k": s.search_rrf_k,
    }


async def run(args: argparse.Namespace, root: Path, ext: str) -> dict[str, Any]:
    from sluice.ccpairs import create_cc_pair
    from sluice.connectors.base import ConnectorContext
    from sluice.connectors.models import Checkpoint, Document
    from sluice.connectors.registry import build_connector
    from sluice.db.migrate import migrate_tenant
    from sluice.db.session import tenant_connection
    from sluice.index.embedding import WordLlamaProvider
    from sluice.index.evaluation import QueryOutcome, rank_of, read_qrels, report
    from sluice.index.store import hybrid_search
    from sluice.indexing.pipeline import chunk_batch, index_documents

    judged = split(read_qrels(Path(args.qrels)), args.split)
    config = {"path": str(root), "extensions": [ext]}
    docs: list[Document] = []
    loader = build_connector("filesystem", config, ConnectorContext("bench", 1, 1))
    async for output in loader.load(Checkpoint()):
        if output.document is not None:
            docs.append(output.document)
    texts = [f"{r.title}\n{r.content}" for r in chunk_batch(docs).rows]

    def outcomes(rankings: list[list[str]]) -> list[QueryOutcome]:
        return [
            QueryOutcome(
                kind=j.kind,
                query=j.query,
                expected=j.expected,
                rank=rank_of(r, j.expected),
                top=r[:5],
            )
            for j, r in zip(judged, rankings, strict=True)
        ]

    reports: dict[str, EvalReport] = {
        "bm25-files": report(outcomes(bm25_rankings(root, ext, [j.query for j in judged])), 5)
    }
    base = hybrid_defaults()
    variants: dict[str, dict[str, Any]] = {
        "hybrid": {**base, **parse_sets(args.set)},
        "vector": {**base, **parse_sets(args.set), "text_weight": 0.0},
        "text": {**base, **parse_sets(args.set), "vector_weight": 0.0},
    }
    wanted = args.rankings.split(",")
    throughput: dict[str, float] = {}
    tenant = "bench_" + uuid.uuid4().hex[:8]
    await migrate_tenant(tenant)
    pair = await create_cc_pair(tenant, name="eval", source="filesystem", config=config)
    async with tenant_connection(tenant) as (_, raw):
        _, failures = await index_documents(raw, pair.id, docs, WordLlamaProvider())
        await raw.execute("ANALYZE chunk")
    assert not failures, failures
    for dim in (int(d) for d in args.dims.split(",")):
        embedder = WordLlamaProvider(dim=dim)
        embedder.warm_up()
        await embedder.embed(texts[:256])  # thread pool and tokenizer warm, untimed
        rates = []
        for _ in range(3):
            t0 = time.perf_counter()
            await embedder.embed(texts)
            rates.append(len(texts) / (time.perf_counter() - t0))
        throughput[str(dim)] = sorted(rates)[1]  # the median of 3
        table = await vectors_for_dim(tenant, dim)
        vectors = await embedder.embed([j.query for j in judged])
        for name in wanted:
            rankings = []
            for j, vector in zip(judged, vectors, strict=True):
                async with tenant_connection(tenant) as (_, raw):
                    hits = await hybrid_search(
                        raw,
                        j.query,
                        vector,
                        vector_table=table,
                        limit=10,
                        group=True,
                        **variants[name],
                    )
                rankings.append([h.document_id for h in hits])
            reports[f"{name}@{dim}"] = report(outcomes(rankings), 5)
        await drop_dim(tenant, table)
    return {
        "corpus": {"files": len(docs), "chunks": len(texts)},
        "split": args.split,
        "settings": variants["hybrid"],
        "chunks_per_s": throughput,
        "figures": {n: r.model_dump(exclude={"outcomes"}) for n, r in reports.items()},
        "misses": {
            n: [(o.kind, o.query, o.expected, o.rank) for o in r.outcomes if (o.rank or 99) > 5]
            for n, r in reports.items()
        },
    }


def print_table(out: dict[str, Any]) -> None:
    c = out["corpus"]
    print(f"corpus: {c['files']} files, {c['chunks']} chunks; split {out['split']}")
    print(f"hybrid settings: {out['settings']}")
    for dim, rate in out["chunks_per_s"].items():
        print(f"WordLlama {dim}-d: {rate:,.0f} chunks/s embedded")
    print(f"{'ranking':<12} {'kind':<11} {'n':>3} {'hits@1':>7} {'hits@5':>7} {'MRR@10':>7}")
    for name, fig in out["figures"].items():
        for kind, f in [*fig["by_kind"].items(), ("overall", fig["overall"])]:
            print(
                f"{name:<12} {kind:<11} {f['queries']:>3} {f['hits_at_1']:>7.2f} "
                f"{f['hits_at_k']:>7.2f} {f['mrr_at_10']:>7.3f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--corpus", choices=sorted(CORPORA), default="gitdocs")
    parser.add_argument("--qrels", default=None, help="default: the corpus' own")
    parser.add_argument("--split", choices=("all", "dev", "holdout"), default="all")
    parser.add_argument("--dims", default="256", help="WordLlama dimensions, e.g. 256,128,64")
    parser.add_argument("--rankings", default="hybrid,vector,text")
    parser.add_argument("--set", action="append", default=[], help="hybrid_search NAME=VALUE")
    parser.add_argument("--json", default=None, help="append the figures to this file")
    parser.add_argument("--misses", action="store_true", help="list queries not in the top 5")
    args = parser.parse_args()
    ext, qrels = CORPORA[args.corpus]
    args.qrels = args.qrels or qrels

    from sluice.config import get_settings
    from sluice.db.engine import dispose_engines
    from sluice.devstack import dev_stack

    with tempfile.TemporaryDirectory(prefix="sluice-rank-") as tmp:
        if args.corpus == "sources":
            from bench.search_eval import copy_corpus

            root = Path(tmp) / "corpus"
            copy_corpus(root)
        else:
            root = EVAL_DIR / "gitdocs"
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
                    return await run(args, root.resolve(), ext)
                finally:
                    await dispose_engines()

            out = asyncio.run(go())
    print_table(out)
    if args.misses:
        for name, items in out["misses"].items():
            for kind, query, expected, rank in items:
                print(f"miss {name:<12} [{kind}] {query!r} -> {expected} (rank {rank or '-'})")
    if args.json:
        with open(args.json, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
