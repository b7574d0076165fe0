"""Index generations: vectors move out of ``chunk`` into one table per embedding model.

``index_generation`` has a row per embedding model the tenant's index has used
(provider, model, dimension), at most one ``live`` and at most one ``building``;
``chunk_vector_<id>`` holds that generation's vectors (see
``sluice/index/generations.py``). Existing vectors become generation 1, described by
the embedding settings the tenant is migrated with (their dimension is the old
column's, 256); a new tenant's generation 1 is the configured model.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE index_generation (
    id serial PRIMARY KEY,
    provider text NOT NULL,
    model text,
    base_url text,
    dim integer NOT NULL,
    status text NOT NULL,
    workflow_id text UNIQUE,
    chunks_total bigint,
    chunks_done bigint NOT NULL DEFAULT 0,
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    live_at timestamptz,
    retired_at timestamptz
);
CREATE UNIQUE INDEX uq_index_generation_live ON index_generation ((true))
    WHERE status = 'live';
CREATE UNIQUE INDEX uq_index_generation_building ON index_generation ((true))
    WHERE status = 'building';
CREATE TABLE chunk_vector_1 (
    document_id text NOT NULL,
    chunk_id integer NOT NULL,
    embedding vector(256) NOT NULL,
    PRIMARY KEY (document_id, chunk_id),
    FOREIGN KEY (document_id, chunk_id) REFERENCES chunk (document_id, chunk_id)
        ON DELETE CASCADE
);
INSERT INTO chunk_vector_1 (document_id, chunk_id, embedding)
    SELECT document_id, chunk_id, embedding FROM chunk;
CREATE INDEX ix_chunk_vector_1_hnsw ON chunk_vector_1 USING hnsw (embedding vector_cosine_ops);
ALTER TABLE chunk DROP COLUMN embedding
"""

DOWNGRADE = """
ALTER TABLE chunk ADD COLUMN embedding vector(256);
UPDATE chunk c SET embedding = v.embedding FROM chunk_vector_1 v
    WHERE v.document_id = c.document_id AND v.chunk_id = c.chunk_id;
CREATE INDEX ix_chunk_embedding_hnsw ON chunk USING hnsw (embedding vector_cosine_ops);
DROP TABLE chunk_vector_1;
DROP TABLE index_generation
"""


def _run(script: str) -> None:
    # asyncpg prepares each statement, so a script goes one statement at a time.
    for statement in script.split(";\n"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    import sqlalchemy as sa

    from sluice.config import get_settings

    settings = get_settings()
    _run(UPGRADE)
    openai = settings.embedding_provider == "openai"
    op.get_bind().execute(
        sa.text(
            "INSERT INTO index_generation (id, provider, model, base_url, dim, status, live_at, "
            "chunks_total, chunks_done) VALUES (1, :provider, :model, NULL, 256, 'live', now(), "
            "(SELECT count(*) FROM chunk_vector_1), (SELECT count(*) FROM chunk_vector_1))"
        ),
        {
            "provider": settings.embedding_provider,
            "model": settings.embedding_model if openai else None,
        },
    )
    op.execute("SELECT setval(pg_get_serial_sequence('index_generation', 'id'), 1)")


def downgrade() -> None:
    _run(DOWNGRADE)
