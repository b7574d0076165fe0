"""Document IDs unique per source instance: rewrite rows written with the old IDs.

Filesystem documents were ``file:<relative path>``, so two connectors whose folders held
the same relative path overwrote each other's row. They are now
``file://<resolved root>/<relative path>``. Synthetic documents keep ``syn:<seed>:<n>``
unless their config names the instance (``syn:<name>:<seed>:<n>``); configs written
before this revision cannot carry a name, so in practice only filesystem rows change.
Web documents were already their absolute, normalised URL.

For every filesystem (or named synthetic) cc-pair, each legacy document linked to it is
given its new ID, computed from the connector's config exactly as the connector does it
(``os.path.realpath`` of the configured path, on the machine that migrates, so run it
where the workers run). Primary keys cannot be updated in place (children reference
``document(id)`` without ON UPDATE CASCADE), so: copy the document row under its new ID,
copy its chunks, add the new links, drop the old links, and delete old rows no cc-pair
links any more (their chunks go by cascade). ``index_attempt_error`` rows of the cc-pair
get the new ``document_id`` (and ``document_key`` when it was the ID), and documents in
staged batches not yet processed are renamed, so an attempt in flight stays consistent.

A legacy document linked to several cc-pairs whose new IDs differ (two folders with the
same relative path: the bug this fixes) is copied to each new ID. Its content is then the
version the last writer left, which may belong to only one of those folders. Stored
content hashes were computed over the old ID, so the next time a connector emits a
migrated document it is re-indexed with its own content; filesystem runs are
incremental, so an unchanged file is refreshed when it changes, or at once with
``sluice connector index-now <cc-pair> --from-beginning``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import os

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MAX_ID_LENGTH = 2000
"""``Document.id``'s limit: a staged document renamed beyond it could not be loaded."""

FILE_LEGACY = "^file:[^/]"
"""``file:<relative path>``: a relative path never starts with ``/``, new IDs always do."""
SYN_LEGACY = "^syn:-?[0-9]+:[0-9]+$"


def filesystem_prefix(path: str) -> str:
    """Same as ``sluice.connectors.filesystem.document_id_prefix`` (copied: migrations must
    not change when application code does)."""
    root = os.path.realpath(os.path.expanduser(path)).replace(os.sep, "/")
    return f"file://{root.rstrip('/')}/"


def _rewrites(conn: sa.Connection) -> list[dict[str, object]]:
    """One rule per cc-pair whose IDs change: (cc_pair_id, old prefix, new prefix, legacy)."""
    rows = conn.execute(
        sa.text(
            """
            SELECT p.id, c.source, c.config ->> 'path' AS path, c.config ->> 'name' AS name
            FROM connector_credential_pair p JOIN connector c ON c.id = p.connector_id
            WHERE c.source IN ('filesystem', 'synthetic')
            ORDER BY p.id
            """
        )
    ).all()
    rules: list[dict[str, object]] = []
    for cc_pair_id, source, path, name in rows:
        if source == "filesystem" and path:
            new_prefix = filesystem_prefix(path)
            rules.append(dict(cc=cc_pair_id, old="file:", new=new_prefix, legacy=FILE_LEGACY))
        elif source == "synthetic" and name:
            rules.append(dict(cc=cc_pair_id, old="syn:", new=f"syn:{name}:", legacy=SYN_LEGACY))
    return rules


DOCUMENT_COLUMNS = (
    "source, semantic_identifier, link, metadata, acl, document_sets, boost, hidden, "
    "content_hash, doc_updated_at, chunk_count, last_modified, last_synced"
)
CHUNK_COLUMNS = "chunk_id, title, content, link, embedding, acl"  # content_tsv is generated

NEW_ID = "r.new_prefix || substr({col}, length(r.old_prefix) + 1)"

