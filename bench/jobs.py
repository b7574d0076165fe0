"""User files, CSV exports and sandbox runs, measured end to end through Temporal.

* upload-to-searchable: ``files upload`` of a small Markdown file until search as its
  owner finds it (median of ``--uploads``, after one warm-up that loads the model);
* export: ``--rows`` documents exported as CSV through the workflow and a worker in this
  process, rows/s and the worker's RSS sampled every 0.2 s (flat = bounded by a page);
* sandbox start overhead: ``true`` run ``--sandbox-runs`` times: median of the whole
  round trip (start workflow → stored result read) and of the activity's own time.

Starts the real stack (or uses DATABASE_URL / TEMPORAL_ADDRESS):

    uv run python -m bench.jobs --rows 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def upload_latency(client: Any, tenant: str, tmp: Path, count: int) -> dict[str, Any]:
    from sluice.userfiles import catalog, ops

    times = []
    for i in range(count + 1):
        path = tmp / f"note{i}.md"
        path.write_text(f"# Note {i}\n\nThe zebu{i} herd grazes near the river in spring.")
        started = time.monotonic()
        info = await ops.upload(client, tenant, path, "bench")
        await ops.wait_processed(client, tenant, info.id)
        hits = await catalog.search_as(tenant, "bench", f"zebu{i} herd", k=1)
        assert hits and hits[0].document_id == f"user_file:{info.id}"
        if i:  # the first one loads the embedding model
            times.append(time.monotonic() - started)
    return {"upload_to_searchable_median_s": round(statistics.median(times), 3)}


async def export_rate(client: Any, tenant: str, rows: int) -> dict[str, Any]:
    from sluice.db.session import tenant_connection
    from sluice.exports import ops
    from sluice.exports.models import ExportKind, ExportRequest

    async with tenant_connection(tenant) as (_, raw):
        await raw.execute(
            "INSERT INTO document (id, source, semantic_identifier, content_hash, link) "
            "SELECT 'doc:' || lpad(i::text, 8, '0'), 'synthetic', 'Title ' || i, md5(i::text), "
            "'https://example.org/' || i FROM generate_series(1, $1) AS i",
            rows,
        )
    request = ExportRequest(
        tenant_id=tenant, export_id=ops.new_export_id(), kind=ExportKind.DOCUMENTS
    )
    samples: list[float] = []
    before = rss_mb()
    handle = await ops.start(client, request)
    done = asyncio.ensure_future(handle.result())
    while not done.done():
        samples.append(rss_mb())
        await asyncio.wait({done}, timeout=0.2)
    result = done.result()
    third = max(1, len(samples) // 3)
    return {
        "export_rows": result.rows,
        "export_bytes": result.bytes,
        "export_seconds": result.seconds,
        "export_rows_per_s": round(result.rows / result.seconds),
        "rss_before_mb": round(before),
        "rss_first_third_max_mb": round(max(samples[:third])),
        "rss_last_third_max_mb": round(max(samples[-third:])),
    }


async def sandbox_overhead(client: Any, tenant: str, runs: int) -> dict[str, Any]:
    from sluice.sandbox import ops
    from sluice.sandbox.models import SandboxRequest

    total, inside = [], []
    for _ in range(runs):
        started = time.monotonic()
        result = await ops.run(
            client, SandboxRequest(tenant_id=tenant, run_id=ops.new_run_id(), command=["true"])
        )
        total.append(time.monotonic() - started)
        inside.append(result.seconds)
    return {
        "sandbox_round_trip_median_s": round(statistics.median(total), 3),
        "sandbox_activity_median_s": round(statistics.median(inside), 3),
    }


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from sluice.config import get_settings
    from sluice.db.engine import dispose_engines
    from sluice.db.migrate import migrate_tenant
    from sluice.temporal.client import connect
    from tests.support import running_workers

    os.environ["SLUICE_DATA_DIR"] = str(tmp / "data")
    get_settings.cache_clear()
    client = await connect()
    tenant = "jobs_" + uuid.uuid4().hex[:8]
    await migrate_tenant(tenant)
    report: dict[str, Any] = {}
    async with running_workers(client):
        report |= await upload_latency(client, tenant, tmp, args.uploads)
        report |= await sandbox_overhead(client, tenant, args.sandbox_runs)
        report |= await export_rate(client, tenant, args.rows)
    await dispose_engines()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--uploads", type=int, default=5)
    parser.add_argument("--sandbox-runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if os.environ.get("DATABASE_URL") and os.environ.get("TEMPORAL_ADDRESS"):
            result = asyncio.run(measure(args, tmp))
        else:
            from sluice.config import get_settings
            from sluice.devstack import dev_stack

            ports: dict[str, int | None] = {"postgres": None, "redis": None, "temporal": None}
            with dev_stack(tmp / "stack", ports=ports, ui=False) as stack:
                os.environ.update(stack.env)
                get_settings.cache_clear()
                result = asyncio.run(measure(args, tmp))
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
