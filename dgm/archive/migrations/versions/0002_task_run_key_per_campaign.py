"""A task run's key includes its campaign.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

The key (agent, kind, benchmark, task, stage, attempt) made a resumed campaign
skip what it had already run. Without the campaign in it, it also made a later
`dgm eval` of the same agent hand back the earlier evaluation's results,
whatever model or settings it was given. The key is now per campaign: a
campaign still never runs the same thing twice, and each evaluation runs its
own. Every existing row satisfies the new, looser key, so nothing changes in
the data.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OLD_KEY = "uq_task_runs_agent_id_kind_benchmark_task_id_stage_attempt"
NEW_KEY = "uq_task_runs_run_key"
NEW_COLUMNS = ["campaign_id", "agent_id", "kind", "benchmark", "task_id", "stage", "attempt"]


def upgrade() -> None:
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_constraint(OLD_KEY, type_="unique")
        batch.create_unique_constraint(NEW_KEY, NEW_COLUMNS)


def downgrade() -> None:
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_constraint(NEW_KEY, type_="unique")
        batch.create_unique_constraint(OLD_KEY, NEW_COLUMNS[1:])
