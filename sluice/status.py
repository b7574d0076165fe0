"""What ``sluice status`` reports: do the services answer, and is every task queue polled.

Every probe turns its failure into a result ("down: ...", "not polled") instead of an
exception: the command exists to be run when something is wrong, so a dead Temporal or
a queue without workers is the answer, not a crash.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue as TaskQueueMessage
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from sluice.config import Settings
from sluice.queues import TaskQueue

PROBE_TIMEOUT = 5.0
POLLER_FRESH = 120.0
"""Temporal lists a poller for minutes after its last poll; one idle long poll lasts
about a minute, so a poller not seen for longer than this is gone (a killed worker)."""
WORKFLOW_QUEUES = frozenset({TaskQueue.PRIMARY})
"""Queues whose workflows need workflow pollers too (see ``workers.registry.WORKFLOWS``)."""


@dataclass
class ServiceState:
    """One service's answer, or why there was none (shown as is, so it stays one line)."""

    name: str
    ok: bool
    detail: str


@dataclass
class QueueState:
    """Who polls one task queue; ``error`` when Temporal could not be asked."""

    queue: str
    workflow_pollers: list[str] = field(default_factory=list)
    activity_pollers: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def polled(self) -> bool:
        if self.error is not None or not self.activity_pollers:
            return False
        return self.queue not in WORKFLOW_QUEUES or bool(self.workflow_pollers)

    @property
    def state(self) -> str:
        if self.error is not None:
            return f"unknown ({self.error})"
        if self.polled:
            return "polled"
        if self.activity_pollers:
            return "not polled (no workflow poller)"
        return "not polled"


@dataclass
class Report:
    """Everything ``sluice status`` prints; ``healthy`` decides its exit code."""

    services: list[ServiceState]
    queues: list[QueueState]

    @property
    def healthy(self) -> bool:
        return all(s.ok for s in self.services) and all(q.polled for q in self.queues)


def _reason(exc: BaseException) -> str:
    """One line for an exception, whatever its message looks like."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, TimeoutError):
        text = f"no answer within {PROBE_TIMEOUT:.0f}s"
    elif "ConnectionRefused" in text:  # the Temporal SDK's Rust error, one long Debug dump
        text = "connection refused"
    return text[:200]


async def _postgres(settings: Settings) -> ServiceState:
    from sqlalchemy import text

    from sluice.db.engine import dispose_engines, get_engine

    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            async with get_engine(settings).connect() as conn:
                await conn.execute(text("SELECT 1"))
        return ServiceState("postgres", True, "ok")
    except Exception as exc:
        return ServiceState("postgres", False, f"down: {_reason(exc)}")
    finally:
        await dispose_engines()


async def _redis(settings: Settings) -> ServiceState:
    import redis.asyncio as aioredis

    if settings.redis_url is None:
        return ServiceState("redis", False, "down: REDIS_URL is not set")
    conn = aioredis.from_url(settings.redis_url, socket_connect_timeout=PROBE_TIMEOUT)
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await conn.ping()
        return ServiceState("redis", True, "ok")
    except Exception as exc:
        return ServiceState("redis", False, f"down: {_reason(exc)}")
    finally:
        await conn.aclose()


async def _connect(settings: Settings) -> tuple[Client | None, ServiceState]:
    """A Temporal client, or ``None`` and why not (unset, refused, timed out)."""
    from sluice.temporal.client import connect

    where = settings.temporal_address or "TEMPORAL_ADDRESS unset"
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            client = await connect(settings)
            await client.service_client.check_health()
    except Exception as exc:
        return None, ServiceState("temporal", False, f"down ({where}): {_reason(exc)}")
    return client, ServiceState("temporal", True, f"ok ({where})")


async def _pollers(client: Client, queue: str, kind: TaskQueueType.ValueType) -> list[str]:
    """Identities Temporal saw polling ``queue`` for ``kind`` tasks within POLLER_FRESH."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueueMessage(name=queue),
            task_queue_type=kind,
        ),
        timeout=timedelta(seconds=PROBE_TIMEOUT),
    )
    now = time.time()
    return sorted(
        {
            p.identity
            for p in response.pollers
            if not p.HasField("last_access_time")
            or now - p.last_access_time.ToSeconds() <= POLLER_FRESH
        }
    )


async def _queue(client: Client | None, queue: str) -> QueueState:
    state = QueueState(queue)
    if client is None:
        state.error = "Temporal is down"
        return state
    try:
        state.activity_pollers = await _pollers(
            client, queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
        )
        if queue in WORKFLOW_QUEUES:
            state.workflow_pollers = await _pollers(
                client, queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
            )
    except Exception as exc:
        state.error = _reason(exc)
    return state


async def collect(settings: Settings, queues: list[str]) -> Report:
    """Probe the three services and describe ``queues``; never raises for a sick system."""
    client, temporal = await _connect(settings)
    postgres, redis = await asyncio.gather(_postgres(settings), _redis(settings))
    states = await asyncio.gather(*(_queue(client, q) for q in queues))
    return Report([temporal, postgres, redis], list(states))
