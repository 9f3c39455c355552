"""Campaigns record the machine their runner is on.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

With the pid alone, "is the runner still alive?" could only be asked of
the heartbeat (stale after 30 s) or by assuming one machine. With the host
too, a runner on this machine whose process is gone is known dead at once,
and one on another machine is judged by its heartbeat only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("runner_host", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("runner_host")
