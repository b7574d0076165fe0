"""Indexing core: connectors, credentials, cc-pairs, documents, chunks, attempts, staging.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE connector (
    id serial PRIMARY KEY,
    name varchar(200) NOT NULL,
    source varchar(50) NOT NULL,
    config jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE credential (
    id serial PRIMARY KEY,
    source varchar(50) NOT NULL,
    secret jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE connector_credential_pair (
    id serial PRIMARY KEY,
    name varchar(200) NOT NULL,
    connector_id integer NOT NULL REFERENCES connector(id) ON DELETE CASCADE,
    credential_id integer REFERENCES credential(id) ON DELETE SET NULL,
    status varchar(20) NOT NULL DEFAULT 'active',
    refresh_interval_seconds integer CHECK (refresh_interval_seconds > 0),
    prune_interval_seconds integer CHECK (prune_interval_seconds > 0),
    consecutive_failures integer NOT NULL DEFAULT 0,
    flag_reason text,
    last_successful_index_at timestamptz,
    last_pruned_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uq_cc_pair UNIQUE (connector_id, credential_id)
);
CREATE TABLE document (
    id text PRIMARY KEY,
    source varchar(50) NOT NULL,
    semantic_identifier text NOT NULL,
    link text,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    acl text[] NOT NULL DEFAULT '{}',
    document_sets text[] NOT NULL DEFAULT '{}',
    boost double precision NOT NULL DEFAULT 0,
    hidden boolean NOT NULL DEFAULT false,
    content_hash varchar(64) NOT NULL,
    doc_updated_at timestamptz,
    chunk_count integer NOT NULL DEFAULT 0,
    last_modified timestamptz NOT NULL DEFAULT now(),
    last_synced timestamptz
);
CREATE TABLE document_by_connector_credential_pair (
    document_id text NOT NULL REFERENCES document(id) ON DELETE CASCADE,
    cc_pair_id integer NOT NULL REFERENCES connector_credential_pair(id) ON DELETE CASCADE,
    PRIMARY KEY (document_id, cc_pair_id)
);
CREATE INDEX ix_doc_by_cc_pair_cc ON document_by_connector_credential_pair (cc_pair_id);
CREATE TABLE chunk (
    document_id text NOT NULL REFERENCES document(id) ON DELETE CASCADE,
    chunk_id integer NOT NULL,
    title text NOT NULL,
    content text NOT NULL,
    link text,
    embedding vector(256) NOT NULL,
    content_tsv tsvector GENERATED ALWAYS AS
        (to_tsvector('english', coalesce(title, '') || ' ' || content)) STORED,
    acl text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (document_id, chunk_id)
);
CREATE INDEX ix_chunk_embedding_hnsw ON chunk USING hnsw (embedding vector_cosine_ops);
CREATE INDEX ix_chunk_content_tsv ON chunk USING gin (content_tsv);
CREATE TABLE index_attempt (
    id serial PRIMARY KEY,
    cc_pair_id integer NOT NULL REFERENCES connector_credential_pair(id) ON DELETE CASCADE,
    status varchar(30) NOT NULL DEFAULT 'not_started',
    from_beginning boolean NOT NULL DEFAULT false,
    workflow_id text,
    run_id text,
    docs_fetched integer NOT NULL DEFAULT 0,
    docs_indexed integer NOT NULL DEFAULT 0,
    docs_skipped integer NOT NULL DEFAULT 0,
    docs_failed integer NOT NULL DEFAULT 0,
    chunks_written integer NOT NULL DEFAULT 0,
    batches integer NOT NULL DEFAULT 0,
    error_message text,
    started_at timestamptz,
    finished_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_index_attempt_cc_pair ON index_attempt (cc_pair_id, id);
CREATE TABLE index_attempt_error (
    id serial PRIMARY KEY,
    index_attempt_id integer NOT NULL REFERENCES index_attempt(id) ON DELETE CASCADE,
    cc_pair_id integer NOT NULL,
    stage varchar(20) NOT NULL,
    document_key text NOT NULL,
    document_id text,
    document_link text,
    failure_message text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uq_attempt_error UNIQUE (index_attempt_id, stage, document_key)
);
CREATE TABLE staged_batch (
    id bigserial PRIMARY KEY,
    index_attempt_id integer NOT NULL REFERENCES index_attempt(id) ON DELETE CASCADE,
    cc_pair_id integer NOT NULL,
    seq integer NOT NULL,
    doc_count integer NOT NULL,
    documents bytea NOT NULL,
    result jsonb,
    processed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uq_staged_batch_seq UNIQUE (index_attempt_id, seq)
);
"""

DOWNGRADE = """
DROP TABLE staged_batch, index_attempt_error, index_attempt, chunk,
    document_by_connector_credential_pair, document, connector_credential_pair,
    credential, connector;
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
