"""The light read path (sluice/db/raw.py): the same answers with or without SQLAlchemy's pool.

A worker (or this test process) has loaded ``sluice.db.engine`` and borrows from its pool;
a CLI command has not and opens one asyncpg connection of its own. Reads must not tell the
difference: JSON decoded to objects, vectors in pgvector's binary format, the tenant's schema only.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from sluice.ccpairs import create_cc_pair, get_cc_pair, list_cc_pairs
from sluice.db.raw import direct_tenant_connection, raw_tenant_connection
from sluice.errors import InvalidTenantError, NotFoundError


@contextmanager
def without_engine() -> Iterator[None]:
    """As in a CLI process: ``sluice.db.engine`` not loaded (put back afterwards)."""
    engine = sys.modules.pop("sluice.db.engine")
    try:
        yield
        assert "sluice.db.engine" not in sys.modules, "the direct path loaded the engine"
    finally:
        sys.modules["sluice.db.engine"] = engine


async def test_cc_pairs_read_the_same_with_and_without_the_pool(tenant: str) -> None:
    made = await create_cc_pair(
        tenant,
        name="raw",
        source="synthetic",
        config={"count": 3, "size_bytes": 100},
        refresh_interval_seconds=600,
    )
    pooled = (await list_cc_pairs(tenant), await get_cc_pair(tenant, made.id))
    with without_engine():
        direct = (await list_cc_pairs(tenant), await get_cc_pair(tenant, made.id))
        with pytest.raises(NotFoundError, match="cc-pair 999"):
            await get_cc_pair(tenant, 999)
    assert direct == pooled
    assert pooled[0] == [made]
    assert isinstance(direct[1].config, dict) and direct[1].config["count"] == 3


async def test_direct_connection_is_scoped_and_transactional(tenant: str) -> None:
    async with direct_tenant_connection(tenant, vectors=True) as raw:
        path = await raw.fetchval("SHOW search_path")
        assert path.startswith(f'"{tenant}"') or path.startswith(tenant)
        vector = await raw.fetchval("SELECT '[1,2,3]'::vector")  # pgvector's codec, not text
        assert not isinstance(vector, str) and vector.to_list() == [1.0, 2.0, 3.0]
        await raw.fetchval("SELECT $1::vector", np.array([1, 2, 3], dtype=np.float32))
        assert await raw.fetchval("SELECT '{\"a\": [1]}'::jsonb") == {"a": [1]}
        assert await raw.fetchval("SELECT $1::jsonb", '{"b": 2}') == {"b": 2}
    # An error rolls the block back; success commits.
    with pytest.raises(RuntimeError), without_engine():
        async with raw_tenant_connection(tenant) as raw:
            await raw.execute("CREATE TABLE scratch (x int)")
            raise RuntimeError("undo")
    with without_engine():
        async with raw_tenant_connection(tenant) as raw:
            assert await raw.fetchval("SELECT to_regclass('scratch')") is None
            await raw.execute("CREATE TABLE scratch (x int)")
        async with raw_tenant_connection(tenant) as raw:
            assert await raw.fetchval("SELECT to_regclass('scratch')::text") == "scratch"


async def test_an_invalid_tenant_is_refused_before_connecting() -> None:
    with pytest.raises(InvalidTenantError), without_engine():
        async with raw_tenant_connection("Robert'); DROP"):
            pass
