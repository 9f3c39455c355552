"""Task runs carry a repeat index; agents may be recorded as twins.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

A real model is stochastic: one run of an agent on a task is one sample of
a resolve rate. A campaign (or `dgm eval --repeats K`) may now run the same
agent on the same task several times, so the run key gains `repeat`; every
existing row is repeat 0, which is what today's code asks for, so an old
archive opens and resumes unchanged.

A child whose code tree equals that of an agent already in its campaign is
recorded as that agent's twin (`twin_of`) instead of being evaluated again.
Existing agents are twins of nobody.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

RUN_KEY = "uq_task_runs_run_key"
OLD_COLUMNS = ["campaign_id", "agent_id", "kind", "benchmark", "task_id", "stage", "attempt"]
TWIN_FK = "fk_agents_twin_of_agents"
TWIN_INDEX = "ix_agents_twin_of"


def upgrade() -> None:
    with op.batch_alter_table("task_runs") as batch:
        batch.add_column(sa.Column("repeat", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_constraint(RUN_KEY, type_="unique")
        batch.create_unique_constraint(RUN_KEY, [*OLD_COLUMNS, "repeat"])
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("twin_of", sa.String(length=64), nullable=True))
        batch.create_foreign_key(TWIN_FK, "agents", ["twin_of"], ["id"])
        batch.create_index(TWIN_INDEX, ["twin_of"])


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_index(TWIN_INDEX)
        batch.drop_constraint(TWIN_FK, type_="foreignkey")
        batch.drop_column("twin_of")
    # Repeats beyond the first have no place in the old key.
    op.execute(sa.text("DELETE FROM llm_calls WHERE task_run_id IN (SELECT id FROM task_runs WHERE repeat > 0)"))
    op.execute(sa.text("DELETE FROM task_runs WHERE repeat > 0"))
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_constraint(RUN_KEY, type_="unique")
        batch.create_unique_constraint(RUN_KEY, OLD_COLUMNS)
        batch.drop_column("repeat")
