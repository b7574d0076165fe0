"""Evaluations of a collection: judged questions run against its index and scored.

An evaluation is a set of questions, each with the document (its name in the
collection) that answers it. Running it searches the tenant's index
(:func:`sluice.index.search.search`, hybrid vector + text), keeps the collection's
documents, and scores hits@1, hits@k and MRR@10 with :mod:`sluice.index.evaluation`.
The reconcile sweep runs the pending ones and stores the scores on the row.
"""

from __future__ import annotations

import json

from pydantic import BaseModel

from sluice.db.session import tenant_connection
from sluice.documents import store
from sluice.index.evaluation import MRR_DEPTH, QueryOutcome, rank_of, report

SEARCH_DEPTH = 50
"""Hits fetched per question before keeping the collection's documents."""


class Question(BaseModel):
    query: str
    expected: str
    kind: str = "question"


async def add_evaluation(
    tenant_id: str, collection: str, questions: list[Question], k: int = 5
) -> int:
    async with tenant_connection(tenant_id) as (_, raw):
        await store.ensure_collection(raw, collection)
        return int(
            await raw.fetchval(
                "INSERT INTO collection_evaluation (collection, questions, k) "
                "VALUES ($1, $2::jsonb, $3) RETURNING id",
                collection,
                json.dumps([q.model_dump() for q in questions]),
                k,
            )
        )


async def pending(tenant_id: str) -> list[int]:
    async with tenant_connection(tenant_id) as (_, raw):
        rows = await raw.fetch(
            "SELECT id FROM collection_evaluation WHERE status = 'pending' ORDER BY id"
        )
    return [r["id"] for r in rows]


async def run_evaluation(tenant_id: str, evaluation_id: int) -> dict[str, float]:
    """Run one evaluation and store its scores (``done``), or its error (``failed``)."""
    from sluice.index.search import search

    async with tenant_connection(tenant_id) as (_, raw):
        row = await raw.fetchrow(
            "SELECT collection, questions, k FROM collection_evaluation WHERE id = $1",
            evaluation_id,
        )
        members = {
            r["id"]
            for r in await raw.fetch(
                "SELECT id FROM collection_document WHERE collection = $1", row["collection"]
            )
        }
    questions = [Question.model_validate(q) for q in _json(row["questions"])]
    k = int(row["k"])
    outcomes: list[QueryOutcome] = []
    for q in questions:
        hits = await search(tenant_id, q.query, k=SEARCH_DEPTH)
        ranked = [h.document_id for h in hits if h.document_id in members][:MRR_DEPTH]
        outcomes.append(
            QueryOutcome(
                kind=q.kind,
                query=q.query,
                expected=q.expected,
                rank=rank_of(ranked, q.expected),
                top=ranked[:k],
            )
        )
    scores = report(outcomes, k).overall.model_dump()
    async with tenant_connection(tenant_id) as (_, raw):
        await raw.execute(
            "UPDATE collection_evaluation SET status = 'done', scores = $2::jsonb, "
            "finished_at = now() WHERE id = $1",
            evaluation_id,
            json.dumps(scores),
        )
    return scores


async def mark_failed(tenant_id: str, evaluation_id: int, error: str) -> None:
    async with tenant_connection(tenant_id) as (_, raw):
        await raw.execute(
            "UPDATE collection_evaluation SET status = 'failed', error = $2, finished_at = now() "
            "WHERE id = $1",
            evaluation_id,
            error[:2000],
        )


def _json(value: object) -> list[dict[str, str]]:
    return json.loads(value) if isinstance(value, str) else value  # type: ignore[return-value]
