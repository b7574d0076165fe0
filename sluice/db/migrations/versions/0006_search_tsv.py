"""Full text that finds identifiers: ``chunk.search_tsv``, for OR-matching BM25-style ranking.

``content_tsv`` (english over the raw text) loses identifiers: the default parser
splits ``hybrid_search`` into two words but never keeps it whole, and it takes
``sluice.index.store`` or ``a/b/c.py`` as one host or file token whose parts cannot be
found. ``search_tsv`` holds, for the chunk's title and content:

* the english lexemes of the text with ``_ . / -`` read as spaces (every part of an
  identifier, stemmed like any word), and
* the 'simple' lexemes of the identifiers themselves, collapsed (separators between
  letters or digits removed: ``hybrid_search`` -> ``hybridsearch``), so the whole
  identifier is one lexeme; plain words are dropped from this half first. Paths are
  also collapsed segment by segment (``src/lib/x-y.conf`` gives ``srclibxyconf`` and
  ``xyconf``), so a file name is found without its folder.

The query side runs the same expression over the query text (see
``sluice/index/store.py``, ``SEARCH_TSV_SQL``), so both sides agree on lexemes. The
GIN index of the unused ``content_tsv`` goes (the column stays for existing readers),
so a chunk write maintains one full-text index, as before.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Keep in step with sluice/index/store.py SEARCH_TSV_SQL (with ``{t}`` = the text).
_TEXT = "(coalesce(title, '') || ' ' || content)"
_IDENT = (
    "to_tsvector('simple', regexp_replace(regexp_replace({x}, "
    "'(^|\\s)[^\\s_./-]+(?=\\s|$)', ' ', 'g'), "
    "'([[:alnum:]])[_./-]+(?=[[:alnum:]])', '\\1', 'g'))"
)
SEARCH_TSV = (
    "to_tsvector('english', regexp_replace({t}, '[_./-]+', ' ', 'g')) || "
    + _IDENT.format(x="lower({t})")
    + " || "
    + _IDENT.format(x="translate(lower({t}), '/', ' ')")
).format(t=_TEXT)

UPGRADE = f"""
ALTER TABLE chunk ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS ({SEARCH_TSV}) STORED;
CREATE INDEX ix_chunk_search_tsv ON chunk USING gin (search_tsv);
DROP INDEX ix_chunk_content_tsv
"""

DOWNGRADE = """
CREATE INDEX ix_chunk_content_tsv ON chunk USING gin (content_tsv);
DROP INDEX ix_chunk_search_tsv;
ALTER TABLE chunk DROP COLUMN search_tsv
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
