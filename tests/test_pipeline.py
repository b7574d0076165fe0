"""The batch pipeline and the processing activity against real Postgres + pgvector:
duplicates, unchanged documents, out-of-order batches, idempotent retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.testing import ActivityEnvironment

from activities.docprocessing import DocProcessingActivities
from sluice.ccpairs import create_cc_pair
from sluice.connectors.models import Document, Section
from sluice.db.session import tenant_connection
from sluice.index.embedding import WordLlamaProvider
from sluice.indexing import attempts
from sluice.indexing.models import ProcessRequest
from sluice.indexing.pipeline import index_documents, newest_per_id
from sluice.indexing.staging import stage_batch
from sluice.temporal.tenant_context import tenant_scope
from tests.support import fetchval

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def doc(doc_id: str, text: str, updated: datetime = T0) -> Document:
    return Document(
        id=doc_id,
        source="test",
        semantic_identifier=doc_id,
        sections=[Section(text=text)],
        updated_at=updated,
    )


async def _cc_pair(tenant: str) -> int:
    pair = await create_cc_pair(tenant, name="t", source="synthetic", config={"count": 1})
    return pair.id


def test_newest_per_id_keeps_the_newest_and_counts_duplicates() -> None:
    docs = [doc("a", "old", T0), doc("b", "b"), doc("a", "new", T0 + timedelta(hours=1))]
    kept, duplicates = newest_per_id(docs)
    assert duplicates == 1
    assert [(d.id, d.text) for d in kept] == [("b", "b"), ("a", "new")]


async def test_batches_processed_out_of_order_keep_the_newest_version(tenant: str) -> None:
    cc = await _cc_pair(tenant)
    embedder = WordLlamaProvider()
    newer = [doc("x", "the newer text about herons", T0 + timedelta(days=1))]
    older = [doc("x", "the older text about owls", T0)]
    async with tenant_connection(tenant) as (_, raw):
        first, _ = await index_documents(raw, cc, newer, embedder)
    async with tenant_connection(tenant) as (_, raw):
        second, _ = await index_documents(raw, cc, older, embedder)
    assert first.docs_indexed == 1
    assert second.docs_indexed == 0 and second.duplicates == 1
    content = await fetchval(tenant, "SELECT string_agg(content, ' ') FROM chunk")
    assert "herons" in content and "owls" not in content


async def test_unchanged_documents_are_not_rechunked_or_reembedded(tenant: str) -> None:
    cc = await _cc_pair(tenant)
    embedder = WordLlamaProvider()
    docs = [doc(f"d{i}", f"document number {i} about rivers") for i in range(5)]
    async with tenant_connection(tenant) as (_, raw):
        await index_documents(raw, cc, docs, embedder)
    before = await fetchval(tenant, "SELECT max(last_modified) FROM document")
    changed = [*docs[:4], doc("d4", "document number 4 about lakes now")]
    async with tenant_connection(tenant) as (_, raw):
        result, _ = await index_documents(raw, cc, changed, embedder)
    assert (result.docs_indexed, result.docs_skipped) == (1, 4)
    # Only the changed document's row was touched.
    touched = await fetchval(
        tenant, "SELECT count(*) FROM document WHERE last_modified > $1", before
    )
    assert touched == 1


async def test_a_retried_batch_changes_nothing(tenant: str) -> None:
    cc = await _cc_pair(tenant)
    async with tenant_connection(tenant) as (_, raw):
        attempt_id = await attempts.create_attempt(raw, cc, False, "wf", "run")
        ref = await stage_batch(
            raw, cc, attempt_id, 0, [doc(f"r{i}", f"text {i}") for i in range(8)]
        )
    activities = DocProcessingActivities(WordLlamaProvider())
    request = ProcessRequest(cc_pair_id=cc, attempt_id=attempt_id, batch=ref)
    env = ActivityEnvironment()
    with tenant_scope(tenant):
        first = await env.run(activities.process_batch, request)
        snapshot = await fetchval(
            tenant,
            "SELECT md5(string_agg(document_id || chunk_id || content, ',' ORDER BY 1)) FROM chunk",
        )
        second = await env.run(activities.process_batch, request)
    assert first == second
    assert first.docs_indexed == 8
    assert (
        await fetchval(
            tenant,
            "SELECT md5(string_agg(document_id || chunk_id || content, ',' ORDER BY 1)) FROM chunk",
        )
        == snapshot
    )
    # The attempt's live counters moved once, not twice.
    assert (
        await fetchval(tenant, "SELECT docs_indexed FROM index_attempt WHERE id = $1", attempt_id)
        == 8
    )
    assert (
        await fetchval(tenant, "SELECT batches FROM index_attempt WHERE id = $1", attempt_id) == 1
    )
