"""Embedding-model swap without downtime, on the dev server and real Postgres.

A connector's documents are re-embedded into a new generation (the bundled model at
128 dimensions instead of 256: a different vector space) while a task searches
without pause: every search answers, each from one generation (the query is embedded
in that generation's space; a mismatch could not even be compared by pgvector), and
the answering generation changes once, from old to new. Documents indexed during the
swap land in both generations; a canceled swap leaves the live index as it was.
"""

from __future__ import annotations

import asyncio
import json
import time

from temporalio.testing import WorkflowEnvironment

from sluice import connector_ops, model_swap
from sluice.ccpairs import create_cc_pair
from sluice.connectors.models import Document, Section
from sluice.db.session import tenant_connection
from sluice.index import generations
from sluice.index.embedding import WordLlamaProvider
from sluice.index.generations import EmbeddingSpec
from sluice.index.search import search
from sluice.indexing.pipeline import index_documents
from tests.support import FAST, eventually, fetchval, only_line, running_workers
from tests.test_cli import sluice

SMALLER = EmbeddingSpec(provider="local", dim=128)


async def add_synthetic(env: WorkflowEnvironment, tenant: str, count: int) -> int:
    pair = await connector_ops.add_connector(
        env.client,
        tenant,
        name="swap",
        source="synthetic",
        config={"count": count, "size_bytes": 1500},
        tuning=FAST,
    )
    await connector_ops.wait_for_attempts(env.client, tenant, pair.id, 1, timeout=120)
    return pair.id


