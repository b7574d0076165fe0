"""Rows of seed 002's document indexes: collections, documents, state rows and tasks.

Every function takes a raw asyncpg connection inside a tenant transaction
(:func:`sluice.db.session.tenant_connection`). State rows follow one rule: a request
bumps ``version``; a build may only make a row ``active`` at the version it built, and a
delete only removes a row at the version it was asked for. So a request that arrives
during a build (a newer version, or a delete) is never overwritten by that build.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sluice.documents.models import IndexState, IndexStatus, IndexType, WorkItem, WorkPlan
from sluice.errors import CollectionDeleted, ConfigurationError, NotFoundError

SOURCE = "collection"
"""``document.source`` of a collection document (search can filter on it)."""


def document_id_for(collection: str, name: str) -> str:
    return f"{SOURCE}:{collection}/{name}"


def content_hash(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


# ---------------------------------------------------------------------------- collections


async def ensure_collection(raw: Any, name: str) -> None:
    if not name or len(name) > 200 or "/" in name:
        raise ConfigurationError(f"collection: {name!r} must be 1-200 characters, without '/'")
    status = await raw.fetchval(
        "INSERT INTO collection (name) VALUES ($1) ON CONFLICT (name) "
        "DO UPDATE SET name = EXCLUDED.name RETURNING status",
        name,
    )
    if status != "active":
        raise CollectionDeleted(f"collection {name!r} is deleted")


async def mark_collection_deleted(raw: Any, name: str) -> bool:
    status = await raw.execute(
        "UPDATE collection SET status = 'deleted', deleted_at = now() "
        "WHERE name = $1 AND status = 'active'",
        name,
    )
    return bool(status.endswith(" 1"))


# ---------------------------------------------------------------------------- documents


@dataclass(frozen=True)
class StoredDocument:
    id: str
    collection: str
    name: str
    content_type: str
    raw_hash: str
    parsed_hash: str | None
    chunks_hash: str | None


async def add_document(
    raw: Any, collection: str, name: str, content_type: str, data: bytes
) -> tuple[str, bool]:
    """Store (or replace) a document's bytes; returns its ID and whether they changed."""
    await ensure_collection(raw, collection)
    doc_id = document_id_for(collection, name)
    digest = content_hash(data)
    old = await raw.fetchval("SELECT raw_hash FROM collection_document WHERE id = $1", doc_id)
    await raw.execute(
        """
        INSERT INTO collection_document (id, collection, name, content_type, raw, raw_hash)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (id) DO UPDATE SET content_type = EXCLUDED.content_type,
            raw = EXCLUDED.raw, raw_hash = EXCLUDED.raw_hash, updated_at = now()
        """,
        doc_id,
        collection,
        name,
        content_type,
        data,
        digest,
    )
    return doc_id, old != digest


async def lock_document(raw: Any, document_id: str) -> StoredDocument:
    """The document row, locked until commit (a build and collection GC never interleave)."""
    row = await raw.fetchrow(
        "SELECT d.id, d.collection, d.name, d.content_type, d.raw_hash, d.parsed_hash, "
        "d.chunks_hash, c.status FROM collection_document d "
        "JOIN collection c ON c.name = d.collection WHERE d.id = $1 FOR UPDATE OF d",
        document_id,
    )
    if row is None:
        raise NotFoundError(f"document {document_id!r} does not exist")
    if row["status"] != "active":
        raise CollectionDeleted(f"collection {row['collection']!r} is deleted")
    return StoredDocument(*(row[k] for k in list(row.keys())[:7]))


async def document_collection(raw: Any, document_id: str) -> str:
    collection = await raw.fetchval(
        "SELECT collection FROM collection_document WHERE id = $1", document_id
    )
    if collection is None:
        raise NotFoundError(f"document {document_id!r} does not exist")
    return str(collection)


async def parsed_text(raw: Any, document_id: str) -> tuple[str, str, str]:
    """(collection, parsed text, parsed hash) of a parsed document."""
    row = await raw.fetchrow(
        "SELECT collection, parsed_text, parsed_hash FROM collection_document WHERE id = $1",
        document_id,
    )
    if row is None:
        raise NotFoundError(f"document {document_id!r} does not exist")
    if row["parsed_text"] is None:
        raise NotFoundError(f"document {document_id!r} has not been parsed")
    return row["collection"], row["parsed_text"], row["parsed_hash"]


# ---------------------------------------------------------------------------- state rows


