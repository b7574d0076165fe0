"""Permission sync and external groups: who may read what, without re-indexing anything.

The source lists each document's ACL (cheap: a ``stat`` per file, no content). What
differs from the document rows the pair holds is *staged* (``document_permission_staged``,
one row per changed document), then written to the documents in batches; each written
document gets a metadata-version bump, so the metadata sync copies the new ACL to its
chunks. Chunks, text and vectors are never rewritten: nothing is re-embedded.

ACLs are compared as sets (``user:a, group:b`` equals ``group:b, user:a``), so only a
real change costs a write. Groups are stored whole per cc-pair and replaced in one
transaction; search resolves a user to principals through them at query time, so a
membership change needs no document write at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sluice.db.models import CcPairStatus

ACL_DIFFERS = "NOT (d.acl @> {new} AND d.acl <@ {new})"
"""Set inequality of the document's ACL (``d.acl``) and a new one."""


async def stage_changed_acls(
    raw: Any, cc_pair_id: int, listed: Iterable[tuple[str, Sequence[str]]]
) -> tuple[int, int]:
    """Replace the pair's staged ACLs with those that differ from its documents' rows;
    returns (documents the pair holds, changed). Listed IDs the pair does not hold (not
    indexed yet) are ignored: indexing writes their ACL with them."""
    await raw.execute("DELETE FROM document_permission_staged WHERE cc_pair_id = $1", cc_pair_id)
    await raw.execute(
        "CREATE TEMP TABLE IF NOT EXISTS _listed_acl (id text PRIMARY KEY, acl text[]) "
        "ON COMMIT DROP"
    )
    records = {doc_id: list(acl) for doc_id, acl in listed}
    await raw.copy_records_to_table("_listed_acl", records=list(records.items()))
    status = await raw.execute(
        f"""
        INSERT INTO document_permission_staged (cc_pair_id, document_id, acl)
        SELECT $1, s.id, s.acl FROM _listed_acl s
        JOIN document_by_connector_credential_pair l
          ON l.document_id = s.id AND l.cc_pair_id = $1
        JOIN document d ON d.id = s.id
        WHERE {ACL_DIFFERS.format(new="s.acl")}
        """,
        cc_pair_id,
    )
    held = await raw.fetchval(
        "SELECT count(*) FROM document_by_connector_credential_pair WHERE cc_pair_id = $1",
        cc_pair_id,
    )
    return int(held), int(status.split()[-1])


async def apply_staged_batch(raw: Any, cc_pair_id: int, limit: int) -> tuple[int, int]:
    """Write up to ``limit`` staged ACLs to their documents (bumping only those that still
    differ) and drop them from the stage; returns (taken, written). One transaction: a
    batch lands whole or is taken again by the retry."""
    row = await raw.fetchrow(
        f"""
        WITH taken AS (
            DELETE FROM document_permission_staged p
            WHERE p.cc_pair_id = $1 AND p.document_id IN (
                SELECT document_id FROM document_permission_staged WHERE cc_pair_id = $1
                ORDER BY document_id LIMIT $2 FOR UPDATE SKIP LOCKED)
            RETURNING p.document_id, p.acl
        ), written AS (
            UPDATE document d SET acl = t.acl, metadata_version = d.metadata_version + 1
            FROM taken t
            WHERE d.id = t.document_id AND {ACL_DIFFERS.format(new="t.acl")}
            RETURNING d.id
        )
        SELECT (SELECT count(*) FROM taken) AS taken, (SELECT count(*) FROM written) AS written
        """,
        cc_pair_id,
        limit,
    )
    return int(row["taken"]), int(row["written"])


async def staged_count(raw: Any, cc_pair_id: int) -> int:
    return int(
        await raw.fetchval(
            "SELECT count(*) FROM document_permission_staged WHERE cc_pair_id = $1", cc_pair_id
        )
    )


async def replace_groups(
    raw: Any, cc_pair_id: int, groups: Mapping[str, Sequence[str]]
) -> tuple[int, int]:
    """The pair's groups become exactly ``groups`` (run in one transaction: a search sees
    the old memberships or the new ones, never a mix); returns (groups, memberships)."""
    await raw.execute("DELETE FROM external_group WHERE cc_pair_id = $1", cc_pair_id)
    records = [(cc_pair_id, name, sorted(set(members))) for name, members in groups.items()]
    if records:
        await raw.copy_records_to_table(
            "external_group", records=records, columns=("cc_pair_id", "name", "members")
        )
    return len(records), sum(len(r[2]) for r in records)


async def mark_permissions_synced(raw: Any, cc_pair_id: int) -> None:
    await raw.execute(
        "UPDATE connector_credential_pair SET last_permission_sync_at = now() WHERE id = $1",
        cc_pair_id,
    )


async def pairs_due_for_permission_sync(
    raw: Any, as_of: datetime, default_interval: int
) -> list[int]:
    """Active pairs whose permission-sync interval (or the default) has passed."""
    rows = await raw.fetch(
        """
        SELECT id FROM connector_credential_pair
        WHERE status = $1
          AND coalesce(permission_sync_interval_seconds, $3) > 0
          AND (last_permission_sync_at IS NULL OR last_permission_sync_at
               + make_interval(secs => coalesce(permission_sync_interval_seconds, $3)) <= $2)
        ORDER BY id
        """,
        CcPairStatus.ACTIVE.value,
        as_of,
        default_interval,
    )
    return [int(r["id"]) for r in rows]