REWRITE = f"""
CREATE TEMP TABLE sluice_doc_map ON COMMIT DROP AS
SELECT DISTINCT l.document_id AS old_id, {NEW_ID.format(col="l.document_id")} AS new_id,
       l.cc_pair_id
FROM document_by_connector_credential_pair l
JOIN sluice_id_rule r ON r.cc_pair_id = l.cc_pair_id
WHERE l.document_id ~ r.legacy;
DELETE FROM sluice_doc_map WHERE new_id = old_id;
CREATE TEMP TABLE sluice_doc_new ON COMMIT DROP AS
SELECT DISTINCT ON (m.new_id) m.new_id, m.old_id
FROM sluice_doc_map m
WHERE NOT EXISTS (SELECT 1 FROM document d WHERE d.id = m.new_id)
ORDER BY m.new_id, m.old_id;
INSERT INTO document (id, {DOCUMENT_COLUMNS})
SELECT n.new_id, {", ".join(f"d.{c.strip()}" for c in DOCUMENT_COLUMNS.split(","))}
FROM sluice_doc_new n JOIN document d ON d.id = n.old_id;
INSERT INTO chunk (document_id, {CHUNK_COLUMNS})
SELECT n.new_id, {", ".join(f"c.{c.strip()}" for c in CHUNK_COLUMNS.split(","))}
FROM sluice_doc_new n JOIN chunk c ON c.document_id = n.old_id;
INSERT INTO document_by_connector_credential_pair (document_id, cc_pair_id)
SELECT new_id, cc_pair_id FROM sluice_doc_map
ON CONFLICT DO NOTHING;
DELETE FROM document_by_connector_credential_pair l
USING sluice_doc_map m
WHERE l.document_id = m.old_id AND l.cc_pair_id = m.cc_pair_id;
DELETE FROM document d
WHERE d.id IN (SELECT old_id FROM sluice_doc_map)
  AND NOT EXISTS (SELECT 1 FROM document_by_connector_credential_pair l
                  WHERE l.document_id = d.id);
UPDATE index_attempt_error e
SET document_id = {NEW_ID.format(col="e.document_id")},
    document_key = CASE WHEN e.document_key = e.document_id
                        THEN {NEW_ID.format(col="e.document_id")}
                        ELSE e.document_key END
FROM sluice_id_rule r
WHERE e.cc_pair_id = r.cc_pair_id AND e.document_id ~ r.legacy;
UPDATE staged_batch s
SET documents = convert_to(
    (SELECT coalesce(jsonb_agg(
                CASE WHEN x.doc ->> 'id' ~ r.legacy
                      AND length({NEW_ID.format(col="(x.doc ->> 'id')")}) <= {MAX_ID_LENGTH}
                     THEN jsonb_set(x.doc, '{{id}}',
                                    to_jsonb({NEW_ID.format(col="(x.doc ->> 'id')")}))
                     ELSE x.doc END
                ORDER BY x.n), '[]'::jsonb)::text
     FROM jsonb_array_elements(convert_from(s.documents, 'UTF8')::jsonb)
          WITH ORDINALITY AS x(doc, n)),
    'UTF8')
FROM sluice_id_rule r
WHERE s.cc_pair_id = r.cc_pair_id AND s.processed_at IS NULL
  AND length(s.documents) > 0 AND get_byte(s.documents, 0) = 91
"""
"""Statements separated by ``;\\n``; the staged-batch update only touches unprocessed
batches that hold a JSON array (``[`` is byte 91), the only format staged before 0003."""


def _run(script: str) -> None:
    # asyncpg prepares each statement, so a script goes one statement at a time.
    for statement in script.split(";\n"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    conn = op.get_bind()
    rules = _rewrites(conn)
    if not rules:
        return
    op.execute(
        """
        CREATE TEMP TABLE sluice_id_rule (
            cc_pair_id integer PRIMARY KEY,
            old_prefix text NOT NULL,
            new_prefix text NOT NULL,
            legacy text NOT NULL
        ) ON COMMIT DROP
        """
    )
    conn.execute(
        sa.text("INSERT INTO sluice_id_rule VALUES (:cc, :old, :new, :legacy)"),
        rules,
    )
    _run(REWRITE)
    # ON COMMIT DROP covers a crash; drop now so later revisions in this transaction
    # (and a second tenant migrated on the same connection) start clean.
    _run("DROP TABLE sluice_doc_new;\nDROP TABLE sluice_doc_map;\nDROP TABLE sluice_id_rule")


def downgrade() -> None:
    raise NotImplementedError(
        "0003 is irreversible: old document IDs were not unique per source instance, so "
        "turning them back would merge documents of different folders again"
    )
