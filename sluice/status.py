"""What ``sluice status`` reports: do the services answer, is every task queue polled,
how old is its backlog, and is any of the tenant's connectors failing (the figures of
:mod:`sluice.monitoring`, as ``/metrics`` has them).

Every probe turns its failure into a result ("down: ...", "not polled") instead of an
exception: the command exists to be run when something is wrong, so a dead Temporal or
a queue without workers is the answer, not a crash.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from typing import Any

from temporalio.client import Client

from sluice.config import Settings
from sluice.db.engine import dispose_engines
from sluice.monitoring import POLLER_FRESH, WORKFLOW_QUEUES, Figures, alerts, collect_figures

PROBE_TIMEOUT = 5.0
__all__ = ["POLLER_FRESH", "Report", "collect"]


@dataclass
class ServiceState:
    """One service's answer, or why there was none (shown as is, so it stays one line)."""

    name: str
    ok: bool
    detail: str


@dataclass
class QueueState:
    """Who polls one task queue and what waits in it; ``error`` when Temporal could not
    be asked."""

    queue: str
    workflow_pollers: list[str] = field(default_factory=list)
    activity_pollers: list[str] = field(default_factory=list)
    error: str | None = None
    backlog: int = 0
    backlog_age_seconds: float = 0.0

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
    figures: Figures | None = None
    alerts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Figures that could not be read (a tenant not migrated yet): said, not alerted."""

    @property
    def healthy(self) -> bool:
        return (
            all(s.ok for s in self.services)
            and all(q.polled for q in self.queues)
            and not self.alerts
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "services": [asdict(s) for s in self.services],
            "queues": [{**asdict(q), "state": q.state, "polled": q.polled} for q in self.queues],
            "connectors": self.figures.to_json()["connectors"] if self.figures else [],
            "index": self.figures.to_json()["index"] if self.figures else [],
            "alerts": self.alerts,
            "notes": self.notes,
        }


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


def _queue(queue: str, client: Client | None, figures: Figures) -> QueueState:
    """One queue's row from the collected figures (activity and workflow tasks)."""
    state = QueueState(queue)
    if client is None:
        state.error = "Temporal is down"
        return state
    for f in (f for f in figures.queues if f.queue == queue):
        state.error = state.error or f.error
        if f.kind == "workflow":
            state.workflow_pollers = f.pollers
        else:
            state.activity_pollers = f.pollers
        state.backlog += f.backlog
        state.backlog_age_seconds = max(state.backlog_age_seconds, f.backlog_age_seconds)
    return state


async def collect(settings: Settings, queues: list[str], tenant: str | None = None) -> Report:
    """Probe the three services, describe ``queues`` (pollers, backlog) and read the
    tenant's connectors and index; never raises for a sick system."""
    client, temporal = await _connect(settings)
    postgres, redis = await asyncio.gather(_postgres(settings), _redis(settings))
    tenants = [tenant] if tenant is not None and postgres.ok else []
    try:
        figures = await collect_figures(client, tenants, queues)
    finally:
        await dispose_engines()
    states = [_queue(q, client, figures) for q in queues]
    notes, figures.errors = figures.errors, []
    found = [a for a in alerts(figures, settings.alert_backlog_minutes) if "not checked" not in a]
    return Report([temporal, postgres, redis], states, figures, found, notes)
