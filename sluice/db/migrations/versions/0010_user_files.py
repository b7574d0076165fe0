"""User files: files people upload (the seed's Projects and chat uploads) and project members.

``user_file`` is the product's view of one upload: who owns it, which project it is in,
where its bytes are (``sha256``: the content-addressed blob in Sluice's file store,
``sluice/filestore.py``), and its processing status (``processing``, ``ready``, ``failed``
with ``error``). Its indexed form is an ordinary ``document`` row (``user_file:<id>``)
whose ACL is ``user:<owner>`` (+ ``project:<project>``); the row is deleted with it.

``project_member`` says who may read a project's files: search as a user passes
``project:<P>`` for each project the user is a member of.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE user_file (
    id bigserial PRIMARY KEY,
    owner text NOT NULL,
    project text,
    name text NOT NULL,
    size_bytes bigint NOT NULL,
    sha256 text,
    status text NOT NULL DEFAULT 'processing',
    error text,
    chunk_count integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz
);
CREATE INDEX ix_user_file_owner ON user_file (owner, id);
CREATE INDEX ix_user_file_processing ON user_file (id) WHERE status = 'processing';
CREATE INDEX ix_user_file_sha256 ON user_file (sha256);
CREATE TABLE project_member (
    project text NOT NULL,
    user_name text NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project, user_name)
);
CREATE INDEX ix_project_member_user ON project_member (user_name)
"""

DOWNGRADE = """
DROP TABLE project_member;
DROP TABLE user_file
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
