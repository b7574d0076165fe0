"""The `sluice` command as a user runs it: a real process against the real servers."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support import fetchval, only_line, running_workers


async def sluice(
    env: WorkflowEnvironment, tenant: str, *args: str
) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "DEFAULT_TENANT": tenant,
        "COLUMNS": "200",
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "sluice.cli.main", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
    )


async def test_connector_lifecycle_from_the_command_line(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    async with running_workers(dev_env.client):
        added = await sluice(
            dev_env,
            tenant,
            "connector",
            "add",
            "--source",
            "synthetic",
            "--name",
            "cli",
            "-c",
            "count=40",
            "-c",
            "size_bytes=800",
            "--wait",
            "--timeout",
            "120",
        )
        assert added.returncode == 0, added.stderr
        assert "added cc-pair 1" in added.stdout
        assert "last attempt: success" in added.stdout

        listed = await sluice(dev_env, tenant, "connector", "list")
        assert "synthetic" in listed.stdout and "active" in listed.stdout

        status = await sluice(dev_env, tenant, "connector", "status", "1", "--json")
        progress = json.loads(status.stdout)
        assert progress["last_attempt_status"] == "success"
        assert progress["last_attempt_counts"]["docs_indexed"] == 40

        found = await sluice(dev_env, tenant, "search", "synthetic document", "-k", "3")
        assert found.returncode == 0 and "syn:0:" in found.stdout

        again = await sluice(dev_env, tenant, "connector", "index-now", "1", "--wait")
        assert again.returncode == 0, again.stderr
        assert "2 attempts" in again.stdout and "40 unchanged" in again.stdout

        assert (await sluice(dev_env, tenant, "connector", "pause", "1")).returncode == 0
        deleted = await sluice(dev_env, tenant, "connector", "delete", "1", "--yes")
        assert deleted.returncode == 0, deleted.stderr
        assert "40 documents removed" in deleted.stdout
    assert await fetchval(tenant, "SELECT count(*) FROM document") == 0
    assert await fetchval(tenant, "SELECT count(*) FROM connector_credential_pair") == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "dropbox", "--name", "x"], "unknown source 'dropbox'"),
        (["--source", "synthetic", "--name", "x", "-c", "count=-1"], "field 'count'"),
        (["--source", "filesystem", "--name", "x", "-c", "path=/nope"], "path"),
        (["--source", "synthetic", "--name", "x", "--refresh", "-5"], "refresh_interval_seconds"),
        (["--source", "synthetic", "--name", "x", "-c", "count"], "expected key=value"),
    ],
)
async def test_bad_connector_input_is_one_clear_line_and_creates_nothing(
    dev_env: WorkflowEnvironment, tenant: str, args: list[str], message: str
) -> None:
    done = await sluice(dev_env, tenant, "connector", "add", *args)
    assert done.returncode == 2
    line = only_line(done.stderr)
    assert line.startswith("error: "), done.stderr
    assert message in line
    assert await fetchval(tenant, "SELECT count(*) FROM connector") == 0
