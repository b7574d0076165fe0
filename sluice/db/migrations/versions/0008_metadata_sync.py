"""Metadata sync: document sets, and a version that says when a document's metadata is stale.

``document.metadata_version`` goes up with every change to a document's ACL, sets,
boost or hidden flag; ``synced_version`` is the version the index last took. A
document is stale while ``metadata_version > synced_version``; the metadata sync
copies what the chunks need and records the version it copied, so a change made
while a sync runs leaves the document stale for the next one (never lost).

``document_set`` names a set of connectors (the seed's document sets, Sluice's
"collections" in search); ``document_set_cc_pair`` says which cc-pairs are in it. A
document belongs to every set holding one of its cc-pairs (``document.document_sets``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE document ADD COLUMN metadata_version bigint NOT NULL DEFAULT 0;
ALTER TABLE document ADD COLUMN synced_version bigint NOT NULL DEFAULT 0;
CREATE INDEX ix_document_stale ON document (id) WHERE metadata_version > synced_version;
CREATE INDEX ix_document_sets ON document USING gin (document_sets);
CREATE TABLE document_set (
    name text PRIMARY KEY,
    description text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE document_set_cc_pair (
    set_name text NOT NULL REFERENCES document_set(name) ON DELETE CASCADE,
    cc_pair_id integer NOT NULL REFERENCES connector_credential_pair(id) ON DELETE CASCADE,
    PRIMARY KEY (set_name, cc_pair_id)
);
CREATE INDEX ix_document_set_cc_pair_cc ON document_set_cc_pair (cc_pair_id)
"""

DOWNGRADE = """
DROP TABLE document_set_cc_pair;
DROP TABLE document_set;
DROP INDEX ix_document_sets;
DROP INDEX ix_document_stale;
ALTER TABLE document DROP COLUMN synced_version;
ALTER TABLE document DROP COLUMN metadata_version
"""


def _run(script: str) -> None:
    # asyncpg prepares each statement, so a script goes one statement at a time.
    for statement in script.split(";\n"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)
