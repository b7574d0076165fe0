"""Claim-check store for document batches (DESIGN §1.3).

The fetch activity stages each batch as one row and returns only its reference;
the processing activity loads the row by ID. ``(attempt, seq)`` is unique, so a
retried fetch overwrites its own earlier rows instead of duplicating them.
Batches are deleted when the run that staged them ends, whatever the outcome.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from sluice.connectors.models import Document
from sluice.indexing.models import ProcessResult, StagedBatchRef

_DOCS = TypeAdapter(list[Document])


def encode_documents(documents: list[Document]) -> bytes:
    return _DOCS.dump_json(documents)


def decode_documents(raw: bytes) -> list[Document]:
    return _DOCS.validate_json(raw)


async def stage_batch(
    raw: Any, cc_pair_id: int, attempt_id: int, seq: int, documents: list[Document]
) -> StagedBatchRef:
    """Store ``documents`` as batch ``seq`` of the attempt (idempotent per attempt and seq)."""
    batch_id = await raw.fetchval(
        """
        INSERT INTO staged_batch (index_attempt_id, cc_pair_id, seq, doc_count, documents)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (index_attempt_id, seq) DO UPDATE
            SET documents = EXCLUDED.documents, doc_count = EXCLUDED.doc_count,
                result = NULL, processed_at = NULL
        RETURNING id
        """,
        attempt_id,
        cc_pair_id,
        seq,
        len(documents),
        encode_documents(documents),
    )
    return StagedBatchRef(batch_id=int(batch_id), seq=seq, doc_count=len(documents))


async def load_batch(raw: Any, batch_id: int) -> tuple[list[Document], ProcessResult | None]:
    """The batch's documents, and its result if it was processed already (a retry).

    Locks the row so two executions of the same batch (a retry racing a slow first
    try) are serialised and the second sees the first's result.
    """
    row = await raw.fetchrow(
        "SELECT documents, result FROM staged_batch WHERE id = $1 FOR UPDATE", batch_id
    )
    if row is None:
        raise LookupError(f"staged batch {batch_id} is gone (its run has ended)")
    result = row["result"]
    if result is None:
        done = None
    elif isinstance(result, str | bytes):
        done = ProcessResult.model_validate_json(result)
    else:  # SQLAlchemy's asyncpg dialect decodes jsonb itself
        done = ProcessResult.model_validate(result)
    return decode_documents(row["documents"]), done


async def mark_processed(raw: Any, batch_id: int, result: ProcessResult) -> None:
    await raw.execute(
        "UPDATE staged_batch SET result = $2::jsonb, processed_at = now() WHERE id = $1",
        batch_id,
        result.model_dump_json(),
    )


async def delete_attempt_batches(raw: Any, attempt_id: int) -> int:
    status = await raw.execute("DELETE FROM staged_batch WHERE index_attempt_id = $1", attempt_id)
    return int(status.split()[-1])


async def count_attempt_batches(raw: Any, attempt_id: int) -> int:
    return int(
        await raw.fetchval(
            "SELECT count(*) FROM staged_batch WHERE index_attempt_id = $1", attempt_id
        )
    )
