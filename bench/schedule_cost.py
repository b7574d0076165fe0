"""What an idle tenant costs the Temporal server: schedules, workflow runs, history events.

Starts the real stack (or uses DATABASE_URL / TEMPORAL_ADDRESS), creates one tenant with
no connectors and its schedules at the default (the seeds') intervals, runs a worker
in this process for ``--seconds``, then counts the sweep runs the schedules started for
that tenant and the events in their histories, and extrapolates to an hour.

    uv run python -m bench.schedule_cost --seconds 120
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any


async def measure(seconds: float) -> dict[str, Any]:
    from schedules.sync import delete_tenant_schedules
    from sluice.config import get_settings
    from sluice.db.engine import dispose_engines
    from sluice.temporal.client import connect
    from sluice.tenant_ops import add_tenant
    from tests.support import running_workers

    settings = get_settings()
    client = await connect(settings, workers=True)
    tenant = "idle_" + uuid.uuid4().hex[:8]
    report = await add_tenant(client, tenant, settings)
    started = time.monotonic()
    async with running_workers(client):
        await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    await delete_tenant_schedules(client, tenant)
    runs: Counter[str] = Counter()
    events = 0
    async for wf in client.list_workflows(f"SluiceTenant = '{tenant}'"):
        runs[wf.id.split("/", 1)[1].rsplit("-", 3)[0]] += 1
        history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        events += len(history.events)
    await dispose_engines()
    total = sum(runs.values())
    per_hour = 3600 / elapsed
    return {
        "schedules": len(report.created) + len(report.unchanged) + len(report.updated),
        "seconds": round(elapsed, 1),
        "runs": dict(runs),
        "runs_per_hour": round(total * per_hour),
        "events_per_run": round(events / total, 1) if total else 0,
        "events_per_hour": round(events * per_hour),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    args = parser.parse_args()

    async def go() -> dict[str, Any]:
        return await measure(args.seconds)

    if os.environ.get("DATABASE_URL") and os.environ.get("TEMPORAL_ADDRESS"):
        result = asyncio.run(go())
    else:
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
            result = asyncio.run(go())
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
