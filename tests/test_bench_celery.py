"""The benchmark's Celery baseline (bench/celery_baseline.py) indexes every document once:
real ``celery worker`` processes (threads pool, acks late) on the test Redis and Postgres."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench import celery_baseline
from tests.support import fetchval


async def test_celery_baseline_indexes_every_document(
    services: dict[str, str], tenant: str, tmp_path: Path
) -> None:
    celery_baseline.use_broker(services["REDIS_URL"])
    workers = celery_baseline.start_workers(services, tmp_path, in_flight=2)
    try:
        await asyncio.to_thread(celery_baseline.wait_ready, workers, 90)
        config = {"count": 200, "size_bytes": 500, "seed": 19}
        job = await celery_baseline.create_job(tenant, config, batch_size=50)
        run = await asyncio.to_thread(celery_baseline.enqueue_and_wait, job, 60)
    finally:
        await asyncio.to_thread(celery_baseline.stop_workers, workers)
    assert run.errors == []
    assert (run.batches, run.details["task_repeats"]) == (4, 0)
    assert run.docs_indexed == 200
    assert await fetchval(tenant, "SELECT count(*) FROM document") == 200
    assert await celery_baseline.delete_staged(job) == 4
