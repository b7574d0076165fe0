"""Permission sync, external groups and permission-aware search, on the dev server.

A folder indexed by a filesystem connector whose users and groups come from passwd and
group files in the test's folder (the system's groups are not ours to change; the
connector's ``passwd_file``/``group_file`` exist for folders from other machines too).
Owners and groups are set with ``chown`` to numeric IDs, which needs root (as here).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from schedules.models import SweepInput, SweepResult
from sluice import connector_ops
from sluice.index.search import principals_for, search
from sluice.queues import TaskQueue
from tests.support import FAST, eventually, fetch, running_workers
from workflows.sweep import SweepWorkflow

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")

QUERY = "quokka habitat notes"
USERS = ("alice", "bob", "carol", "dave")  # dave is in no file: an unknown user
PASSWD = "alice:x:5001:6001::/home/alice:/bin/sh\nbob:x:5002:6002::/:/bin/sh\n" + (
    "carol:x:5003:6003::/:/bin/sh\n"
)
GROUPS = {
    "eng": (6001, ""),
    "ops": (6002, "bob"),
    "carol": (6003, ""),
    "readers": (6004, "alice,carol"),
}
FILES = {  # name: (uid, gid, mode)
    "public.md": (5001, 6001, 0o644),
    "eng.md": (5001, 6001, 0o640),
    "ops.md": (5002, 6002, 0o640),
    "readers.md": (5003, 6004, 0o640),
    "private.md": (5003, 6003, 0o600),
}


def write_groups(path: Path, groups: dict[str, tuple[int, str]]) -> None:
    path.write_text(
        "".join(f"{name}:x:{gid}:{members}\n" for name, (gid, members) in groups.items())
    )


def make_folder(root: Path) -> Path:
    docs = root / "docs"
    docs.mkdir()
    for name, (uid, gid, mode) in FILES.items():
        file = docs / name
        file.write_text(f"# {name}\n\nThe {name[:-3]} quokka habitat notes.\n")
        os.chown(file, uid, gid)
        file.chmod(mode)
    (root / "passwd").write_text(PASSWD)
    write_groups(root / "group", GROUPS)
    return docs


async def visible(tenant: str) -> dict[str, set[str]]:
    """What each user finds: file names, through user, group and public grants."""
    out = {}
    for user in USERS:
        hits = await search(tenant, QUERY, k=20, as_user=user)
        out[user] = {h.document_id.rsplit("/", 1)[1] for h in hits}
    return out


async def vector_versions(tenant: str) -> list[tuple[str, int, str]]:
    """Each vector row with its xmin: a row rewritten (re-embedded) gets a new one."""
    rows = await fetch(tenant, "SELECT document_id, chunk_id, xmin::text FROM chunk_vector_1")
    return sorted((r[0], r[1], r[2]) for r in rows)


async def test_permission_changes_on_disk_reach_search_without_reembedding(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path
) -> None:
    client = dev_env.client
    docs = make_folder(tmp_path)
    config = {
        "path": str(docs),
        "passwd_file": str(tmp_path / "passwd"),
        "group_file": str(tmp_path / "group"),
    }
    async with running_workers(client):
        pair = await connector_ops.add_connector(
            client, tenant, name="perms", source="filesystem", config=config, tuning=FAST
        )
        await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=60)
        first = await connector_ops.sync_permissions(client, tenant, pair.id, wait=True)
        assert first is not None and (first.listed, first.held, first.changed) == (5, 5, 0)
        assert first.groups.synced and first.groups.groups == 4
        before = await visible(tenant)
        assert before == {
            "alice": {"public.md", "eng.md", "readers.md"},  # owner, primary group, listed
            "bob": {"public.md", "ops.md"},
            "carol": {"public.md", "readers.md", "private.md"},
            "dave": {"public.md"},  # unknown: public only, not an error
        }
        vectors = await vector_versions(tenant)

        # readers.md becomes unreadable to its group: its members lose it, nobody else.
        (docs / "readers.md").chmod(0o600)
        synced = await connector_ops.sync_permissions(client, tenant, pair.id, wait=True)
        assert synced is not None and (synced.changed, synced.written) == (1, 1)
        after = await visible(tenant)
        assert after == {**before, "alice": {"public.md", "eng.md"}}
        assert await vector_versions(tenant) == vectors  # nothing re-embedded

        # ops.md moves to group eng: alice (eng by primary group) may read it now.
        os.chown(docs / "ops.md", 5002, 6001)
        # bob joins eng in the group file: membership alone, no document changes.
        write_groups(tmp_path / "group", {**GROUPS, "eng": (6001, "bob")})
        synced = await connector_ops.sync_permissions(client, tenant, pair.id, wait=True)
        assert synced is not None and (synced.changed, synced.written) == (1, 1)
        assert synced.groups.memberships == first.groups.memberships + 1
        assert await visible(tenant) == {
            **after,
            "alice": {"public.md", "eng.md", "ops.md"},
            "bob": {"public.md", "eng.md", "ops.md"},
        }
        assert await vector_versions(tenant) == vectors
        progress = await connector_ops.progress(client, tenant, pair.id)
        assert progress.last_permission_sync is not None
        assert progress.last_permission_sync.written == 1


async def test_principals_come_from_the_synced_groups(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path
) -> None:
    client = dev_env.client
    docs = make_folder(tmp_path)
    config = {"path": str(docs), "group_file": str(tmp_path / "group")}
    config["passwd_file"] = str(tmp_path / "passwd")
    async with running_workers(client):
        pair = await connector_ops.add_connector(
            client, tenant, name="groups", source="filesystem", config=config, tuning=FAST
        )
        assert await principals_for(tenant, "alice") == ["user:alice", "public"]  # not synced
        await connector_ops.sync_permissions(client, tenant, pair.id, wait=True)
        # Asked again the moment the first ends (the signal may land in the activation that
        # resolves the child): the request is kept for the next run, not lost.
        again = await connector_ops.sync_permissions(client, tenant, pair.id, wait=True, timeout=60)
        assert again is not None and again.changed == 0
    assert await principals_for(tenant, "alice") == [
        "user:alice",
        "group:eng",
        "group:readers",
        "public",
    ]
    assert await principals_for(tenant, "dave") == ["user:dave", "public"]


async def test_the_permission_sync_check_asks_pairs_that_are_due(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    async with running_workers(client):
        pair = await connector_ops.add_connector(
            client, tenant, name="synthetic", source="synthetic", config={"count": 8}, tuning=FAST
        )
        await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=60)

        async def sweep() -> SweepResult:
            result: SweepResult = await client.execute_workflow(
                SweepWorkflow.run,
                SweepInput(tenant_id=tenant, job="permission-sync-check"),
                id=f"test-sweep/{uuid.uuid4().hex[:8]}",
                task_queue=TaskQueue.PRIMARY.value,
            )
            return result

        swept = await sweep()
        assert (swept.found, swept.acted) == (1, 1)  # never synced: due at once

        async def synced() -> bool:
            progress = await connector_ops.progress(client, tenant, pair.id)
            return progress.last_permission_sync is not None

        await eventually(synced, timeout=60)
        progress = await connector_ops.progress(client, tenant, pair.id)
        result = progress.last_permission_sync
        assert result is not None
        # A public source: every document already public, and no groups to store.
        assert (result.listed, result.changed, result.groups.synced) == (8, 0, False)
        assert (await sweep()).found == 0  # synced just now: due again in 30 minutes
