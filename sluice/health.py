"""``/healthz`` (the process is alive), ``/readyz`` (it can do work) and ``/metrics``
(:mod:`sluice.metrics`) over plain HTTP.

Readiness means: Temporal, Postgres and Redis answer, and Temporal sees this
process polling each of its task queues.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from sqlalchemy import text
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue as TaskQueueMessage
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from sluice.config import Settings
from sluice.db.engine import get_engine
from sluice.httpserve import Request, Response, json_response, serve

if TYPE_CHECKING:
    from sluice.metrics import MetricsEndpoint

Check = Callable[[], Awaitable[None]]


@dataclass
class Readiness:
    """Named checks, each run with a timeout; results cached for a second."""

    checks: dict[str, Check] = field(default_factory=dict)
    _cache: tuple[float, bool, dict[str, str]] | None = None

    async def run(self) -> tuple[bool, dict[str, str]]:
        now = time.monotonic()
        if self._cache and now - self._cache[0] < 1.0:
            return self._cache[1], self._cache[2]
        results: dict[str, str] = {}

        async def one(name: str, check: Check) -> None:
            try:
                await asyncio.wait_for(check(), timeout=3)
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"failed: {exc!r}"[:300]

        await asyncio.gather(*(one(n, c) for n, c in self.checks.items()))
        ok = all(v == "ok" for v in results.values())
        self._cache = (now, ok, results)
        return ok, results


def standard_checks(
    settings: Settings, client: Client, identity: str, queues: list[str]
) -> dict[str, Check]:
    async def temporal() -> None:
        await client.service_client.check_health()

    async def postgres() -> None:
        async with get_engine(settings).connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def redis() -> None:
        if settings.redis_url is None:
            raise RuntimeError("REDIS_URL is not set")
        conn = aioredis.from_url(settings.redis_url)
        try:
            await conn.ping()
        finally:
            await conn.aclose()

    async def polling() -> None:
        missing = []
        for queue in queues:
            response = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueueMessage(name=queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
                )
            )
            if not any(p.identity == identity for p in response.pollers):
                missing.append(queue)
        if missing:
            raise RuntimeError(f"not polling yet: {', '.join(missing)}")

    return {"temporal": temporal, "postgres": postgres, "redis": redis, "polling": polling}


async def serve_health(
    readiness: Readiness,
    port: int,
    host: str = "0.0.0.0",
    metrics: MetricsEndpoint | None = None,
) -> asyncio.Server:
    """Start the HTTP server; returns it (its bound port is in ``sockets[0]``)."""
    paths = ["/healthz", "/readyz", *(["/metrics"] if metrics else [])]

    async def handle(request: Request) -> Response:
        if request.path == "/healthz":
            return json_response(200, {"status": "alive"})
        if request.path == "/readyz":
            ok, results = await readiness.run()
            return json_response(200 if ok else 503, {"ready": ok, "checks": results})
        if request.path == "/metrics" and metrics is not None:
            from sluice.metrics import CONTENT_TYPE

            return Response(200, await metrics.render(), CONTENT_TYPE)
        return json_response(404, {"error": "not found", "paths": paths})

    return await serve(handle, port, host)
