"""Chunk rows laid out for search (text and lexemes inline, uncompressed); documents by source.

The text side of search reads every candidate chunk's ``search_tsv`` once per query term
and its ``content`` for the length norm and the literal-identifier check. Postgres
compresses a value once a row passes ``toast_tuple_target`` (about 2 KB), and a chunk
row (1 KB of text, 1-3 KB of lexemes) usually does: each read then decompresses the
value again, 3-4 µs a time, which at 4,000 candidates and 4 terms was most of a
query's text side (measured on 100,000 chunks: 10 ms for one ``@@`` per candidate
against 2 ms with the value stored plain).

- ``toast_tuple_target = 8160`` and ``STORAGE MAIN``: a row is compressed only when it
  would not fit a page otherwise; rows up to ~8 KB stay plain. The heap grows by about
  a quarter, and inserts no longer spend CPU on compression.
- ``ix_document_source``: a search filtered by source reads that source's documents
  (and their vectors exactly, when they are few) instead of walking every document.
- ``content_tsv`` goes: unused since 0006 (search reads ``search_tsv``), it cost a
  ``to_tsvector`` of every chunk on every insert and a third of the row.

Rows already written keep their old layout until they are rewritten (re-indexed);
nothing reads them differently, so this needs no table rewrite.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE chunk DROP COLUMN content_tsv;
ALTER TABLE chunk SET (toast_tuple_target = 8160);
ALTER TABLE chunk ALTER COLUMN content SET STORAGE MAIN, ALTER COLUMN search_tsv SET STORAGE MAIN;
CREATE INDEX ix_document_source ON document (source)
"""

DOWNGRADE = """
DROP INDEX ix_document_source;
ALTER TABLE chunk ALTER COLUMN content SET STORAGE EXTENDED,
    ALTER COLUMN search_tsv SET STORAGE EXTENDED;
ALTER TABLE chunk RESET (toast_tuple_target);
ALTER TABLE chunk ADD COLUMN content_tsv tsvector GENERATED ALWAYS AS
    (to_tsvector('english', coalesce(title, '') || ' ' || content)) STORED
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
