"""Seed 002's document indexes: collections, their documents, per-type index state,
graph rows, summaries, index tasks and evaluations.

``document_index`` holds one row per document and index type (vector, fulltext, graph,
summary): its status, the desired ``version`` and the ``observed_version`` a build last
made active. The row is the source of truth; a task ID (``document_index_task``) is only
a handle on the versions one request asked for.

Every row hangs off ``collection`` (ON DELETE CASCADE), so collection GC deletes the
collection row and the search-side rows (``document``, whose chunks and vectors cascade)
in one transaction, and nothing is left behind. Graph entities are shared by the
documents of a collection; mentions and edges are per document, so deleting one
document's graph keeps what other documents said.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE collection (
    name text PRIMARY KEY,
    status text NOT NULL DEFAULT 'active',
    created_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE TABLE collection_document (
    id text PRIMARY KEY,
    collection text NOT NULL REFERENCES collection(name) ON DELETE CASCADE,
    name text NOT NULL,
    content_type text NOT NULL,
    raw bytea NOT NULL,
    raw_hash text NOT NULL,
    parsed_hash text,
    parsed_text text,
    chunks_hash text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (collection, name)
);
CREATE TABLE document_index (
    document_id text NOT NULL REFERENCES collection_document(id) ON DELETE CASCADE,
    index_type text NOT NULL,
    status text NOT NULL,
    version bigint NOT NULL DEFAULT 1,
    observed_version bigint NOT NULL DEFAULT 0,
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    PRIMARY KEY (document_id, index_type)
);
CREATE INDEX ix_document_index_lagging ON document_index (index_type)
    WHERE status IN ('pending', 'creating', 'deleting');
CREATE TABLE document_index_task (
    id text PRIMARY KEY,
    document_id text NOT NULL REFERENCES collection_document(id) ON DELETE CASCADE,
    operation text NOT NULL,
    versions jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE graph_entity (
    collection text NOT NULL REFERENCES collection(name) ON DELETE CASCADE,
    key text NOT NULL,
    label text NOT NULL,
    PRIMARY KEY (collection, key)
);
CREATE TABLE graph_mention (
    collection text NOT NULL,
    key text NOT NULL,
    document_id text NOT NULL REFERENCES collection_document(id) ON DELETE CASCADE,
    mentions integer NOT NULL,
    PRIMARY KEY (collection, key, document_id),
    FOREIGN KEY (collection, key) REFERENCES graph_entity(collection, key) ON DELETE CASCADE
);
CREATE INDEX ix_graph_mention_document ON graph_mention (document_id);
CREATE TABLE graph_edge (
    collection text NOT NULL,
    source text NOT NULL,
    target text NOT NULL,
    document_id text NOT NULL REFERENCES collection_document(id) ON DELETE CASCADE,
    weight integer NOT NULL,
    PRIMARY KEY (collection, source, target, document_id),
    FOREIGN KEY (collection, source) REFERENCES graph_entity(collection, key) ON DELETE CASCADE,
    FOREIGN KEY (collection, target) REFERENCES graph_entity(collection, key) ON DELETE CASCADE
);
CREATE INDEX ix_graph_edge_document ON graph_edge (document_id);
CREATE TABLE document_summary (
    document_id text PRIMARY KEY REFERENCES collection_document(id) ON DELETE CASCADE,
    summary text NOT NULL,
    sentences integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE collection_evaluation (
    id serial PRIMARY KEY,
    collection text NOT NULL REFERENCES collection(name) ON DELETE CASCADE,
    questions jsonb NOT NULL,
    k integer NOT NULL DEFAULT 5,
    status text NOT NULL DEFAULT 'pending',
    scores jsonb,
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
)
"""

DOWNGRADE = """
DROP TABLE collection_evaluation;
DROP TABLE document_summary;
DROP TABLE graph_edge;
DROP TABLE graph_mention;
DROP TABLE graph_entity;
DROP TABLE document_index_task;
DROP TABLE document_index;
DROP TABLE collection_document;
DROP TABLE collection
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
