"""How long a permission sync takes: this repo's docs/ folder (or ``--path``), indexed by a
filesystem connector, then synced with nothing changed and with every file's ACL changed.

Copies the folder (``--copies N`` times, to see how it scales) into a temporary folder,
indexes it, then times ``sluice connector sync-permissions --wait`` twice: once as is
(groups stored, ACLs listed and compared, nothing to write) and once after ``chmod o-r``
on every file (every ACL written in batches, then the metadata sync copies them to the
chunks). Starts the real stack (or uses DATABASE_URL / TEMPORAL_ADDRESS); workers run in
this process.

    uv run python -m bench.permission_sync [--path docs] [--copies 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any


def _copy(source: Path, target: Path, copies: int) -> int:
    for i in range(copies):
        shutil.copytree(source, target / f"copy{i}")
    return sum(1 for p in target.rglob("*") if p.is_file())


async def _timed_sync(client: Any, tenant: str, cc: int) -> dict[str, Any]:
    from sluice import connector_ops

    started = time.monotonic()
    result = await connector_ops.sync_permissions(client, tenant, cc, wait=True, timeout=3600)
    assert result is not None
    return {
        "wall_seconds": round(time.monotonic() - started, 2),
        "workflow_seconds": round(result.seconds, 2),
        "listed": result.listed,
        "changed": result.changed,
        "written": result.written,
        "batches": result.batches,
        "groups": result.groups.groups,
    }


async def measure(source: Path, copies: int, folder: Path) -> dict[str, Any]:
    from sluice import connector_ops
    from sluice.db.engine import dispose_engines
    from sluice.db.migrate import migrate_tenant
    from sluice.temporal.client import connect
    from tests.support import running_workers

    files = _copy(source, folder, copies)
    client = await connect()
    tenant = "perms_" + uuid.uuid4().hex[:8]
    await migrate_tenant(tenant)
    async with running_workers(client):
        pair = await connector_ops.add_connector(
            client, tenant, name="docs", source="filesystem", config={"path": str(folder)}
        )
        await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=3600)
        unchanged = await _timed_sync(client, tenant, pair.id)
        for path in folder.rglob("*"):
            if path.is_file():
                path.chmod(path.stat().st_mode & ~0o004)
        changed = await _timed_sync(client, tenant, pair.id)
    await dispose_engines()
    return {"files": files, "nothing_changed": unchanged, "every_acl_changed": changed}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--path", type=Path, default=Path(__file__).parent.parent / "docs")
    parser.add_argument("--copies", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "corpus"
        folder.mkdir()

        def go() -> dict[str, Any]:
            return asyncio.run(measure(args.path, args.copies, folder))

        if os.environ.get("DATABASE_URL") and os.environ.get("TEMPORAL_ADDRESS"):
            result = go()
        else:
            from sluice.config import get_settings
            from sluice.devstack import dev_stack

            ports: dict[str, int | None] = {"postgres": None, "redis": None, "temporal": None}
            (Path(tmp) / "stack").mkdir()
            with dev_stack(Path(tmp) / "stack", ports=ports, ui=False) as stack:
                os.environ.update(stack.env)
                get_settings.cache_clear()
                result = go()
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
