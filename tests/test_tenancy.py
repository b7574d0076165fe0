"""Tenancy: bad tenant IDs never reach SQL, and tenants stay apart through Temporal.

Activities learn their tenant only from the Temporal header the interceptor carries
(client → workflow → activity); the isolation test runs two tenants' connectors at
once on one worker and checks each schema holds exactly its own documents.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from sluice import connector_ops
from sluice.config import get_settings
from sluice.db.migrate import migrate_tenant
from sluice.db.session import tenant_connection, tenant_session
from sluice.devstack import free_port
from sluice.errors import NON_RETRYABLE_ERROR_TYPES, InvalidTenantError
from sluice.index.search import search_chunks
from sluice.temporal.workflow_ids import connector_workflow_id
from sluice.tenancy import quoted_schema, validate_tenant_id
from tests.support import FAST, fetch, fetchval, only_line, running_workers

INVALID_IDS = [
    "Acme",
    "a-b",
    "",
    "x" * 64,
    "x; DROP SCHEMA public",
    'x"; DROP SCHEMA public; --',
    "tenant one",
    "café",
    "public",
    "information_schema",
    "pg_catalog",
    "pg_toast",
    None,
    42,
    b"acme",
]


@pytest.mark.parametrize("bad", INVALID_IDS, ids=repr)
def test_invalid_tenant_ids_are_refused(bad: object) -> None:
    with pytest.raises(InvalidTenantError) as caught:
        validate_tenant_id(bad)
    message = str(caught.value)
    assert repr(bad) in message
    assert "tenant_id" in message
    with pytest.raises(InvalidTenantError):
        quoted_schema(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("good", ["default", "acme", "t_0123456789", "a", "x" * 63, "_x"])
def test_valid_tenant_ids_are_their_own_schema(good: str) -> None:
    assert validate_tenant_id(good) == good
    assert quoted_schema(good) == f'"{good}"'


def test_invalid_tenant_is_not_retried_by_temporal() -> None:
    assert "InvalidTenantError" in NON_RETRYABLE_ERROR_TYPES


@pytest.fixture
def unreachable_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """DATABASE_URL points at a closed port: any attempt to connect fails loudly."""
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.mark.parametrize("bad", ["bad-id", "x; DROP SCHEMA public", "pg_catalog", ""])
async def test_bad_tenant_fails_before_any_connection(unreachable_database: None, bad: str) -> None:
    # A valid tenant really does try to connect (and cannot: nothing listens there)...
    with pytest.raises(OSError):
        async with tenant_session("acme"):
            pass
    # ...while an invalid one is refused before the engine is even asked for a connection.
    with pytest.raises(InvalidTenantError):
        async with tenant_session(bad):
            pass
    with pytest.raises(InvalidTenantError):
        async with tenant_connection(bad):
            pass
    with pytest.raises(InvalidTenantError):
        await migrate_tenant(bad)


@pytest.mark.parametrize(
    "args",
    [
        ["connector", "list", "--tenant", "Bad-Id"],
        ["search", "anything", "--tenant", "x; DROP SCHEMA public"],
        ["migrate", "--tenant", "pg_catalog"],
    ],
    ids=["connector-list", "search", "migrate"],
)
def test_cli_rejects_bad_tenant_with_one_line(args: list[str], tmp_path: Path) -> None:
    # A closed-port database: the command must stop before trying to use it.
    env = {**os.environ, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"}
    result = subprocess.run(
        [sys.executable, "-m", "sluice.cli.main", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result
    line = only_line(result.stderr)
    assert line.startswith("error: invalid tenant_id "), line
    assert repr(args[-1]) in line
    assert "Traceback" not in result.stderr + result.stdout


async def _documents(tenant_id: str) -> list[str]:
    return [r["id"] for r in await fetch(tenant_id, "SELECT id FROM document ORDER BY id")]


async def test_two_tenants_stay_isolated_through_temporal(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    other = "t_" + uuid.uuid4().hex[:10]
    await migrate_tenant(other)
    plan = {tenant: (101, 23), other: (202, 31)}  # tenant -> (seed, count)

    async with running_workers(client):
        pairs = {
            t: await connector_ops.add_connector(
                client,
                t,
                name="same-name-in-both",
                source="synthetic",
                config={"count": count, "size_bytes": 600, "seed": seed},
                tuning=FAST,
            )
            for t, (seed, count) in plan.items()
        }
        # Same cc-pair ID in both schemas; the workflow IDs still differ by tenant.
        assert pairs[tenant].id == pairs[other].id == 1
        assert connector_workflow_id(tenant, 1) != connector_workflow_id(other, 1)
        finals = await asyncio.gather(
            *(connector_ops.wait_for_attempts(client, t, 1, 1, timeout=90) for t in plan)
        )

    for t, final in zip(plan, finals, strict=True):
        assert final.tenant_id == t
        assert final.last_attempt_status == "success", final

    for t, (seed, count) in plan.items():
        expected = sorted(f"syn:{seed}:{i}" for i in range(count))
        assert await _documents(t) == expected, t
        assert await fetchval(t, "SELECT count(*) FROM document") == count
        foreign = await fetchval(
            t,
            "SELECT count(*) FROM chunk WHERE document_id NOT LIKE $1",
            f"syn:{seed}:%",
        )
        assert foreign == 0, f"{t} holds another tenant's chunks"
        assert await fetchval(t, "SELECT count(DISTINCT document_id) FROM chunk") == count
        pairs_held = await fetch(
            t, "SELECT DISTINCT cc_pair_id FROM document_by_connector_credential_pair"
        )
        assert [r["cc_pair_id"] for r in pairs_held] == [1]
        attempts = await fetch(t, "SELECT status, docs_indexed, workflow_id FROM index_attempt")
        assert len(attempts) == 1, attempts
        assert attempts[0]["status"] == "success"
        assert attempts[0]["docs_indexed"] == count
        assert attempts[0]["workflow_id"] == connector_workflow_id(t, 1)
        assert await fetchval(t, "SELECT count(*) FROM staged_batch") == 0
        # Search in one tenant never surfaces the other's documents.
        hits = await search_chunks(t, "index search query document", limit=20)
        assert hits, t
        assert all(h.document_id.startswith(f"syn:{seed}:") for h in hits), hits

    # Nothing landed in the shared schema: no tenant table leaked into `public`.
    leaked = await fetchval(
        tenant,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' "
        "AND table_name IN ('document', 'chunk', 'index_attempt', 'staged_batch')",
    )
    assert leaked == 0
