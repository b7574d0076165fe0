"""The ``user_file`` and ``project_member`` rows (migration 0009), on a raw tenant
connection: the caller owns the transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sluice.userfiles.models import FileStatus, UserFileInfo

_COLUMNS = (
    "id, owner, project, name, size_bytes, sha256, status, error, chunk_count, created_at, "
    "processed_at"
)


async def insert_file(
    raw: Any,
    *,
    owner: str,
    project: str | None,
    name: str,
    size: int,
    sha256: str | None,
    error: str | None = None,
) -> UserFileInfo:
    """A new upload: ``processing``, or ``failed`` at once when ``error`` is given."""
    status = FileStatus.FAILED if error else FileStatus.PROCESSING
    row = await raw.fetchrow(
        f"""
        INSERT INTO user_file (owner, project, name, size_bytes, sha256, status, error,
                               processed_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $7::text IS NULL THEN NULL ELSE now() END)
        RETURNING {_COLUMNS}
        """,
        owner,
        project,
        name,
        size,
        sha256,
        status.value,
        error,
    )
    return UserFileInfo(**dict(row))


async def get_file(raw: Any, file_id: int, *, lock: bool = False) -> UserFileInfo | None:
    """One file, or None; ``lock`` takes its row lock (processing, moves and deletion of
    one file are serialised on it)."""
    row = await raw.fetchrow(
        f"SELECT {_COLUMNS} FROM user_file WHERE id = $1" + (" FOR UPDATE" if lock else ""),
        file_id,
    )
    return None if row is None else UserFileInfo(**dict(row))


async def list_files(raw: Any, owner: str | None = None) -> list[UserFileInfo]:
    rows = await raw.fetch(
        f"SELECT {_COLUMNS} FROM user_file WHERE $1::text IS NULL OR owner = $1 ORDER BY id",
        owner,
    )
    return [UserFileInfo(**dict(r)) for r in rows]


async def finish(
    raw: Any, file_id: int, status: FileStatus, *, chunks: int = 0, error: str | None = None
) -> None:
    await raw.execute(
        """
        UPDATE user_file SET status = $2, chunk_count = $3, error = $4, processed_at = now(),
               updated_at = now()
        WHERE id = $1
        """,
        file_id,
        status.value,
        chunks,
        error,
    )


async def set_project(raw: Any, file_id: int, project: str | None) -> None:
    await raw.execute(
        "UPDATE user_file SET project = $2, updated_at = now() WHERE id = $1", file_id, project
    )


async def delete_file(raw: Any, file_id: int) -> bool:
    """Delete the row; True if its blob is now unreferenced (the caller removes it)."""
    sha = await raw.fetchval("DELETE FROM user_file WHERE id = $1 RETURNING sha256", file_id)
    if sha is None:
        return False
    others = await raw.fetchval("SELECT count(*) FROM user_file WHERE sha256 = $1", sha)
    return bool(others == 0)


async def stuck_processing(raw: Any, created_before: datetime, limit: int) -> list[int]:
    rows = await raw.fetch(
        """
        SELECT id FROM user_file WHERE status = 'processing' AND created_at < $1
        ORDER BY id LIMIT $2
        """,
        created_before,
        limit,
    )
    return [r["id"] for r in rows]


async def add_member(raw: Any, project: str, user: str) -> bool:
    status = await raw.execute(
        "INSERT INTO project_member (project, user_name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        project,
        user,
    )
    return bool(status.endswith(" 1"))


async def remove_member(raw: Any, project: str, user: str) -> bool:
    status = await raw.execute(
        "DELETE FROM project_member WHERE project = $1 AND user_name = $2", project, user
    )
    return bool(status.endswith(" 1"))


async def principals(raw: Any, user: str) -> list[str]:
    """What ``user`` may read as: ``user:<U>`` and ``project:<P>`` per membership (pass
    to ``search(acl=...)``)."""
    rows = await raw.fetch(
        "SELECT project FROM project_member WHERE user_name = $1 ORDER BY project", user
    )
    return [f"user:{user}", *(f"project:{r['project']}" for r in rows)]
