"""``sluice files``, ``sluice export`` and ``sluice sandbox run`` as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support import running_workers
from tests.test_cli import sluice


async def test_files_export_and_sandbox_from_the_command_line(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sluice.config import get_settings

    monkeypatch.setenv("SLUICE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    note = tmp_path / "ideas.md"
    note.write_text("# Ideas\n\nA heron-shaped kite for the spring festival.")
    try:
        async with running_workers(dev_env.client):
            up = await sluice(dev_env, tenant, "files", "upload", str(note), "--user", "ann")
            assert up.returncode == 0, up.stderr
            assert "ready, 1 chunks" in up.stdout
            found = await sluice(dev_env, tenant, "files", "search", "heron kite", "-u", "ann")
            assert "Ideas" in found.stdout, found.stderr

            out = tmp_path / "documents.csv"
            done = await sluice(dev_env, tenant, "export", "documents", "--out", str(out))
            assert done.returncode == 0, done.stderr
            assert "1 rows" in done.stdout
            assert out.read_text().splitlines()[1].startswith("user_file:")

            slow = await sluice(
                dev_env, tenant, "sandbox", "run", "--timeout", "1", "--", "sleep", "30"
            )
            assert slow.returncode == 124 and "timed_out" in slow.stderr
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