class SearchThroughout:
    """Searches in a loop until stopped; records (generation, top document) or the error."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.answers: list[tuple[int, str]] = []
        self.errors: list[BaseException] = []
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                hits = await search(self.tenant, "vector embedding cluster worker queue", k=5)
            except Exception as exc:  # every failure is a defect: keep them all
                self.errors.append(exc)
            else:
                assert hits, "an indexed tenant must answer"
                assert len({h.generation for h in hits}) == 1
                self.answers.append((hits[0].generation, hits[0].document_id))
            await asyncio.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()

    async def answered(self, count: int) -> None:
        async def enough() -> bool:
            return len(self.answers) >= count

        await eventually(enough, timeout=60)


async def test_search_answers_throughout_a_swap_and_switches_once(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    async with running_workers(client):
        cc = await add_synthetic(dev_env, tenant, count=300)
        chunks = await fetchval(tenant, "SELECT count(*) FROM chunk")
        searcher = SearchThroughout(tenant)
        searching = asyncio.create_task(searcher.run())
        await searcher.answered(5)

        started = time.monotonic()
        await model_swap.switch_model(client, tenant, SMALLER, retire_after_seconds=1, page_size=20)
        # The connector keeps indexing meanwhile: 100 more documents, into both generations.
        await connector_ops.update_connector(client, tenant, cc, config={"count": 400})
        await connector_ops.index_now(client, tenant, cc)
        result = await model_swap.wait_for_swap(client, tenant, timeout=300)
        await connector_ops.wait_for_attempts(client, tenant, cc, 2, timeout=120)
        await searcher.answered(len(searcher.answers) + 10)
        searcher.stop()
        await searching

    assert searcher.errors == []
    served = [generation for generation, _ in searcher.answers]
    switch_points = [i for i in range(1, len(served)) if served[i] != served[i - 1]]
    assert served[0] == 1 and served[-1] == result.generation_id == 2
    assert len(switch_points) == 1, "one switch from old to new, never back"
    assert result.retired_id == 1
    assert result.chunks_embedded >= chunks
    print(
        f"swap of {chunks}+ chunks took {time.monotonic() - started:.1f} s; "
        f"{len(served)} searches answered, none failed"
    )

    total = await fetchval(tenant, "SELECT count(*) FROM chunk")
    assert await fetchval(tenant, "SELECT count(*) FROM document") == 400
    assert await fetchval(tenant, "SELECT count(*) FROM chunk_vector_2") == total
    assert await fetchval(tenant, "SELECT to_regclass('chunk_vector_1') IS NULL")
    listed = {g.id: g for g in await model_swap.generations(tenant)}
    assert (listed[1].status, listed[1].dropped) == ("retired", True)
    assert (listed[2].status, listed[2].name) == ("live", SMALLER.name)
    # An unchanged re-run embeds nothing, in either generation.
    async with running_workers(client):
        await connector_ops.index_now(client, tenant, cc)
        done = await connector_ops.wait_for_attempts(client, tenant, cc, 3, timeout=120)
    assert done.last_attempt_counts is not None
    assert done.last_attempt_counts.docs_indexed == 0


async def test_documents_written_during_a_swap_land_in_both_generations(tenant: str) -> None:
    """Deterministic: the building generation exists while a batch is written."""
    pair = await create_cc_pair(tenant, name="both", source="synthetic", config={"count": 1})
    docs = [
        Document(
            id=f"d{i}",
            source="test",
            semantic_identifier=f"d{i}",
            sections=[Section(text=f"document number {i} about rivers " * 40)],
        )
        for i in range(12)
    ]
    async with tenant_connection(tenant) as (_, raw):
        await index_documents(raw, pair.id, docs[:6], WordLlamaProvider())
        building = await generations.start_generation(raw, SMALLER, "test/run")
    async with tenant_connection(tenant) as (_, raw):
        await index_documents(raw, pair.id, docs[6:], WordLlamaProvider())
        rows = await raw.fetch(
            f"SELECT c.document_id, v1.embedding IS NOT NULL AS live, "
            f"v2.embedding IS NOT NULL AS building FROM chunk c "
            f"LEFT JOIN chunk_vector_1 v1 USING (document_id, chunk_id) "
            f"LEFT JOIN {building.table} v2 USING (document_id, chunk_id)"
        )
        missing = await generations.missing_vectors(raw, building)
    later = [r for r in rows if r["document_id"] in {d.id for d in docs[6:]}]
    earlier = [r for r in rows if r["document_id"] in {d.id for d in docs[:6]}]
    assert later and all(r["live"] and r["building"] for r in later)
    # Written before the swap began: only the live generation; re-embedding fills these.
    assert earlier and all(r["live"] and not r["building"] for r in earlier)
    assert missing == len(earlier)
    # The switch refuses while any chunk lacks a vector in the new generation.
    async with tenant_connection(tenant) as (_, raw):
        outcome = await generations.switch_to(raw, building.id)
        assert outcome.missing == len(earlier)
        assert (await generations.live_generation(raw)).id == 1


async def test_a_canceled_swap_leaves_the_live_index_untouched(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    async with running_workers(client):
        await add_synthetic(dev_env, tenant, count=300)
        before = [h.document_id for h in await search(tenant, "queue schedule retry", k=5)]
        await model_swap.switch_model(client, tenant, SMALLER, page_size=1)

        async def embedding_started() -> bool:
            listed = await model_swap.generations(tenant)
            return len(listed) == 2 and listed[1].chunks_done > 0

        await eventually(embedding_started, timeout=60)
        await model_swap.cancel_swap(client, tenant)

        async def ended() -> bool:
            return await model_swap.running_swap(client, tenant) is None

        await eventually(ended, timeout=60)
    listed = {g.id: g for g in await model_swap.generations(tenant)}
    assert listed[1].status == "live"
    assert (listed[2].status, listed[2].dropped) == ("canceled", True)
    after = await search(tenant, "queue schedule retry", k=5)
    assert [h.document_id for h in after] == before
    assert {h.generation for h in after} == {1}


async def test_switch_model_from_the_command_line(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    async with running_workers(dev_env.client):
        await add_synthetic(dev_env, tenant, count=20)
        same = await sluice(dev_env, tenant, "index", "switch-model", "--dim", "256")
        assert same.returncode == 2
        assert "already uses wordllama:l2_supercat:256" in only_line(same.stderr)
        bad = await sluice(dev_env, tenant, "index", "switch-model", "--dim", "100")
        assert bad.returncode == 2
        assert only_line(bad.stderr) == (
            "error: --dim: the local model serves (64, 128, 256), not 100"
        )
        none = await sluice(dev_env, tenant, "index", "switch-model", "--cancel")
        assert none.returncode == 2 and "no model swap is running" in only_line(none.stderr)

        done = await sluice(
            dev_env, tenant, "index", "switch-model", "--dim", "64", "--retire-after", "0", "--wait"
        )
        assert done.returncode == 0, done.stderr
        assert "generation 2 (wordllama:l2_supercat:64) is live" in done.stdout
    listed = await sluice(dev_env, tenant, "index", "generations", "--json")
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["status"], r["dropped"]) for r in rows] == [
        (1, "retired", True),
        (2, "live", False),
    ]
