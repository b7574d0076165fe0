"""Documents a re-run need not stage: the source says they have not changed.

Hashing catches an unchanged document only after it was staged, loaded and parsed
again. Where the source gives ``updated_at`` (file mtime, HTTP Last-Modified, an
API's modified time), a document this cc-pair already holds with the same
``updated_at`` and the same readers is dropped before staging. A from-the-beginning
run never skips: it is how a user forces everything through again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sluice.connectors.models import Document


async def unchanged_documents(raw: Any, cc_pair_id: int, documents: Sequence[Document]) -> set[str]:
    """IDs of ``documents`` stored for ``cc_pair_id`` with equal ``updated_at`` and ACL."""
    stamped = [d for d in documents if d.updated_at is not None]
    if not stamped:
        return set()
    rows = await raw.fetch(
        """
        SELECT d.id
        FROM unnest($1::text[], $2::timestamptz[], $3::jsonb[]) AS s(id, updated_at, acl)
        JOIN document d ON d.id = s.id AND d.doc_updated_at = s.updated_at
        JOIN document_by_connector_credential_pair p
          ON p.document_id = d.id AND p.cc_pair_id = $4
        WHERE d.acl @> ARRAY(SELECT jsonb_array_elements_text(s.acl))
          AND d.acl <@ ARRAY(SELECT jsonb_array_elements_text(s.acl))
        """,
        [d.id for d in stamped],
        [d.updated_at for d in stamped],
        [json.dumps(d.acl) for d in stamped],
        cc_pair_id,
    )
    return {r["id"] for r in rows}
