"""Seed 002 figures: per-document time of each index step, and the agent queue's
throughput across processes.

Steps run as the activities run them (``sluice/documents/builds.py``), in this process,
on the Git manual pages of ``bench/eval/gitdocs/`` (Markdown), against a fresh embedded
Postgres; the queue figure is a producer in a subprocess putting events on a Redis
Stream while this process consumes them. Usage: ``uv run python -m bench.document_index``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

GITDOCS = Path(__file__).parent / "eval" / "gitdocs"


async def index_steps(docs: int) -> dict[str, list[float]]:
    from sluice.config import get_settings
    from sluice.db.migrate import migrate_tenant
    from sluice.documents import builds, ops
    from sluice.index.embedders import Embedders
    from sluice.index.embedding import embedder_from_settings

    tenant = "bench_" + uuid.uuid4().hex[:6]
    await migrate_tenant(tenant)
    embedders = Embedders(embedder_from_settings(get_settings()))
    order = ("parse", "vector", "fulltext", "graph", "summary")
    times: dict[str, list[float]] = {k: [] for k in order}
    files = sorted(GITDOCS.glob("*.md"))[:docs]
    steps: dict[str, Callable[[str], Awaitable[Any]]] = {
        "parse": lambda d: builds.parse_document(tenant, d),
        "fulltext": lambda d: builds.build_fulltext(tenant, d),
        "vector": lambda d: builds.build_vector(tenant, d, embedders, lambda _s: None),
        "graph": lambda d: builds.build_graph(tenant, d),
        "summary": lambda d: builds.build_summary(tenant, d, embedders),
    }
    for path in files:
        doc_id = await ops.add_document(tenant, "bench", path.name, path.read_bytes())
        for name in order:
            started = time.perf_counter()
            await steps[name](doc_id)
            times[name].append(time.perf_counter() - started)
    return times


async def queue_throughput(url: str, events: int) -> tuple[float, float]:
    """(events/s end to end across processes, producer-only events/s)."""
    import redis.asyncio as aioredis

    from sluice.agent_queue import RedisAgentMessageQueue

    stream = f"bench/{uuid.uuid4().hex[:8]}"
    conn = aioredis.from_url(url)
    consumer = RedisAgentMessageQueue(conn, stream, consumer="bench", read_count=500)
    started = time.perf_counter()
    producer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.agent_producer",
        url,
        stream,
        str(events),
        stdout=subprocess.PIPE,
    )
    got = 0
    while await consumer.get() is not None:
        got += 1
    elapsed = time.perf_counter() - started
    out, _ = await producer.communicate()
    await conn.aclose()
    assert got == events, got
    return events / elapsed, events / float(out.decode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=30)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args(argv)

    from sluice.config import get_settings
    from sluice.db.engine import dispose_engines
    from sluice.devstack import dev_stack

    with tempfile.TemporaryDirectory(prefix="sluice-seed002-") as tmp:
        with dev_stack(
            Path(tmp) / "stack", ports={"postgres": None, "redis": None}, with_temporal=False
        ) as stack:
            os.environ.update(stack.env)
            get_settings.cache_clear()

            async def go() -> tuple[dict[str, list[float]], tuple[float, float]]:
                try:
                    steps = await index_steps(args.docs)
                    return steps, await queue_throughput(stack.env["REDIS_URL"], args.events)
                finally:
                    await dispose_engines()

            steps, (rate, put_rate) = asyncio.run(go())
    sizes = sorted(p.stat().st_size for p in sorted(GITDOCS.glob("*.md"))[: args.docs])
    print(f"{args.docs} Markdown documents, median {statistics.median(sizes) / 1024:.1f} KiB")
    print(f"{'step':<9} {'median ms':>10} {'p90 ms':>8} {'max ms':>8}")
    for name, values in steps.items():
        ordered = sorted(values)
        p90 = ordered[int(0.9 * (len(ordered) - 1))]
        print(
            f"{name:<9} {statistics.median(ordered) * 1000:>10.1f} {p90 * 1000:>8.1f} "
            f"{ordered[-1] * 1000:>8.1f}"
        )
    print(
        f"agent queue: {args.events} events across processes, {rate:,.0f} events/s "
        f"end to end (producer alone {put_rate:,.0f} puts/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
