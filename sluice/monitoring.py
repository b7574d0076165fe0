"""The figures a platform team watches: queue backlogs, connector outcomes, index size.

One collection (:func:`collect_figures`) feeds three outputs, so they never disagree:
``/metrics`` on the worker that serves the ``monitoring`` queue (:mod:`sluice.metrics`),
``sluice status`` (a table or ``--json``) and the ``monitoring`` schedule's
``collect_metrics`` activity, which logs them. Figures come from Temporal (task-queue
statistics and pollers) and from each tenant's ``index_attempt`` and cc-pair rows; a
figure that could not be read is reported with its error, never raised.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue as TaskQueueMessage
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from sluice.queues import TaskQueue

POLLER_FRESH = 120.0
"""A poller not seen for longer than this is gone (Temporal lists it for minutes)."""
WORKFLOW_QUEUES = frozenset({TaskQueue.PRIMARY.value})


@dataclass
class QueueFigures:
    queue: str
    kind: str  # "activity" or "workflow"
    backlog: int = 0
    backlog_age_seconds: float = 0.0
    pollers: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class ConnectorFigures:
    tenant: str
    cc_pair: int
    name: str
    status: str
    consecutive_failures: int
    flag_reason: str | None
    last_success_age_seconds: float | None
    last_attempt_status: str | None
    last_attempt_seconds: float | None
    attempts: dict[str, int]
    finished_attempts: int
    finished_attempt_seconds: float

    @property
    def failing(self) -> bool:
        return (
            self.status == "invalid"
            or self.consecutive_failures > 0
            or self.last_attempt_status == "failed"
        )


@dataclass
class IndexFigures:
    tenant: str
    documents: int
    chunks: int


@dataclass
class Figures:
    queues: list[QueueFigures]
    connectors: list[ConnectorFigures]
    index: list[IndexFigures]
    collected_at: float = field(default_factory=time.time)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for item, figures in zip(data["connectors"], self.connectors, strict=True):
            item["failing"] = figures.failing
        return data


async def describe_queue(client: Client, queue: str, kind: str) -> QueueFigures:
    kind_value = (
        TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
        if kind == "workflow"
        else TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
    )
    """Backlog and fresh pollers of one queue's ``kind`` tasks; an RPC error is kept in
    ``error``, not raised."""
    figures = QueueFigures(queue, kind)
    try:
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueueMessage(name=queue),
                task_queue_type=kind_value,
                report_stats=True,
            ),
            timeout=timedelta(seconds=5),
        )
    except Exception as exc:
        figures.error = " ".join(str(exc).split())[:200] or type(exc).__name__
        return figures
    stats = response.stats
    figures.backlog = int(stats.approximate_backlog_count)
    figures.backlog_age_seconds = stats.approximate_backlog_age.ToTimedelta().total_seconds()
    now = time.time()
    figures.pollers = sorted(
        {
            p.identity
            for p in response.pollers
            if not p.HasField("last_access_time")
            or now - p.last_access_time.ToSeconds() <= POLLER_FRESH
        }
    )
    return figures


async def queue_figures(client: Client, queues: list[str]) -> list[QueueFigures]:
    """Backlog (count, age of the oldest task) and live pollers of each queue: activity
    tasks everywhere, workflow tasks too where workflows run."""
    wanted = [(q, "activity") for q in queues] + [
        (q, "workflow") for q in queues if q in WORKFLOW_QUEUES
    ]
    return list(await asyncio.gather(*(describe_queue(client, q, k) for q, k in wanted)))


CONNECTOR_SQL = """
SELECT p.id, p.name, p.status, p.consecutive_failures, p.flag_reason,
       extract(epoch FROM now() - p.last_successful_index_at)::float8 AS success_age,
       last.status AS last_status,
       extract(epoch FROM last.finished_at - last.started_at)::float8 AS last_seconds,
       coalesce((SELECT json_object_agg(s.status, s.n)::text FROM
                  (SELECT status, count(*) AS n FROM index_attempt a
                   WHERE a.cc_pair_id = p.id GROUP BY status) s), '{}') AS attempts,
       fin.n AS finished, coalesce(fin.seconds, 0)::float8 AS finished_seconds
