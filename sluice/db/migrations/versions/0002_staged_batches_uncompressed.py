"""Store staged batches uncompressed.

A staged batch is written once, read once and deleted: compressing ~1 MB of JSON
with pglz on every write cost more Postgres CPU than the batch's own index writes
(measured with bench/indexing.py). EXTERNAL keeps the value out of line, uncompressed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE staged_batch ALTER COLUMN documents SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE staged_batch ALTER COLUMN documents SET STORAGE EXTENDED")
