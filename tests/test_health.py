"""`sluice worker` as a real process: health endpoints, queue polling, graceful stop.

The worker runs as a subprocess against the session's Postgres and Redis and the
Temporal dev server; ``/readyz`` only turns 200 once Temporal reports this very
process (by its identity) polling each of its task queues.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue as TaskQueueMessage
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from sluice.devstack import free_port
from sluice.queues import ALL_QUEUES, TaskQueue
from tests.support import only_line
from workers.kinds import WORKER_KINDS

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def identity(self) -> str:
        return f"sluice-background-{self.proc.pid}@{socket.gethostname()}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _worker_env(services: dict[str, str], dev_env: WorkflowEnvironment, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("SLUICE_MODE", "HEALTH_PORT")}
    env.update(services)
    env.update(
        TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
        TEMPORAL_NAMESPACE="default",
        LOG_FORMAT="json",
    )
    env.update(extra)
    return env


@asynccontextmanager
async def worker_process(env: dict[str, str], tmp_path: Path) -> AsyncIterator[WorkerProcess]:
    port = free_port()
    log = tmp_path / f"worker-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sluice.cli.main", "worker", "background"],
            env={**env, "HEALTH_PORT": str(port)},
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    worker = WorkerProcess(proc, port, log)
    try:
        yield worker
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


async def _get(worker: WorkerProcess, path: str) -> httpx.Response | None:
    async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
        try:
            return await http.get(f"http://127.0.0.1:{worker.port}{path}")
        except httpx.TransportError:
            return None


async def _poll(worker: WorkerProcess, path: str, until: Any, what: str) -> httpx.Response:
    """GET ``path`` until ``until(response)`` holds (bounded); fail early if the worker died."""
    deadline = time.monotonic() + READY_TIMEOUT
    last: httpx.Response | None = None
    while time.monotonic() < deadline:
        assert worker.proc.poll() is None, f"worker exited early:\n{worker.output()}"
        response = await _get(worker, path)
        if response is not None:
            last = response
            if until(response):
                return response
        await asyncio.sleep(0.2)
    detail = last.text if last is not None else "no answer"
    raise AssertionError(f"{what} not reached in {READY_TIMEOUT}s: {detail}\n{worker.output()}")


async def _pollers(client: Client, queue: str, kind: TaskQueueType.ValueType) -> set[str]:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueueMessage(name=queue),
            task_queue_type=kind,
        )
    )
    return {p.identity for p in response.pollers}


async def _stop(worker: WorkerProcess) -> tuple[int, float]:
    t0 = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    deadline = t0 + STOP_TIMEOUT
    while worker.proc.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    code = worker.proc.poll()
    assert code is not None, f"worker still running {STOP_TIMEOUT}s after SIGTERM"
    return code, time.monotonic() - t0


async def test_background_worker_is_ready_polls_every_queue_and_stops_cleanly(
    services: dict[str, str], dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with worker_process(_worker_env(services, dev_env), tmp_path) as worker:
        alive = await _poll(worker, "/healthz", lambda r: r.status_code == 200, "/healthz 200")
        assert alive.json() == {"status": "alive"}
        ready = await _poll(worker, "/readyz", lambda r: r.status_code == 200, "/readyz 200")
        body = ready.json()
        assert body["ready"] is True
        assert body["checks"] == {
            "temporal": "ok",
            "postgres": "ok",
            "redis": "ok",
            "polling": "ok",
        }
        missing = await _poll(worker, "/nope", lambda r: True, "any answer")
        assert missing.status_code == 404

        client = dev_env.client
        activity = TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
        not_polled = [
            q.value
            for q in ALL_QUEUES
            if worker.identity not in await _pollers(client, q.value, activity)
        ]
        assert not_polled == [], f"no activity poller from {worker.identity} on {not_polled}"
        workflow_pollers = await _pollers(
            client, TaskQueue.PRIMARY.value, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
        )
        assert worker.identity in workflow_pollers

        code, took = await _stop(worker)
        assert code == 0, worker.output()
        assert took < STOP_TIMEOUT
        log = worker.log.read_text(errors="replace")  # whole: other work may log after it
        assert "worker shutting down" in log, worker.output()
        # Its own lines: another test's leftover activity may log a traceback of its own.
        own = [line for line in log.splitlines() if '"logger": "workers.' in line]
        own += [line for line in log.splitlines() if '"logger": "temporalio.worker' in line]
        assert not [line for line in own if "Traceback" in line], worker.output()


async def test_readyz_names_the_failing_dependency(
    services: dict[str, str], dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    async with worker_process(_worker_env(services, dev_env, REDIS_URL=closed), tmp_path) as w:
        alive = await _poll(w, "/healthz", lambda r: r.status_code == 200, "/healthz 200")
        assert alive.json() == {"status": "alive"}

        def only_redis_fails(r: httpx.Response) -> bool:
            checks = r.json().get("checks", {})
            return checks.get("polling") == "ok" and checks.get("postgres") == "ok"

        not_ready = await _poll(w, "/readyz", only_redis_fails, "every check but redis ok")
        assert not_ready.status_code == 503
        body = not_ready.json()
        assert body["ready"] is False
        assert body["checks"]["redis"].startswith("failed"), body
        assert {k for k, v in body["checks"].items() if v != "ok"} == {"redis"}, body
        # Liveness is independent of dependencies: the process itself is fine.
        assert (await _get(w, "/healthz")).status_code == 200  # type: ignore[union-attr]
        code, _ = await _stop(w)
        assert code == 0, w.output()


def test_unknown_worker_kind_names_the_valid_ones(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sluice.cli.main", "worker", "nosuchkind"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result
    line = only_line(result.stderr)
    assert line.startswith("error: ") and "'nosuchkind'" in line
    for kind in WORKER_KINDS:
        assert kind in line, line
    assert "Traceback" not in result.stderr
