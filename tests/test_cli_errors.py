"""Every `sluice connector` command with a bad target: one `error:` line naming what was
not found or not reachable, exit code 2, no traceback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from temporalio.testing import WorkflowEnvironment

from sluice import connector_ops
from sluice.ccpairs import create_cc_pair, list_cc_pairs
from sluice.devstack import free_port
from tests.support import FAST, only_line, running_workers

COMMANDS = [
    ["connector", "status", "{id}"],
    ["connector", "pause", "{id}"],
    ["connector", "resume", "{id}"],
    ["connector", "cancel", "{id}"],
    ["connector", "index-now", "{id}"],
    ["connector", "retry-failed", "{id}"],
    ["connector", "update", "{id}", "--refresh", "60"],
    ["connector", "delete", "{id}", "-y"],
    ["connector", "delete", "{id}"],  # checked before it asks
]


async def cli(address: str, tenant: str, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "TEMPORAL_ADDRESS": address, "DEFAULT_TENANT": tenant}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "sluice.cli.main", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def expect_one_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, (result.args, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    line = only_line(result.stderr)
    assert line.startswith("error: "), line
    for needle in needles:
        assert needle in line, (result.args, line)
    return line


def address(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[1])
async def test_a_nonexistent_cc_pair(
    dev_env: WorkflowEnvironment, tenant: str, command: list[str]
) -> None:
    args = [part.format(id=999) for part in command]
    expect_one_line(await cli(address(dev_env), tenant, *args), "cc-pair 999")


async def test_an_unknown_tenant_for_every_command(dev_env: WorkflowEnvironment) -> None:
    for command in [*COMMANDS, ["connector", "list"]]:
        args = [part.format(id=1) for part in command]
        expect_one_line(await cli(address(dev_env), "nosuchtenant", *args), "tenant")


async def test_temporal_unreachable(dev_env: WorkflowEnvironment, tenant: str) -> None:
    pair = await create_cc_pair(tenant, name="offline", source="synthetic", config={"count": 1})
    nowhere = f"127.0.0.1:{free_port()}"
    for command in (c for c in COMMANDS if c[1] != "delete"):
        args = [part.format(id=pair.id) for part in command]
        expect_one_line(await cli(nowhere, tenant, *args), "Temporal")


async def test_a_connector_whose_workflow_was_terminated(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    async with running_workers(client):
        pair = await connector_ops.add_connector(
            client, tenant, name="gone", source="synthetic", config={"count": 5}, tuning=FAST
        )
        await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=60)
        idle = await cli(address(dev_env), tenant, "connector", "cancel", str(pair.id))
        assert idle.returncode == 0, idle.stderr
        assert "nothing to cancel" in idle.stdout
        await connector_ops.handle(client, tenant, pair.id).terminate(reason="test")
        for verb in ("status", "pause", "resume", "cancel"):
            line = expect_one_line(
                await cli(address(dev_env), tenant, "connector", verb, str(pair.id)),
                f"cc-pair {pair.id}",
            )
            assert "index-now" in line  # says how to bring it back
        update = await cli(
            address(dev_env), tenant, "connector", "update", str(pair.id), "--refresh", "60"
        )
        assert "index-now" in expect_one_line(update, f"cc-pair {pair.id}")
        # ... and index-now does: a new workflow, whose first attempt --wait follows
        again = await cli(
            address(dev_env), tenant, "connector", "index-now", str(pair.id), "--wait"
        )
        assert again.returncode == 0, again.stderr
        assert "last attempt: success" in again.stdout, again.stdout
        await connector_ops.handle(client, tenant, pair.id).terminate(reason="test done")


async def test_a_duplicate_connector_name_is_refused(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    await create_cc_pair(tenant, name="handbook", source="synthetic", config={"count": 1})
    args = ["connector", "add", "-s", "synthetic", "-n", "handbook", "-c", "count=2"]
    expect_one_line(await cli(address(dev_env), tenant, *args), "name 'handbook' is taken")
    pairs = await list_cc_pairs(tenant)
    assert [p.name for p in pairs] == ["handbook"]


async def test_no_worker_running(dev_env: WorkflowEnvironment, tenant: str) -> None:
    client = dev_env.client
    async with running_workers(client):
        pair = await connector_ops.add_connector(
            client, tenant, name="unattended", source="synthetic", config={"count": 3}
        )
        await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=60)
    # The workers are gone: a query has nobody to answer it.
    result = await cli(address(dev_env), tenant, "connector", "status", str(pair.id))
    expect_one_line(result, "worker")
    # nor an Update, nor the query --wait starts with: each says so instead of hanging
    for args in (
        ["update", str(pair.id), "--refresh", "60"],
        ["index-now", str(pair.id), "--wait"],
        ["retry-failed", str(pair.id), "--wait"],
    ):
        expect_one_line(await cli(address(dev_env), tenant, "connector", *args), "worker")
    await connector_ops.handle(client, tenant, pair.id).terminate(reason="test done")


async def test_an_unknown_tenant_is_named_by_search_and_bulk_commands(
    dev_env: WorkflowEnvironment,
) -> None:
    """Search reads through search_path (PostgreSQL names only the table) and a bulk
    operation would wait for ever on a workflow retrying: both still name the tenant."""
    for args in (
        ["search", "anything"],
        ["connector", "pause", "--all"],
        ["connector", "index-now", "--source", "synthetic"],
    ):
        expect_one_line(
            await cli(address(dev_env), "nosuchtenant", *args),
            "tenant 'nosuchtenant' does not exist",
        )


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["connector", "status", "abc"], "'cc_pair_id'"),
        (["connector", "status"], "'cc_pair_id'"),
        (["search", "x", "-k", "many"], "'--limit'"),
        (["connector", "list", "--colour"], "--colour"),
        (["no-such-command"], "'no-such-command'"),
    ],
    ids=["not-an-integer", "missing-argument", "bad-option-value", "unknown-option", "command"],
)
async def test_usage_errors_are_one_line_naming_the_argument(
    dev_env: WorkflowEnvironment, tenant: str, args: list[str], named: str
) -> None:
    """Typer's boxed usage errors become one ``error:`` line, exit code 2."""
    expect_one_line(await cli(address(dev_env), tenant, *args), named)
