"""Permission sync: per-pair intervals, staged ACL changes, and the source's groups.

``connector_credential_pair.permission_sync_interval_seconds`` (NULL: the
``PERMISSION_SYNC_INTERVAL_SECONDS`` default) and ``last_permission_sync_at`` say when a
pair is due, as pruning's columns do.

``document_permission_staged``: the ACLs a permission sync found changed at the source,
waiting to be written to their documents in batches (a claim check: millions of changed
ACLs never travel through workflow history, only the pair's ID does). A sync replaces the
pair's rows; the upsert batches delete what they wrote.

``external_group``: the source's groups and their members, per cc-pair (the pair whose
group sync saw them), replaced whole in one transaction on each sync. Search turns a user
into principals with it: ``user:NAME``, ``group:G`` for every group listing NAME, ``public``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE connector_credential_pair ADD COLUMN permission_sync_interval_seconds integer;
ALTER TABLE connector_credential_pair ADD COLUMN last_permission_sync_at timestamptz;
CREATE TABLE document_permission_staged (
    cc_pair_id integer NOT NULL REFERENCES connector_credential_pair(id) ON DELETE CASCADE,
    document_id text NOT NULL,
    acl text[] NOT NULL,
    PRIMARY KEY (cc_pair_id, document_id)
);
CREATE TABLE external_group (
    cc_pair_id integer NOT NULL REFERENCES connector_credential_pair(id) ON DELETE CASCADE,
    name text NOT NULL,
    members text[] NOT NULL DEFAULT '{}',
    synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cc_pair_id, name)
);
CREATE INDEX ix_external_group_members ON external_group USING gin (members)
"""

DOWNGRADE = """
DROP TABLE external_group;
DROP TABLE document_permission_staged;
ALTER TABLE connector_credential_pair DROP COLUMN last_permission_sync_at;
ALTER TABLE connector_credential_pair DROP COLUMN permission_sync_interval_seconds
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
