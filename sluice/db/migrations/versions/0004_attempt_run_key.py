"""Index attempts keyed by the workflow run that started them.

A connector workflow run starts at most one attempt, so ``run_id`` identifies it:
a start retried after a lost completion finds its own row instead of leaving an
orphan ``in_progress`` one. Earlier duplicates (that orphan) are closed first.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        UPDATE index_attempt a
        SET run_id = NULL,
            status = CASE WHEN a.status = 'in_progress' THEN 'interrupted' ELSE a.status END,
            finished_at = coalesce(a.finished_at, now())
        WHERE a.run_id IS NOT NULL
          AND EXISTS (SELECT 1 FROM index_attempt b WHERE b.run_id = a.run_id AND b.id > a.id)
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX uq_index_attempt_run ON index_attempt (run_id) "
        "WHERE run_id IS NOT NULL"
    )
    op.execute("CREATE INDEX ix_staged_batch_cc_pair ON staged_batch (cc_pair_id)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_staged_batch_cc_pair")
    op.execute("DROP INDEX uq_index_attempt_run")
