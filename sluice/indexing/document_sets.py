"""Document sets: named sets of connectors (the seed's document sets).

A document belongs to every set that holds one of its cc-pairs; search filters on it
(``sluice search --collection NAME``). Changing a set's members marks the documents
concerned stale, and the metadata sync recomputes their sets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sluice.errors import ConfigurationError, NotFoundError
from sluice.indexing.metadata import mark_pair_documents_stale

SET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")


@dataclass(frozen=True)
class DocumentSetInfo:
    name: str
    description: str | None
    cc_pairs: list[int]
    documents: int


def check_name(name: str) -> str:
    if not SET_NAME.fullmatch(name):
        raise ConfigurationError(
            f"document set name {name!r}: 1-100 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


async def create_set(raw: Any, name: str, description: str | None = None) -> bool:
    """True if created, False if it existed (then nothing changes)."""
    created = await raw.fetchval(
        "INSERT INTO document_set (name, description) VALUES ($1, $2) "
        "ON CONFLICT (name) DO NOTHING RETURNING name",
        check_name(name),
        description,
    )
    return created is not None


async def delete_set(raw: Any, name: str) -> int:
    """Delete the set; its documents are marked stale (they leave it). Returns how many."""
    members = await _members(raw, name)
    stale = 0
    for cc in members:
        stale += await mark_pair_documents_stale(raw, cc)
    await raw.execute("DELETE FROM document_set WHERE name = $1", name)
    return stale


async def add_pair(raw: Any, name: str, cc_pair_id: int) -> int:
    """Put a cc-pair's documents in the set; returns how many documents became stale."""
    await _members(raw, name)
    if (
        await raw.fetchval("SELECT 1 FROM connector_credential_pair WHERE id = $1", cc_pair_id)
        is None
    ):
        raise NotFoundError(f"cc-pair {cc_pair_id} does not exist")
    added = await raw.fetchval(
        "INSERT INTO document_set_cc_pair (set_name, cc_pair_id) VALUES ($1, $2) "
        "ON CONFLICT DO NOTHING RETURNING cc_pair_id",
        name,
        cc_pair_id,
    )
    return await mark_pair_documents_stale(raw, cc_pair_id) if added is not None else 0


async def remove_pair(raw: Any, name: str, cc_pair_id: int) -> int:
    await _members(raw, name)
    removed = await raw.fetchval(
        "DELETE FROM document_set_cc_pair WHERE set_name = $1 AND cc_pair_id = $2 "
        "RETURNING cc_pair_id",
        name,
        cc_pair_id,
    )
    return await mark_pair_documents_stale(raw, cc_pair_id) if removed is not None else 0


async def list_sets(raw: Any) -> list[DocumentSetInfo]:
    rows = await raw.fetch(
        """
        SELECT s.name, s.description,
               coalesce(array_agg(m.cc_pair_id ORDER BY m.cc_pair_id)
                        FILTER (WHERE m.cc_pair_id IS NOT NULL), '{}') AS cc_pairs,
               (SELECT count(*) FROM document d WHERE s.name = ANY(d.document_sets)) AS documents
        FROM document_set s LEFT JOIN document_set_cc_pair m ON m.set_name = s.name
        GROUP BY s.name, s.description ORDER BY s.name
        """
    )
    return [
        DocumentSetInfo(r["name"], r["description"], list(r["cc_pairs"]), r["documents"])
        for r in rows
    ]


async def _members(raw: Any, name: str) -> list[int]:
    """The set's cc-pairs (locked: membership changes of one set are serialised)."""
    if await raw.fetchval("SELECT 1 FROM document_set WHERE name = $1 FOR UPDATE", name) is None:
        raise NotFoundError(f"document set {name!r} does not exist (`sluice document-set create`)")
    rows = await raw.fetch(
        "SELECT cc_pair_id FROM document_set_cc_pair WHERE set_name = $1 ORDER BY cc_pair_id", name
    )
    return [int(r["cc_pair_id"]) for r in rows]
