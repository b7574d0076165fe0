"""How much cheaper an unchanged re-run is than the first run (issue 19: at least 20×).

One connector of ``--docs`` synthetic documents runs three attempts on the real stack
with a worker process: the first run, an unchanged re-run (documents whose
``updated_at`` and ACL are stored are dropped before staging), and a from-the-beginning
run (everything staged, hashed and skipped, nothing embedded). Each attempt is timed
from ``index_now`` to its end, from the ``index_attempt`` row's own timestamps.

    uv run python -m bench.rerun                 # 20,000 × 2 KB
    uv run python -m bench.rerun --docs 2000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.indexing import start_workers, stop_workers, wait_ready


async def _attempt_seconds(tenant: str) -> list[dict[str, Any]]:
    from sluice.db.session import tenant_connection

    async with tenant_connection(tenant) as (_, raw):
        rows = await raw.fetch(
            "SELECT id, status, docs_fetched, docs_skipped, chunks_written, batches,"
            " extract(epoch FROM finished_at - started_at) AS seconds"
            " FROM index_attempt ORDER BY id"
        )
    return [dict(r) for r in rows]


async def measure(tenant: str, docs: int, size: int) -> list[dict[str, Any]]:
    from sluice import connector_ops
    from sluice.db.migrate import migrate_tenant
    from sluice.indexing.models import RunTuning
    from sluice.temporal.client import connect

    await migrate_tenant(tenant)
    client = await connect()
    pair = await connector_ops.add_connector(
        client,
        tenant,
        name="rerun",
        source="synthetic",
        config={"count": docs, "size_bytes": size},
        tuning=RunTuning(batch_size=200, batches_per_fetch=5, max_batches_in_flight=2),
    )
    await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=3600)
    await connector_ops.index_now(client, tenant, pair.id)
    await connector_ops.wait_for_attempts(client, tenant, pair.id, 2, timeout=3600)
    await connector_ops.index_now(client, tenant, pair.id, from_beginning=True)
    await connector_ops.wait_for_attempts(client, tenant, pair.id, 3, timeout=3600)
    return await _attempt_seconds(tenant)


def report(rows: list[dict[str, Any]]) -> int:
    names = ["first run", "unchanged re-run", "from the beginning"]
    first = float(rows[0]["seconds"])
    for name, row in zip(names, rows, strict=True):
        seconds = float(row["seconds"])
        print(
            f"{name:>20}: {seconds:8.2f} s  {first / seconds:6.1f}× faster than the first  "
            f"(fetched {row['docs_fetched']}, skipped {row['docs_skipped']}, "
            f"batches {row['batches']}, chunks written {row['chunks_written']}, {row['status']})"
        )
    return 0 if all(r["status"] == "success" for r in rows) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=2_000)
    args = parser.parse_args(argv)

    from sluice.config import get_settings
    from sluice.devstack import dev_stack

    with contextlib.ExitStack() as exits:
        tmp = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="sluice-rerun-")))
        stack = exits.enter_context(
            dev_stack(
                tmp,
                ports={"postgres": None, "redis": None, "temporal": None, "temporal_ui": None},
                ui=False,
            )
        )
        os.environ.update(stack.env)
        get_settings.cache_clear()
        workers = start_workers(("background",), stack.env, tmp / "logs")
        exits.callback(stop_workers, workers)
        wait_ready(workers)
        started = time.monotonic()
        rows = asyncio.run(measure(f"bench_rerun_{uuid.uuid4().hex[:8]}", args.docs, args.size))
        print(f"{args.docs} documents × {args.size} B, {time.monotonic() - started:.0f} s in all")
        return report(rows)


if __name__ == "__main__":
    sys.exit(main())