async def request_indexes(
    raw: Any, document_id: str, types: list[IndexType], *, delete: bool
) -> dict[str, int]:
    """Bump the desired version of each type; returns ``{type: version}`` asked for.

    Create/update: the row becomes ``pending``. Delete: an existing row becomes
    ``deleting`` (a type with no row has nothing to delete and is left out).
    """
    await document_collection(raw, document_id)  # unknown documents fail here
    names = [t.value for t in types]
    if delete:
        rows = await raw.fetch(
            "UPDATE document_index SET status = 'deleting', version = version + 1, "
            "error = NULL, updated_at = now() "
            "WHERE document_id = $1 AND index_type = ANY($2::text[]) "
            "RETURNING index_type, version",
            document_id,
            names,
        )
    else:
        rows = await raw.fetch(
            """
            INSERT INTO document_index (document_id, index_type, status)
            SELECT $1, unnest($2::text[]), 'pending'
            ON CONFLICT (document_id, index_type) DO UPDATE SET status = 'pending',
                version = document_index.version + 1, error = NULL, updated_at = now()
            RETURNING index_type, version
            """,
            document_id,
            names,
        )
    return {r["index_type"]: int(r["version"]) for r in rows}


async def claim_work(raw: Any, document_id: str) -> WorkPlan:
    """The next round: rows to build (now ``creating``) and rows to delete."""
    rows = await raw.fetch(
        "UPDATE document_index SET status = CASE WHEN status = 'deleting' THEN status "
        "ELSE 'creating' END, started_at = now(), updated_at = now() "
        "WHERE document_id = $1 AND status IN ('pending', 'creating', 'deleting') "
        "RETURNING index_type, version, status",
        document_id,
    )
    plan = WorkPlan()
    for r in sorted(rows, key=lambda r: list(IndexType).index(IndexType(r["index_type"]))):
        item = WorkItem(index_type=IndexType(r["index_type"]), version=int(r["version"]))
        (plan.deletes if r["status"] == IndexStatus.DELETING else plan.builds).append(item)
    return plan


async def finish_build(raw: Any, document_id: str, item: WorkItem) -> bool:
    """Make the row active at the version built, unless a newer request came meanwhile."""
    status = await raw.execute(
        "UPDATE document_index SET status = 'active', observed_version = $3, error = NULL, "
        "finished_at = now(), updated_at = now() "
        "WHERE document_id = $1 AND index_type = $2 AND version = $3 AND status = 'creating'",
        document_id,
        item.index_type.value,
        item.version,
    )
    return bool(status.endswith(" 1"))


async def record_failure(raw: Any, document_id: str, items: list[WorkItem], error: str) -> int:
    """The failure handler: each item's row becomes ``failed`` with the error (same version)."""
    failed = 0
    for item in items:
        status = await raw.execute(
            "UPDATE document_index SET status = 'failed', error = $4, finished_at = now(), "
            "updated_at = now() WHERE document_id = $1 AND index_type = $2 AND version = $3 "
            "AND status IN ('pending', 'creating')",
            document_id,
            item.index_type.value,
            item.version,
            error[:2000],
        )
        failed += int(status.split()[-1])
    return failed


async def drop_state_rows(raw: Any, document_id: str, items: list[WorkItem]) -> None:
    for item in items:
        await raw.execute(
            "DELETE FROM document_index WHERE document_id = $1 AND index_type = $2 "
            "AND version = $3 AND status = 'deleting'",
            document_id,
            item.index_type.value,
            item.version,
        )


async def states(raw: Any, document_id: str) -> list[IndexState]:
    rows = await raw.fetch(
        "SELECT * FROM document_index WHERE document_id = $1 ORDER BY index_type", document_id
    )
    return [
        IndexState(
            document_id=r["document_id"],
            index_type=r["index_type"],
            status=r["status"],
            version=r["version"],
            observed_version=r["observed_version"],
            error=r["error"],
            updated_at=r["updated_at"].isoformat(),
        )
        for r in rows
    ]


# ---------------------------------------------------------------------------- tasks


async def record_task(
    raw: Any, task_id: str, document_id: str, operation: str, versions: dict[str, int]
) -> None:
    await raw.execute(
        "INSERT INTO document_index_task (id, document_id, operation, versions) "
        "VALUES ($1, $2, $3, $4::jsonb)",
        task_id,
        document_id,
        operation,
        json.dumps(versions),
    )


@dataclass(frozen=True)
class StoredTask:
    id: str
    document_id: str
    operation: str
    versions: dict[str, int]


async def get_task(raw: Any, task_id: str) -> StoredTask | None:
    row = await raw.fetchrow("SELECT * FROM document_index_task WHERE id = $1", task_id)
    if row is None:
        return None
    versions = row["versions"]
    if isinstance(versions, str):
        versions = json.loads(versions)
    return StoredTask(row["id"], row["document_id"], row["operation"], dict(versions))
