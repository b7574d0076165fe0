"""Operations on collections and their documents, shared by the CLI, tests and Python users.

Adding a document stores its bytes (the seed's upload); indexing it is a separate
request through :class:`~sluice.scheduler.TemporalTaskScheduler`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sluice.db.session import tenant_connection
from sluice.documents import store
from sluice.documents.parsing import guess_content_type
from sluice.errors import ConfigurationError

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024


async def add_document(
    tenant_id: str, collection: str, name: str, data: bytes, content_type: str | None = None
) -> str:
    """Store a document's bytes in ``collection`` (created if new); returns its ID."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ConfigurationError(f"document: {name!r} is over {MAX_DOCUMENT_BYTES} bytes")
    async with tenant_connection(tenant_id) as (_, raw):
        doc_id, _ = await store.add_document(
            raw, collection, name, content_type or guess_content_type(name), data
        )
    return doc_id


async def add_file(tenant_id: str, collection: str, path: Path) -> str:
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise ConfigurationError(f"path: cannot read {path}: {exc.strerror or exc}") from None
    return await add_document(tenant_id, collection, path.name, data)


async def delete_collection(tenant_id: str, collection: str) -> bool:
    """Mark the collection deleted; collection GC removes what it holds. False if unknown."""
    async with tenant_connection(tenant_id) as (_, raw):
        return await store.mark_collection_deleted(raw, collection)


async def document_states(tenant_id: str, document_id: str) -> list[store.IndexState]:
    async with tenant_connection(tenant_id) as (_, raw):
        await store.document_collection(raw, document_id)
        return await store.states(raw, document_id)
