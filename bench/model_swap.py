"""An embedding-model swap on a real corpus while searches run: duration and search latency.

Starts the stack (or uses DATABASE_URL / TEMPORAL_ADDRESS), indexes a folder (default:
the Git manual of the evaluation set) with a filesystem connector, then switches the
tenant from the bundled model at 256 dimensions to ``--dim`` while a task searches
without pause. Prints the swap's duration, re-embedding rate, and search latency
percentiles before, during and after, with the number of failed searches (must be 0).

    uv run python -m bench.model_swap --dim 128
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).parent / "eval" / "gitdocs"
QUERIES = ["rebase onto upstream", "stash changes", "who changed this line", "sparse checkout"]


@asynccontextmanager
async def workers(client: Any) -> AsyncIterator[None]:
    from sluice.config import get_settings
    from workers.kinds import WORKER_KINDS
    from workers.runner import build_workers

    running = build_workers(client, WORKER_KINDS["background"], get_settings(), "bench")
    tasks = [asyncio.create_task(w.run()) for w in running]
    try:
        yield
    finally:
        await asyncio.gather(*(w.shutdown() for w in running), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)


def percentiles(samples: list[float]) -> str:
    if len(samples) < 2:
        return "n/a"
    q = statistics.quantiles(samples, n=100)
    return f"p50 {q[49]:.0f} ms, p95 {q[94]:.0f} ms ({len(samples)} searches)"


async def run(corpus: Path, dim: int) -> None:
    from sluice import connector_ops, model_swap
    from sluice.db.migrate import migrate_tenant
    from sluice.index.generations import EmbeddingSpec
    from sluice.index.search import search
    from sluice.temporal.client import connect

    tenant = "swap_" + uuid.uuid4().hex[:8]
    await migrate_tenant(tenant)
    client = await connect()
    phases: dict[str, list[float]] = {"before": [], "during": [], "after": []}
    phase = "before"
    failures = 0
    stop = asyncio.Event()

    async def searching() -> None:
        nonlocal failures
        i = 0
        while not stop.is_set():
            started = time.perf_counter()
            try:
                await search(tenant, QUERIES[i % len(QUERIES)], k=5)
            except Exception:
                failures += 1
            phases[phase].append((time.perf_counter() - started) * 1000)
            i += 1
            await asyncio.sleep(0.05)

    async with workers(client):
        pair = await connector_ops.add_connector(
            client, tenant, name="corpus", source="filesystem", config={"path": str(corpus)}
        )
        await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=1800)
        chunks = (await model_swap.generations(tenant))[0].vectors
        searcher = asyncio.create_task(searching())
        await asyncio.sleep(5)
        phase = "during"
        started = time.monotonic()
        spec = EmbeddingSpec(provider="local", dim=dim)
        await model_swap.switch_model(client, tenant, spec, retire_after_seconds=5)
        result = await model_swap.wait_for_swap(client, tenant, timeout=3600)
        took = time.monotonic() - started
        phase = "after"
        await asyncio.sleep(5)
        stop.set()
        await searcher
    print(f"corpus: {corpus} ({chunks} chunks at the start)")
    rate = result.chunks_embedded / took
    print(
        f"swap to {result.model}: {took:.1f} s, {result.chunks_embedded} chunks re-embedded "
        f"({rate:.0f} chunks/s end to end, index build and switch included)"
    )
    for name, samples in phases.items():
        print(f"search {name}: {percentiles(samples)}")
    print(f"failed searches: {failures}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--dim", type=int, default=128, choices=(64, 128))
    args = parser.parse_args()
    if os.environ.get("DATABASE_URL") and os.environ.get("TEMPORAL_ADDRESS"):
        asyncio.run(run(args.corpus.resolve(), args.dim))
        return
    from sluice.config import get_settings
    from sluice.devstack import dev_stack

    with (
        tempfile.TemporaryDirectory() as tmp,
        dev_stack(
            Path(tmp), ports={"postgres": None, "redis": None, "temporal": None}, ui=False
        ) as stack,
    ):
        os.environ.update(stack.env)
        get_settings.cache_clear()
        asyncio.run(run(args.corpus.resolve(), args.dim))


if __name__ == "__main__":
    main()