FROM connector_credential_pair p
LEFT JOIN LATERAL (SELECT status, started_at, finished_at FROM index_attempt a
                   WHERE a.cc_pair_id = p.id AND a.finished_at IS NOT NULL
                   ORDER BY a.id DESC LIMIT 1) last ON true
LEFT JOIN LATERAL (SELECT count(*) AS n,
                          sum(extract(epoch FROM finished_at - started_at)) AS seconds
                   FROM index_attempt a WHERE a.cc_pair_id = p.id
                   AND a.finished_at IS NOT NULL AND a.started_at IS NOT NULL) fin ON true
ORDER BY p.id
"""


async def tenant_figures(tenant: str) -> tuple[list[ConnectorFigures], IndexFigures]:
    """One tenant's connectors (outcomes, attempt durations) and index size."""
    import json

    from sluice.db.session import tenant_connection

    async with tenant_connection(tenant) as (_, raw):
        rows = await raw.fetch(CONNECTOR_SQL)
        documents = await raw.fetchval("SELECT count(*) FROM document")
        chunks = await raw.fetchval("SELECT count(*) FROM chunk")
    connectors = [
        ConnectorFigures(
            tenant=tenant,
            cc_pair=r["id"],
            name=r["name"],
            status=r["status"],
            consecutive_failures=r["consecutive_failures"] or 0,
            flag_reason=r["flag_reason"],
            last_success_age_seconds=r["success_age"],
            last_attempt_status=r["last_status"],
            last_attempt_seconds=r["last_seconds"],
            attempts={k: int(v) for k, v in json.loads(r["attempts"]).items()},
            finished_attempts=int(r["finished"] or 0),
            finished_attempt_seconds=float(r["finished_seconds"]),
        )
        for r in rows
    ]
    return connectors, IndexFigures(tenant, int(documents), int(chunks))


async def collect_figures(
    client: Client | None, tenants: list[str] | None, queues: list[str] | None = None
) -> Figures:
    """Queues (when there is a client) and the given tenants (``None``: every migrated
    tenant); a tenant that cannot be read is named in ``errors``."""
    from sluice.queues import ALL_QUEUES

    figures = Figures([], [], [])
    if client is not None:
        figures.queues = await queue_figures(client, queues or [q.value for q in ALL_QUEUES])
    if tenants is None:
        from sluice.db.migrate import list_tenants

        try:
            tenants = await list_tenants()
        except Exception as exc:
            figures.errors.append(f"tenants: {exc}"[:200])
            tenants = []
    for tenant in tenants:
        try:
            connectors, index = await tenant_figures(tenant)
        except Exception as exc:
            figures.errors.append(f"tenant {tenant}: {exc}"[:200])
            continue
        figures.connectors += connectors
        figures.index.append(index)
    return figures


def alerts(figures: Figures, backlog_minutes: float) -> list[str]:
    """What deserves a page: an old backlog, queued work nobody polls, a failing
    connector, a tenant that could not be read. One line each."""
    found = []
    for q in figures.queues:
        where = f"queue {q.queue} ({q.kind})"
        if q.error is not None:
            found.append(f"{where}: not checked: {q.error}")
            continue
        if q.backlog_age_seconds > backlog_minutes * 60:
            found.append(
                f"{where}: oldest task waiting {q.backlog_age_seconds / 60:.1f} min "
                f"(over {backlog_minutes:g})"
            )
        if q.backlog > 0 and not q.pollers:
            found.append(f"{where}: {q.backlog} tasks waiting and no worker polling")
    for c in figures.connectors:
        if c.failing:
            why = c.flag_reason or f"last attempt {c.last_attempt_status}"
            found.append(
                f"connector {c.tenant}/{c.cc_pair} ({c.name}): failing, "
                f"{c.consecutive_failures} failed in a row; {why}"[:300]
            )
    return found + figures.errors
