"""Live settings: a running connector's interval and config change through a workflow
Update with a validator; bad values are refused with the field named and change nothing.
"""

from __future__ import annotations

import pytest
from temporalio.testing import WorkflowEnvironment

from sluice import connector_ops
from sluice.ccpairs import get_cc_pair
from sluice.errors import ConfigurationError, NotFoundError
from sluice.indexing.models import ConnectorProgress
from tests.support import FAST, eventually, fetchval, only_line, running_workers
from tests.test_cli import sluice


async def test_a_new_interval_moves_the_next_run_without_a_restart(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    async with running_workers(client):
        pair = await connector_ops.add_connector(
            client,
            tenant,
            name="live",
            source="synthetic",
            config={"count": 20, "size_bytes": 300},
            refresh_interval_seconds=6 * 3600,
            tuning=FAST,
        )
        await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=60)

        async def resting() -> ConnectorProgress | None:
            # The run that closed the attempt continues-as-new; the next one sets the timer.
            now = await connector_ops.progress(client, tenant, pair.id)
            return now if now.next_run_in_seconds is not None else None

        first = await eventually(resting, timeout=60)
        assert first.next_run_in_seconds == pytest.approx(6 * 3600, abs=60)
        run_before = (await connector_ops.handle(client, tenant, pair.id).describe()).run_id

        applied = await connector_ops.update_connector(
            client, tenant, pair.id, refresh_interval_seconds=3600
        )
        assert applied.refresh_interval_seconds == 3600
        assert applied.next_run_in_seconds == pytest.approx(3600, abs=60)
        now = await connector_ops.progress(client, tenant, pair.id)
        assert now.refresh_interval_seconds == 3600
        assert now.next_run_in_seconds == pytest.approx(3600, abs=60)
        # The same workflow run took it: no restart, no new attempt.
        assert (await connector_ops.handle(client, tenant, pair.id).describe()).run_id == (
            run_before
        )
        assert now.attempts_started == 1

        # A config change is stored (validated against the source) and used by the next run.
        await connector_ops.update_connector(client, tenant, pair.id, config={"count": 30})
        await connector_ops.index_now(client, tenant, pair.id)
        await connector_ops.wait_for_attempts(client, tenant, pair.id, 2, timeout=60)
    stored = await get_cc_pair(tenant, pair.id)
    assert stored.refresh_interval_seconds == 3600
    assert stored.config["count"] == 30
    assert await fetchval(tenant, "SELECT count(*) FROM document") == 30


async def test_bad_settings_are_refused_with_the_field_named_and_change_nothing(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: object
) -> None:
    client = dev_env.client
    async with running_workers(client):
        pair = await connector_ops.add_connector(
            client,
            tenant,
            name="strict",
            source="synthetic",
            config={"count": 5},
            refresh_interval_seconds=600,
            tuning=FAST,
        )
        await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=60)
        cases = [
            ({"refresh_interval_seconds": -5}, "refresh_interval_seconds"),
            ({"config": {"colour": "blue"}}, "'colour'"),
            ({"config": {"count": -1}}, "'count'"),
            ({}, "nothing to change"),
        ]
        for change, expected in cases:
            with pytest.raises(ConfigurationError, match=expected):
                await connector_ops.update_connector(client, tenant, pair.id, **change)  # type: ignore[arg-type]
        with pytest.raises(NotFoundError):
            await connector_ops.update_connector(client, tenant, 999, refresh_interval_seconds=60)
        progress = await connector_ops.progress(client, tenant, pair.id)
    assert progress.refresh_interval_seconds == 600
    stored = await get_cc_pair(tenant, pair.id)
    assert stored.refresh_interval_seconds == 600
    assert stored.config["count"] == 5


async def test_sluice_connector_update_from_the_command_line(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    async with running_workers(dev_env.client):
        pair = await connector_ops.add_connector(
            dev_env.client,
            tenant,
            name="cli-live",
            source="synthetic",
            config={"count": 5},
            refresh_interval_seconds=600,
            tuning=FAST,
        )
        await connector_ops.wait_for_attempts(dev_env.client, tenant, pair.id, 1, timeout=60)
        good = await sluice(dev_env, tenant, "connector", "update", str(pair.id), "--refresh", "60")
        assert good.returncode == 0, good.stderr
        assert f"cc-pair {pair.id} updated: refresh every 60 s" in good.stdout
        bad_args = [
            (["--refresh", "-1"], "--refresh -1"),
            (["-c", "colour=blue"], "'colour'"),
            ([], "nothing to change"),
        ]
        for args, expected in bad_args:
            bad = await sluice(dev_env, tenant, "connector", "update", str(pair.id), *args)
            assert bad.returncode == 2, (args, bad.stdout, bad.stderr)
            assert expected in only_line(bad.stderr)
    assert (await get_cc_pair(tenant, pair.id)).refresh_interval_seconds == 60
