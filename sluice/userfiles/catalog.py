"""User-file rows and project members read and written from the CLI: Postgres only, so
``sluice files list`` and ``files project add-member`` load neither Temporal nor the model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sluice.db.session import tenant_connection
from sluice.errors import ConfigurationError, NotFoundError
from sluice.userfiles import db
from sluice.userfiles.models import UserFileInfo

if TYPE_CHECKING:
    from sluice.index.search import SearchResult


def valid_name(kind: str, value: str) -> str:
    """A user or project name: it becomes an ACL principal, so no ':' ',' or newline."""
    if not value or not value.strip() or any(c in value for c in ":,\n"):
        raise ConfigurationError(f"invalid {kind} name {value!r} (no ':' ',' or newline)")
    return value.strip()


async def get(tenant_id: str, file_id: int) -> UserFileInfo:
    async with tenant_connection(tenant_id) as (_, raw):
        info = await db.get_file(raw, file_id)
    if info is None:
        raise NotFoundError(f"user file {file_id} does not exist")
    return info


async def list_files(tenant_id: str, owner: str | None = None) -> list[UserFileInfo]:
    async with tenant_connection(tenant_id) as (_, raw):
        return await db.list_files(raw, owner)


async def add_member(tenant_id: str, project: str, user: str) -> bool:
    async with tenant_connection(tenant_id) as (_, raw):
        return await db.add_member(raw, valid_name("project", project), valid_name("user", user))


async def remove_member(tenant_id: str, project: str, user: str) -> bool:
    async with tenant_connection(tenant_id) as (_, raw):
        return await db.remove_member(raw, project, user)


async def principals(tenant_id: str, user: str) -> list[str]:
    async with tenant_connection(tenant_id) as (_, raw):
        return await db.principals(raw, valid_name("user", user))


async def search_as(tenant_id: str, user: str, query: str, k: int = 10) -> list[SearchResult]:
    """Search the uploads ``user`` may read: their own and their projects' (the index's
    ACL filter with the user's principals)."""
    from sluice.index.search import search

    acl = await principals(tenant_id, user)
    return await search(tenant_id, query, k=k, source="user_file", acl=acl)
