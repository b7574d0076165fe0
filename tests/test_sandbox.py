"""Sandbox runs on the dev server: time and memory limits, output cap, produced files,
and a cancel that leaves no process behind (checked with ``ps``)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from sluice.config import get_settings
from sluice.sandbox import ops
from sluice.sandbox.models import RunStatus, SandboxRequest
from tests.support import eventually, running_workers

PY = sys.executable


@pytest.fixture
def file_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SLUICE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path / "data"
    monkeypatch.undo()
    get_settings.cache_clear()


def request(tenant: str, *command: str, **limits: Any) -> SandboxRequest:
    return SandboxRequest(
        tenant_id=tenant, run_id=ops.new_run_id(), command=list(command), **limits
    )


def processes_with(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line and "ps -ww" not in line]


async def test_limits_output_cap_and_files(
    dev_env: WorkflowEnvironment, tenant: str, file_store: Path
) -> None:
    client = dev_env.client
    async with running_workers(client):
        slow = await ops.run(
            client,
            request(
                tenant,
                PY,
                "-c",
                "import time; print('started', flush=True); time.sleep(60)",
                timeout_seconds=2,
            ),
        )
        assert slow.status is RunStatus.TIMED_OUT and "time limit of 2 s" in slow.detail
        assert slow.output_tail == "started\n" and slow.seconds < 10

        hungry = await ops.run(
            client,
            request(tenant, PY, "-c", "x = bytearray(2 * 1024**3)", memory_mb=256),
        )
        assert hungry.status is RunStatus.MEMORY_EXCEEDED, hungry
        assert "ran out of memory: its limit is 256 MB" in hungry.detail

        chatty = await ops.run(
            client,
            request(
                tenant,
                PY,
                "-c",
                "for i in range(100000): print(f'line {i}')",
                output_cap_bytes=1000,
            ),
        )
        assert chatty.status is RunStatus.OK and chatty.exit_code == 0
        assert chatty.truncated and chatty.output_bytes > 500_000
        assert len(chatty.output_tail) <= 1000 and chatty.output_tail.endswith("line 99999\n")

        maker = await ops.run(
            client, request(tenant, "sh", "-c", "echo hi > out.txt; mkdir d; echo x > d/y.txt")
        )
        assert [(f.path, f.size) for f in maker.files] == [("d/y.txt", 2), ("out.txt", 3)]
        failing = await ops.run(client, request(tenant, "sh", "-c", "exit 3"))
        assert (failing.status, failing.exit_code) == (RunStatus.FAILED, 3)


async def test_cancel_kills_the_whole_process_group(
    dev_env: WorkflowEnvironment, tenant: str, file_store: Path
) -> None:
    client = dev_env.client
    marker = f"sandbox-{uuid.uuid4().hex[:8]}"
    # The command starts a grandchild in the background: both must go.
    child = f"sleep 3000; echo {marker}"
    script = f"import subprocess, time; subprocess.Popen(['sh', '-c', '{child}']); time.sleep(300)"
    req = request(tenant, PY, "-c", script, marker, timeout_seconds=600)
    async with running_workers(client):
        handle = await ops.start(client, req)
        await eventually(lambda: _running(marker, 2), timeout=30)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert processes_with(marker) == []
    stored = await ops.load_result(tenant, req.run_id)
    assert stored.status is RunStatus.CANCELED


async def _running(marker: str, count: int) -> bool:
    return len(processes_with(marker)) >= count
