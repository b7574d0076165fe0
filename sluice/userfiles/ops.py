"""Client-side user-file operations: upload, list, move, delete, projects, search as a user.

An upload is stored (blob, then its ``processing`` row) before its workflow starts: if
the CLI dies in between, the ``user-file-processing-check`` sweep starts it later.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy

from sluice import filestore
from sluice.config import get_settings
from sluice.db.session import tenant_connection
from sluice.errors import ConfigurationError
from sluice.queues import TaskQueue
from sluice.temporal import workflow_ids
from sluice.temporal.tenant_context import tenant_scope
from sluice.userfiles import catalog, db
from sluice.userfiles.models import UserFileInfo, UserFileOutcome, UserFileRequest


def _store(tenant_id: str, path: Path, limit: int) -> tuple[str | None, int]:
    """(sha256, size) of the stored copy; (None, size) if the file is over ``limit``."""
    if not path.is_file():
        raise ConfigurationError(f"{path} is not a readable file")
    with open(path, "rb") as handle:
        stored = filestore.put_blob(tenant_id, handle, limit)
    return stored if stored else (None, path.stat().st_size)


async def upload(
    client: Client,
    tenant_id: str,
    path: Path,
    user: str,
    project: str | None = None,
    *,
    start: bool = True,
) -> UserFileInfo:
    """Store the file and start its processing; a file over the size limit is recorded
    as failed at once (its bytes are not kept)."""
    user = catalog.valid_name("user", user)
    project = catalog.valid_name("project", project) if project is not None else None
    limit = get_settings().user_file_max_bytes
    sha256, size = await asyncio.to_thread(_store, tenant_id, path, limit)
    error = None if sha256 else f"file is larger than {limit} bytes; not stored"
    async with tenant_connection(tenant_id) as (_, raw):
        info = await db.insert_file(
            raw,
            owner=user,
            project=project,
            name=path.name,
            size=size,
            sha256=sha256,
            error=error,
        )
    if start and sha256:
        await start_processing(client, tenant_id, info.id)
    return info


async def start_processing(
    client: Client, tenant_id: str, file_id: int
) -> WorkflowHandle[object, UserFileOutcome]:
    """Start the file's workflow, or return the one already running."""
    with tenant_scope(tenant_id):
        return await client.start_workflow(
            workflow_ids.USER_FILE,
            UserFileRequest(tenant_id=tenant_id, file_id=file_id),
            id=workflow_ids.user_file_workflow_id(tenant_id, file_id),
            task_queue=TaskQueue.PRIMARY.value,
            result_type=UserFileOutcome,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"user file {file_id}",
        )


async def wait_processed(
    client: Client, tenant_id: str, file_id: int, timeout: float = 300
) -> UserFileInfo:
    handle = client.get_workflow_handle(
        workflow_ids.user_file_workflow_id(tenant_id, file_id), result_type=UserFileOutcome
    )
    with tenant_scope(tenant_id):
        await asyncio.wait_for(handle.result(), timeout)
    return await catalog.get(tenant_id, file_id)


async def _change(
    client: Client, tenant_id: str, kind: str, request: UserFileRequest
) -> UserFileOutcome:
    """Run a move or a delete workflow and wait for its outcome (seconds)."""
    workflow, wid = {
        "move": (workflow_ids.USER_FILE_MOVE, workflow_ids.user_file_move_workflow_id),
        "delete": (workflow_ids.USER_FILE_DELETE, workflow_ids.user_file_delete_workflow_id),
    }[kind]
    with tenant_scope(tenant_id):
        handle = await client.start_workflow(
            workflow,
            request,
            id=wid(tenant_id, request.file_id),
            task_queue=TaskQueue.PRIMARY.value,
            result_type=UserFileOutcome,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"{kind} user file {request.file_id}",
        )
        return await handle.result()


async def move(
    client: Client, tenant_id: str, file_id: int, project: str | None
) -> UserFileOutcome:
    project = catalog.valid_name("project", project) if project is not None else None
    await catalog.get(tenant_id, file_id)  # a clear "does not exist" before any workflow
    request = UserFileRequest(tenant_id=tenant_id, file_id=file_id, project=project)
    return await _change(client, tenant_id, "move", request)


async def delete(client: Client, tenant_id: str, file_id: int) -> UserFileOutcome:
    request = UserFileRequest(tenant_id=tenant_id, file_id=file_id)
    return await _change(client, tenant_id, "delete", request)
