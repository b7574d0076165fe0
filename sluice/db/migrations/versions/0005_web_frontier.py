"""Web crawl frontier out of workflow history: one row per URL a crawl pass has found.

The web connector's checkpoint cursor used to carry the whole frontier (``queue`` and
``seen`` URL lists), megabytes for a large site, in every fetch request, heartbeat,
continue-as-new input and progress reply. The frontier now lives here and the cursor
only names the pass and how far into it the crawl has got (see
``sluice/connectors/web_frontier.py`` for the protocol).

``web_crawl_pass``: one row per crawl pass of a cc-pair; ``next_seq`` is the next free
position in the crawl order, and locking the row serialises writers of the pass.
``web_frontier``: one row per URL the pass has seen. ``seq`` is its position in the crawl
order (dense from 0, never reused); NULL for a URL only reached as a redirect target
(emitted under that URL, never queued). ``found_at`` is the position of the page whose
fetch found it (-1 for seeds). Rows are only ever added while a pass runs; starting a new
pass deletes the cc-pair's older passes, and deleting the cc-pair deletes everything.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE web_crawl_pass (
    cc_pair_id integer NOT NULL REFERENCES connector_credential_pair(id) ON DELETE CASCADE,
    pass_id text NOT NULL,
    next_seq integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cc_pair_id, pass_id)
);
CREATE TABLE web_frontier (
    cc_pair_id integer NOT NULL,
    pass_id text NOT NULL,
    url text NOT NULL,
    seq integer,
    found_at integer NOT NULL,
    PRIMARY KEY (cc_pair_id, pass_id, url),
    FOREIGN KEY (cc_pair_id, pass_id) REFERENCES web_crawl_pass (cc_pair_id, pass_id)
        ON DELETE CASCADE
);
CREATE UNIQUE INDEX uq_web_frontier_seq ON web_frontier (cc_pair_id, pass_id, seq)
    WHERE seq IS NOT NULL
"""

DOWNGRADE = """
DROP TABLE web_frontier, web_crawl_pass
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
