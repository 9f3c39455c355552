"""The database knows which directory holds its agent code and artifacts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

With a database URL, the code and artifacts live in a directory the rows do
not name: run from another directory, a command found no code (or, worse,
another archive's, and rejected children over "missing" artifacts). The
archive now has an id, written both here and in its directory
(`archive-id`), and the directory's path.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archive_info",
        sa.Column("key", sa.String(length=64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("archive_info")
