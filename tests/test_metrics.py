"""Monitoring on real servers: ``/metrics`` of a real ``sluice worker monitoring``
process during a run, and ``sluice status`` naming a failing connector.

The run's workflows and fetches are served in this process; the monitoring worker is a
subprocess (its own Temporal runtime exports the SDK's metrics). A sweep whose activity
goes to ``connector_pruning``, a queue no worker here polls, makes a real backlog.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from schedules.models import SweepInput
from sluice import connector_ops
from sluice.devstack import free_port
from sluice.queues import TaskQueue
from sluice.temporal.tenant_context import tenant_scope
from sluice.temporal.workflow_ids import SWEEP
from tests.support import FAST, eventually, fetch, running_workers

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest_asyncio.fixture(loop_scope="session")
async def monitoring_worker(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[str]:
    """A `sluice worker monitoring` process; yields its /metrics URL."""
    port = free_port()
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "HEALTH_PORT": str(port),
        "LOG_FORMAT": "json",
    }
    log = tmp_path / "monitoring.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sluice.cli.main", "worker", "monitoring"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        url = f"http://127.0.0.1:{port}"

        async def ready() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                async with httpx.AsyncClient(trust_env=False) as http:
                    return (await http.get(f"{url}/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(ready, timeout=60, interval=0.3)
        yield f"{url}/metrics"
    finally:
        proc.terminate()
        proc.wait(30)


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
        text = (await http.get(url)).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def sweep(client: Client, tenant: str, job: str) -> str:
    wid = f"test-sweep/{tenant}/{job}/{uuid.uuid4().hex[:6]}"
    with tenant_scope(tenant):
        await client.start_workflow(
            SWEEP, SweepInput(tenant_id=tenant, job=job), id=wid, task_queue="primary"
        )
    return wid


async def test_metrics_show_backlog_attempts_and_sdk_figures(
    dev_env: WorkflowEnvironment, tenant: str, monitoring_worker: str
) -> None:
    client = dev_env.client
    async with AsyncExitStack() as stack:
        for kind in ("primary", "docfetching", "docprocessing", "light"):
            await stack.enter_async_context(running_workers(client, kind))
        good = await connector_ops.add_connector(
            client, tenant, name="good", source="synthetic", config={"count": 25}, tuning=FAST
        )
        bad = await connector_ops.add_connector(
            client,
            tenant,
            name="bad",
            source="synthetic",
            config={"count": 25, "error_at": 3, "error_kind": "credentials"},
            tuning=FAST,
        )
        for pair in (good, bad):
            await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=60)
        stuck = await sweep(client, tenant, "pruning-check")  # connector_pruning: no worker
        monitoring = await sweep(client, tenant, "monitoring")
        await client.get_workflow_handle(monitoring).result()

        async def scraped() -> Samples | None:
            samples = await scrape(monitoring_worker)
            backlog = value(
                samples,
                "sluice_task_queue_backlog_tasks",
                task_queue=TaskQueue.CONNECTOR_PRUNING.value,
                task_type="activity",
            )
            return samples if backlog else None

        samples = await eventually(scraped, timeout=40, interval=2)
        await client.get_workflow_handle(stuck).terminate("test over")

    for pair in (good, bad):
        rows = await fetch(
            tenant,
            "SELECT status, count(*) AS n FROM index_attempt WHERE cc_pair_id = $1 GROUP BY 1",
            pair.id,
        )
        assert rows
        for row in rows:
            got = value(
                samples,
                "sluice_connector_attempts",
                tenant=tenant,
                cc_pair=str(pair.id),
                status=row["status"],
            )
            assert got == row["n"], (pair.id, row["status"], got)
    assert value(samples, "sluice_connector_failing", tenant=tenant, cc_pair=str(bad.id)) == 1
    assert value(samples, "sluice_connector_failing", tenant=tenant, cc_pair=str(good.id)) == 0
    assert (value(samples, "sluice_index_documents", tenant=tenant) or 0) >= 25
    assert (value(samples, "process_resident_memory_bytes") or 0) > 10_000_000
    names = {name for name, _ in samples}
    sdk = [n for n in names if n.startswith("temporal_activity_execution_latency")]
    assert sdk, sorted(n for n in names if n.startswith("temporal"))[:20]
    assert any(
        n == "temporal_activity_execution_latency_seconds_count"
        and dict(labels).get("activity_type") == "collect_metrics"
        for n, labels in samples
    )


async def test_status_marks_a_failing_connector(dev_env: WorkflowEnvironment, tenant: str) -> None:
    client = dev_env.client
    async with running_workers(client):
        bad = await connector_ops.add_connector(
            client,
            tenant,
            name="broken-source",
            source="synthetic",
            config={"count": 10, "error_at": 0, "error_kind": "credentials"},
            tuning=FAST,
        )
        await connector_ops.wait_for_attempts(client, tenant, bad.id, 1, timeout=60)
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "COLUMNS": "250",
        }
        cmd = [sys.executable, "-m", "sluice.cli.main", "status", "-t", tenant]
        table, as_json = await asyncio.gather(
            *(
                asyncio.to_thread(
                    subprocess.run, c, env=env, capture_output=True, text=True, timeout=60
                )
                for c in (cmd, [*cmd, "--json"])
            )
        )
    assert table.returncode == 1, table.stdout + table.stderr
    assert "failing" in table.stdout and "broken-source" in table.stdout
    assert f"ALERT: connector {tenant}/{bad.id} (broken-source): failing" in table.stdout
    report = json.loads(as_json.stdout)
    assert as_json.returncode == 1
    [connector] = report["connectors"]
    assert connector["failing"] is True and connector["last_attempt_status"] == "failed"
    assert any("broken-source" in a for a in report["alerts"])
