"""LLM calls record whether their model had a price, and the endpoint they went to.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

A call to a model with no known price was recorded at $0, which every view
showed as free. `priced` says whether `cost_usd` is a price or a stand-in 0;
calls recorded before this revision keep true (what was recorded then is
all there is). With a model per role, each on its own endpoint, `api_base`
says where a call went (null: the provider's default).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("llm_calls") as batch:
        batch.add_column(sa.Column("priced", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("api_base", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("llm_calls") as batch:
        batch.drop_column("api_base")
        batch.drop_column("priced")
