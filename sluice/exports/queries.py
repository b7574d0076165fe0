"""One page of each export, by keyset pagination: ``WHERE key > $after ORDER BY key``.

Never ``OFFSET``: a page costs the same at row 1,000,000 as at row 1, and a resumed export
continues after the last key written, whatever was inserted or deleted meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sluice.exports.models import ExportKind


@dataclass(frozen=True)
class ExportQuery:
    columns: tuple[str, ...]
    key: str
    key_type: str
    table: str
    cc_filter: str

    def page_sql(self) -> str:
        return (
            f"SELECT {', '.join(self.columns)} FROM {self.table} "
            f"WHERE ($1::{self.key_type} IS NULL OR {self.key} > $1::{self.key_type}) "
            f"AND ($2::int IS NULL OR {self.cc_filter}) ORDER BY {self.key} LIMIT $3"
        )

    def count_sql(self) -> str:
        return f"SELECT count(*) FROM {self.table} WHERE ($1::int IS NULL OR {self.cc_filter})"


QUERIES: dict[ExportKind, ExportQuery] = {
    ExportKind.DOCUMENTS: ExportQuery(
        columns=(
            "id",
            "source",
            "semantic_identifier",
            "link",
            "chunk_count",
            "hidden",
            "boost",
            "doc_updated_at",
            "last_modified",
        ),
        key="id",
        key_type="text",
        table="document",
        cc_filter="EXISTS (SELECT 1 FROM document_by_connector_credential_pair l "
        "WHERE l.document_id = document.id AND l.cc_pair_id = $2)",
    ),
    ExportKind.ATTEMPTS: ExportQuery(
        columns=(
            "id",
            "cc_pair_id",
            "status",
            "from_beginning",
            "docs_fetched",
            "docs_indexed",
            "docs_skipped",
            "docs_failed",
            "chunks_written",
            "batches",
            "error_message",
            "started_at",
            "finished_at",
            "created_at",
        ),
        key="id",
        key_type="int",
        table="index_attempt",
        cc_filter="cc_pair_id = $2",
    ),
    ExportKind.ERRORS: ExportQuery(
        columns=(
            "id",
            "index_attempt_id",
            "cc_pair_id",
            "stage",
            "document_id",
            "document_link",
            "failure_message",
            "created_at",
        ),
        key="id",
        key_type="int",
        table="index_attempt_error",
        cc_filter="cc_pair_id = $2",
    ),
}


async def fetch_page(
    raw: Any, kind: ExportKind, after: str | int | None, cc_pair_id: int | None, limit: int
) -> list[Any]:
    return list(await raw.fetch(QUERIES[kind].page_sql(), after, cc_pair_id, limit))


async def count_rows(raw: Any, kind: ExportKind, cc_pair_id: int | None) -> int:
    return int(await raw.fetchval(QUERIES[kind].count_sql().replace("$2", "$1"), cc_pair_id))
