"""Run one worker process of a given kind: one Temporal ``Worker`` per task queue.

Shuts down gracefully on SIGTERM/SIGINT: polling stops, running activities get
``graceful_shutdown_timeout`` to finish (a fetch that is cut off resumes from its
heartbeat elsewhere), then the process exits.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Callable
from datetime import timedelta
from functools import cache

import structlog
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import Worker, WorkerDeploymentConfig

from sluice.config import Settings
from sluice.db.engine import dispose_engines
from sluice.devstack import free_port
from sluice.errors import ConfigurationError
from sluice.health import Readiness, serve_health, standard_checks
from sluice.index.embedding import EmbeddingProvider, embedder_from_settings
from sluice.metrics import MetricsEndpoint, set_process_endpoint
from sluice.monitoring import Figures, collect_figures
from sluice.queues import TaskQueue
from sluice.temporal.client import connect, sdk_metrics_runtime
from sluice.temporal.interceptor import TenantInterceptor
from sluice.temporal.policies import MAX_HEARTBEAT_THROTTLE
from workers.collector import collector_paused
from workers.kinds import WorkerKind, get_kind
from workers.registry import WORKFLOWS, activities_for

log = structlog.get_logger(__name__)


async def sync_schedules_at_start(client: Client, settings: Settings) -> None:
    """The workflow worker brings every tenant's schedules in line with schedules/table.py
    (Beat's job, done once at start instead of by a process that must stay up)."""
    from schedules.sync import sync_all

    try:
        reports = await sync_all(client, settings)
    except Exception as exc:  # the worker is still useful; `sluice schedules sync` retries
        log.error("schedule sync failed", error=str(exc))
        return
    for report in reports:
        if report.changed:
            log.info(
                "schedules synced",
                tenant_id=report.tenant_id,
                created=report.created,
                updated=report.updated,
                deleted=report.deleted,
            )


def metrics_endpoint(kind: WorkerKind, client: Client, sdk_port: int) -> MetricsEndpoint:
    """``/metrics`` of this process; a worker serving ``monitoring`` also publishes the
    platform's figures (queues, connectors, index), collected at scrape time."""
    refresh = None
    if TaskQueue.MONITORING in kind.queues:

        async def refresh() -> Figures:
            return await collect_figures(client, None)

    endpoint = MetricsEndpoint(refresh, sdk_port)
    set_process_endpoint(endpoint)
    return endpoint


def embedder_factory(settings: Settings) -> Callable[[], EmbeddingProvider]:
    @cache
    def build() -> EmbeddingProvider:
        return embedder_from_settings(settings)

    return build


def _require_tenant_interceptor(client: Client) -> None:
    """Workers take the tenant interceptor from their client: one made by
    ``connect(workers=True)`` (or the tests') has it; a CLI-style client does not, and its
    activities would run without a tenant."""
    if not any(isinstance(i, TenantInterceptor) for i in client.config()["interceptors"]):
        raise ConfigurationError(
            "this Temporal client cannot run workers: connect(settings, workers=True) "
            "adds the tenant interceptor workers need"
        )


def deployment_config(settings: Settings) -> WorkerDeploymentConfig | None:
    """Worker versioning (opt-in): every worker of this process polls as one version of a
    Temporal Worker Deployment, ``SLUICE_WORKER_DEPLOYMENT`` / ``SLUICE_WORKER_BUILD_ID``.

    Workflows are AUTO_UPGRADE: a running one moves to the deployment's current version at
    its next workflow task. Connector workflows live for months (continue-as-new keeps the
    chain), so pinning them would keep old versions' workers alive for ever; they stay
    safe across versions the way they already are without versioning, through
    ``workflow.patched`` and the replay tests (docs/operations.md, deploy runbook).
    """
    version = settings.worker_version
    if version is None:
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(deployment_name=version[0], build_id=version[1]),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.AUTO_UPGRADE,
    )


def build_workers(
    client: Client,
    kind: WorkerKind,
    settings: Settings,
    identity: str,
    factory: Callable[[], EmbeddingProvider] | None = None,
) -> list[Worker]:
    """One Temporal ``Worker`` per queue of ``kind``; the embedder is shared by all."""
    _require_tenant_interceptor(client)
    factory = factory or embedder_factory(settings)
    versioning = deployment_config(settings)
    with collector_paused():  # the sandbox's import check is unsafe under GC (see module)
        return [
            Worker(
                client,
                task_queue=queue.value,
                workflows=list(WORKFLOWS.get(queue, [])),
                activities=activities_for(queue, factory, client),
                max_concurrent_activities=kind.max_concurrent_activities,
                max_concurrent_workflow_tasks=kind.max_concurrent_workflow_tasks,
                identity=identity,
                graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_seconds),
                max_heartbeat_throttle_interval=MAX_HEARTBEAT_THROTTLE,
                default_heartbeat_throttle_interval=MAX_HEARTBEAT_THROTTLE,
                deployment_config=versioning,
            )
            for queue in kind.queues
        ]


async def run_worker(
    kind_name: str, settings: Settings, *, stop: asyncio.Event | None = None
) -> None:
    """Serve ``kind_name``'s queues until ``stop`` is set or a termination signal arrives."""
    kind = get_kind(kind_name)
    identity = f"sluice-{kind.name}-{os.getpid()}@{socket.gethostname()}"
    structlog.contextvars.bind_contextvars(worker_kind=kind.name)
    sdk_port = settings.metrics_sdk_port or free_port()
    client = await connect(settings, sdk_metrics_runtime(sdk_port), workers=True)
    metrics = metrics_endpoint(kind, client, sdk_port)
    if TaskQueue.PRIMARY in kind.queues:
        await sync_schedules_at_start(client, settings)
    factory = embedder_factory(settings)
    workers = build_workers(client, kind, settings, identity, factory)
    if TaskQueue.DOCPROCESSING in kind.queues:
        # Load the embedding model before polling, not inside the first batch.
        embedder = factory()
        warm_up = getattr(embedder, "warm_up", None)
        if warm_up is not None:
            await asyncio.to_thread(warm_up)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    readiness = Readiness(
        standard_checks(settings, client, identity, [q.value for q in kind.queues])
    )
    server = await serve_health(readiness, settings.health_port, metrics=metrics)
    port = server.sockets[0].getsockname()[1]
    log.info(
        "worker started",
        kind=kind.name,
        queues=[q.value for q in kind.queues],
        health=f"http://127.0.0.1:{port}/readyz",
        identity=identity,
    )
    runs = [asyncio.create_task(w.run()) for w in workers]
    try:
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopper, *runs], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopper and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        log.info("worker shutting down", kind=kind.name)
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        await asyncio.gather(*runs, return_exceptions=True)
        server.close()
        set_process_endpoint(None)
        await dispose_engines()
