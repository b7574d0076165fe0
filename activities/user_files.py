"""User files (queues ``user_file_processing``, ``user_file_project_sync``,
``user_file_delete``): index an upload for its owner, re-scope it, delete every trace.

Processing, moving and deleting one file are serialised on its ``user_file`` row lock:
the indexing write takes it first and writes nothing if the file was deleted meanwhile
(or retries if it was moved), so a file is never half-indexed nor indexed after its
deletion. Chunking and embedding happen before that transaction, holding no lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from sluice import filestore, metadata_ops
from sluice.config import get_settings
from sluice.connectors.filesystem import UnreadableFile
from sluice.connectors.models import Document
from sluice.db.session import tenant_connection
from sluice.errors import NotFoundError
from sluice.index.embedders import Embedders
from sluice.indexing.metadata import set_metadata
from sluice.indexing.pipeline import PreparedBatch, index_state, prepare_batch, write_batch
from sluice.temporal.tenant_context import current_tenant
from sluice.userfiles import db
from sluice.userfiles.models import (
    FileStatus,
    UserFileInfo,
    UserFileOutcome,
    UserFileRequest,
    acl_for,
    document_id,
)
from sluice.userfiles.parse import to_document

log = structlog.get_logger(__name__)


class UserFileActivities:
    """Holds the worker's embedders (built on first use) and client (moves start the
    metadata sync)."""

    def __init__(self, embedders: Callable[[], Embedders], client: Client) -> None:
        self._embedders = embedders
        self.client = client

    @activity.defn(name="process_user_file")
    async def process_user_file(self, request: UserFileRequest) -> UserFileOutcome:
        tenant = current_tenant()
        async with tenant_connection(tenant) as (_, raw):
            info = await db.get_file(raw, request.file_id)
        if info is None:
            return UserFileOutcome(file_id=request.file_id, status="gone")
        if info.status is not FileStatus.PROCESSING:
            return UserFileOutcome(file_id=info.id, status=info.status, detail=info.error or "")
        try:
            document = await asyncio.to_thread(_read_document, tenant, info)
        except UnreadableFile as exc:
            return await _fail(tenant, info.id, str(exc))
        async with tenant_connection(tenant) as (_, raw):
            state = await index_state(raw, [document])
        beat: Callable[[str], None] = lambda stage: activity.heartbeat(stage)  # noqa: E731
        prepared = await prepare_batch([document], state, self._embedders(), beat)
        if prepared.failures:
            return await _fail(tenant, info.id, f"could not chunk: {prepared.failures[0].message}")
        return await self._write(tenant, info.id, document, prepared, beat)

    async def _write(
        self,
        tenant: str,
        file_id: int,
        document: Document,
        prepared: PreparedBatch,
        beat: Callable[[str], None],
    ) -> UserFileOutcome:
        async with tenant_connection(tenant) as (_, raw):
            locked = await db.get_file(raw, file_id, lock=True)
            if locked is None or locked.status is not FileStatus.PROCESSING:
                log.info("user file deleted or finished meanwhile: nothing written", id=file_id)
                status = "gone" if locked is None else locked.status.value
                return UserFileOutcome(file_id=file_id, status=status)
            if acl_for(locked.owner, locked.project) != document.acl:
                raise ApplicationError("file moved while being processed; processing again")
            result = await write_batch(raw, None, prepared, self._embedders(), beat)
            await db.finish(raw, file_id, FileStatus.READY, chunks=result.chunks_written)
        log.info("user file indexed", id=file_id, chunks=result.chunks_written)
        return UserFileOutcome(
            file_id=file_id, status=FileStatus.READY, detail=f"{result.chunks_written} chunks"
        )

    @activity.defn(name="move_user_file")
    async def move_user_file(self, request: UserFileRequest) -> UserFileOutcome:
        """Re-scope: the document's ACL changes (its version goes up) and the metadata sync
        copies it to the chunks; vectors and chunk rows stay as they are."""
        tenant = current_tenant()
        async with tenant_connection(tenant) as (_, raw):
            info = await db.get_file(raw, request.file_id, lock=True)
            if info is None:
                raise NotFoundError(f"user file {request.file_id} does not exist")
            await db.set_project(raw, info.id, request.project)
            indexed = info.status is FileStatus.READY
            if indexed:
                acl = acl_for(info.owner, request.project)
                await set_metadata(raw, document_id(info.id), acl=acl)
        if indexed:
            await metadata_ops.start_sync(self.client, tenant)
        where = f"project {request.project}" if request.project else "no project"
        return UserFileOutcome(file_id=info.id, status=info.status, detail=f"moved to {where}")

    @activity.defn(name="delete_user_file")
    async def delete_user_file(self, request: UserFileRequest) -> UserFileOutcome:
        """The document (its chunks and vectors cascade), the row, then the blob if no other
        upload has the same bytes. Idempotent: a retry finds less to delete."""
        tenant = current_tenant()
        async with tenant_connection(tenant) as (_, raw):
            info = await db.get_file(raw, request.file_id, lock=True)
            await raw.execute("DELETE FROM document WHERE id = $1", document_id(request.file_id))
            unreferenced = await db.delete_file(raw, request.file_id)
        if info is not None and info.sha256 and unreferenced:
            await asyncio.to_thread(filestore.delete_blob, tenant, info.sha256)
        return UserFileOutcome(
            file_id=request.file_id, status="deleted" if info else "gone", detail=""
        )


def _read_document(tenant: str, info: UserFileInfo) -> Document:
    limit = get_settings().user_file_max_bytes
    if info.sha256 is None:
        raise UnreadableFile("no bytes were stored for this upload")
    raw = filestore.read_blob(tenant, info.sha256, limit)
    if raw is None:
        raise UnreadableFile("the uploaded bytes are missing from the file store")
    return to_document(info, raw, limit)


async def _fail(tenant: str, file_id: int, reason: str) -> UserFileOutcome:
    """A file no retry can index: failed with its reason (only if still processing)."""
    async with tenant_connection(tenant) as (_, raw):
        locked = await db.get_file(raw, file_id, lock=True)
        if locked is not None and locked.status is FileStatus.PROCESSING:
            await db.finish(raw, file_id, FileStatus.FAILED, error=reason)
    log.info("user file failed", id=file_id, reason=reason)
    return UserFileOutcome(file_id=file_id, status=FileStatus.FAILED, detail=reason)
