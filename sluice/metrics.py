"""``/metrics`` on a worker's health port: Prometheus text of three sources.

* this process: ``process_resident_memory_bytes``, ``process_cpu_seconds_total``, ...;
* the Temporal SDK's own metrics (``temporal_activity_execution_latency``,
  ``temporal_activity_schedule_to_start_latency``, ``temporal_sticky_cache_size``,
  ``temporal_num_pollers``, ...): the SDK's Rust runtime exports them on a loopback port
  of its own (``METRICS_SDK_PORT``), read and appended here, so one scrape gets all;
* on a worker that serves the ``monitoring`` queue, the platform's figures
  (:mod:`sluice.monitoring`): task-queue backlog, connector outcomes, index size. They
  are collected at most every ``FIGURES_TTL`` seconds, at scrape time, and by the
  ``collect_metrics`` activity of the monitoring schedule.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator

import httpx
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

from sluice.monitoring import Figures

FIGURES_TTL = 10.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class FiguresCollector(Collector):
    """Turns the latest :class:`Figures` into metric families (vanished series go)."""

    def __init__(self) -> None:
        self.figures: Figures | None = None

    def collect(self) -> Iterator[Metric]:
        figures = self.figures
        if figures is None:
            return
        yield from self._queues(figures)
        yield from self._connectors(figures)
        docs = _gauge("sluice_index_documents", "Documents in the tenant's index.", ["tenant"])
        chunks = _gauge("sluice_index_chunks", "Chunks in the tenant's index.", ["tenant"])
        for index in figures.index:
            docs.add_metric([index.tenant], index.documents)
            chunks.add_metric([index.tenant], index.chunks)
        collected = _gauge(
            "sluice_figures_collected_timestamp_seconds", "When these figures were read.", []
        )
        collected.add_metric([], figures.collected_at)
        yield from (docs, chunks, collected)

    def _queues(self, figures: Figures) -> Iterator[Metric]:
        labels = ["task_queue", "task_type"]
        backlog = _gauge("sluice_task_queue_backlog_tasks", "Tasks waiting (approx.).", labels)
        age = _gauge(
            "sluice_task_queue_backlog_age_seconds", "Age of the oldest waiting task.", labels
        )
        pollers = _gauge("sluice_task_queue_pollers", "Worker identities polling.", labels)
        for q in figures.queues:
            if q.error is None:
                backlog.add_metric([q.queue, q.kind], q.backlog)
                age.add_metric([q.queue, q.kind], q.backlog_age_seconds)
                pollers.add_metric([q.queue, q.kind], len(q.pollers))
        yield from (backlog, age, pollers)

    def _connectors(self, figures: Figures) -> Iterator[Metric]:
        pair = ["tenant", "cc_pair"]
        attempts = _gauge(
            "sluice_connector_attempts", "Index attempt rows by status.", [*pair, "status"]
        )
        failing = _gauge("sluice_connector_failing", "1 when the connector is failing.", pair)
        failures = _gauge(
            "sluice_connector_consecutive_failures", "Failed attempts in a row.", pair
        )
        age = _gauge(
            "sluice_connector_last_success_age_seconds", "Since the last successful index.", pair
        )
        duration = SummaryMetricFamily(
            "sluice_connector_attempt_duration_seconds",
            "Durations of finished attempts (retained rows).",
            labels=pair,
        )
        for c in figures.connectors:
            key = [c.tenant, str(c.cc_pair)]
            for status, count in c.attempts.items():
                attempts.add_metric([*key, status], count)
            failing.add_metric(key, 1 if c.failing else 0)
            failures.add_metric(key, c.consecutive_failures)
            if c.last_success_age_seconds is not None:
                age.add_metric(key, c.last_success_age_seconds)
            duration.add_metric(key, c.finished_attempts, c.finished_attempt_seconds)
        yield from (attempts, failing, failures, age, duration)


class MetricsEndpoint:
    """Renders ``/metrics``; ``refresh`` (if given) reads fresh platform figures."""

    def __init__(
        self,
        refresh: Callable[[], Awaitable[Figures]] | None = None,
        sdk_port: int | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.figures = FiguresCollector()
        self.registry.register(self.figures)
        self._refresh = refresh
        self._sdk_url = f"http://127.0.0.1:{sdk_port}/metrics" if sdk_port else None
        self._lock = asyncio.Lock()

    def publish(self, figures: Figures) -> None:
        self.figures.figures = figures

    def merge(self, figures: Figures) -> None:
        """Take fresh queue figures and the tenants ``figures`` covers; keep the rest."""
        current = self.figures.figures
        if current is None:
            self.publish(figures)
            return
        tenants = {i.tenant for i in figures.index}
        self.publish(
            Figures(
                queues=figures.queues or current.queues,
                connectors=[c for c in current.connectors if c.tenant not in tenants]
                + figures.connectors,
                index=[i for i in current.index if i.tenant not in tenants] + figures.index,
                collected_at=current.collected_at,
                errors=figures.errors,
            )
        )

    async def _fresh_figures(self) -> None:
        if self._refresh is None:
            return
        async with self._lock:
            current = self.figures.figures
            if current is None or time.time() - current.collected_at > FIGURES_TTL:
                self.publish(await self._refresh())

    async def render(self) -> bytes:
        await self._fresh_figures()
        text = generate_latest(self.registry)
        if self._sdk_url is not None:
            try:
                async with httpx.AsyncClient(timeout=3) as http:
                    response = await http.get(self._sdk_url)
                text += response.content
            except httpx.HTTPError:
                text += b"# Temporal SDK metrics unavailable\n"
        return text


_PROCESS: MetricsEndpoint | None = None


def process_endpoint() -> MetricsEndpoint | None:
    """This worker process's endpoint (``None`` outside a worker): the monitoring
    activity publishes what it collected there."""
    return _PROCESS


def set_process_endpoint(endpoint: MetricsEndpoint | None) -> None:
    global _PROCESS
    _PROCESS = endpoint
