"""Claim-check store for document batches (DESIGN §1.3).

The fetch activity stages each batch as one row and returns only its reference;
the processing activity loads the row by ID. ``(attempt, seq)`` is unique, so a
retried fetch overwrites its own earlier rows instead of duplicating them.
A processed batch's documents are released at once; the rows go when the attempt
ends, except batches it could not process, which the next attempt adopts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter

from sluice.connectors.models import Document
from sluice.errors import AttemptClosed, StagedBatchGone
from sluice.indexing.models import ProcessResult, StagedBatchRef

_DOCS = TypeAdapter(list[Document])


def encode_documents(documents: list[Document]) -> bytes:
    return _DOCS.dump_json(documents)


def decode_documents(raw: bytes) -> list[Document]:
    return _DOCS.validate_json(raw)


async def stage_batch(
    raw: Any, cc_pair_id: int, attempt_id: int, seq: int, documents: list[Document]
) -> StagedBatchRef:
    """Store ``documents`` as batch ``seq`` of the attempt (idempotent per attempt and seq).

    Only while the attempt is open: the share lock makes a concurrent close wait for
    this insert (and then delete it), so a fetch that outlives its terminated run
    never leaves a batch behind.
    """
    status = await raw.fetchval(
        "SELECT status FROM index_attempt WHERE id = $1 FOR SHARE", attempt_id
    )
    if status != "in_progress":
        raise AttemptClosed(f"attempt {attempt_id} is {status or 'gone'}: nothing more is staged")
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
    """The batch's documents, or its result if it was processed already (a retry).

    Reads without a lock: processing then runs outside any transaction, and
    :func:`claim_for_write` settles a race between two tries of the same batch.
    """
    row = await raw.fetchrow("SELECT documents, result FROM staged_batch WHERE id = $1", batch_id)
    if row is None:
        raise StagedBatchGone(f"staged batch {batch_id} is gone (its attempt has ended)")
    done = _result(row["result"])
    if done is not None:
        return [], done
    return decode_documents(row["documents"]), None


async def claim_for_write(raw: Any, batch_id: int) -> ProcessResult | None:
    """Lock the batch's row for the write transaction; the result if another try won."""
    row = await raw.fetchrow("SELECT result FROM staged_batch WHERE id = $1 FOR UPDATE", batch_id)
    if row is None:
        raise StagedBatchGone(f"staged batch {batch_id} is gone (its attempt has ended)")
    return _result(row["result"])


def _result(value: Any) -> ProcessResult | None:
    if value is None:
        return None
    if isinstance(value, str | bytes):
        return ProcessResult.model_validate_json(value)
    return ProcessResult.model_validate(value)  # SQLAlchemy's asyncpg dialect decodes jsonb


async def mark_processed(raw: Any, batch_id: int, result: ProcessResult) -> None:
    """Record the result and release the documents at once: a long run never holds a
    second copy of its corpus in the staging table."""
    await raw.execute(
        """
        UPDATE staged_batch SET result = $2::jsonb, processed_at = now(), documents = ''::bytea
        WHERE id = $1
        """,
        batch_id,
        result.model_dump_json(),
    )


async def delete_attempt_batches(raw: Any, attempt_id: int, keep: Sequence[int] = ()) -> int:
    status = await raw.execute(
        "DELETE FROM staged_batch WHERE index_attempt_id = $1 AND NOT (id = ANY($2::bigint[]))",
        attempt_id,
        list(keep),
    )
    return int(status.split()[-1])


async def count_attempt_batches(raw: Any, attempt_id: int) -> int:
    return int(
        await raw.fetchval(
            "SELECT count(*) FROM staged_batch WHERE index_attempt_id = $1", attempt_id
        )
    )
