"""Initial archive schema: campaigns, agents, task_runs, llm_calls, events, generation_stats.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written to match dgm/archive/models.py exactly (tests/test_archive.py compares
the two with Alembic's autogenerate on SQLite and PostgreSQL). Types are spelled
out here rather than imported from the models, so that this revision keeps
describing *this* schema when the models move on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=True),
        sa.Column("budget_usd", sa.Float(), nullable=True),
        sa.Column("spent_usd", sa.Float(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.Column("heartbeat_at", UTC_DATETIME, nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
        sa.UniqueConstraint("name", name="uq_campaigns_name"),
    )

    op.create_table(
        "agents",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("commit_sha", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("rejection_reason", sa.Text(), nullable=True),
        sa.Column("origin", sa.String(length=32), nullable=False),
        sa.Column("proposal", sa.JSON(), nullable=True),
        sa.Column("diagnosis_target", sa.JSON(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("heldout_score", sa.Float(), nullable=True),
        sa.Column("stage_reached", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_agents_campaign_id_campaigns"),
        sa.ForeignKeyConstraint(["parent_id"], ["agents.id"], name="fk_agents_parent_id_agents"),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
    )
    op.create_index("ix_agents_campaign_id", "agents", ["campaign_id"])
    op.create_index("ix_agents_parent_id", "agents", ["parent_id"])

    op.create_table(
        "task_runs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("benchmark", sa.String(length=200), nullable=False),
        sa.Column("task_id", sa.String(length=300), nullable=False),
        sa.Column("stage", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("tests_status", sa.JSON(), nullable=True),
        sa.Column("patch", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("agent_duration_s", sa.Float(), nullable=True),
        sa.Column("test_duration_s", sa.Float(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("trajectory_artifact", sa.String(length=64), nullable=True),
        sa.Column("agent_log_artifact", sa.String(length=64), nullable=True),
        sa.Column("eval_log_artifact", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_task_runs_agent_id_agents"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_task_runs_campaign_id_campaigns"),
        sa.PrimaryKeyConstraint("id", name="pk_task_runs"),
        sa.UniqueConstraint(
            "agent_id", "kind", "benchmark", "task_id", "stage", "attempt",
            name="uq_task_runs_agent_id_kind_benchmark_task_id_stage_attempt",
        ),
    )
    op.create_index("ix_task_runs_campaign_id", "task_runs", ["campaign_id"])
    op.create_index("ix_task_runs_agent_id", "task_runs", ["agent_id"])
    op.create_index("ix_task_runs_task_id", "task_runs", ["task_id"])

    op.create_table(
        "llm_calls",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=True),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("task_run_id", sa.String(length=64), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("artifact_id", sa.String(length=64), nullable=True),
        sa.Column("scripted", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_llm_calls_agent_id_agents"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_llm_calls_campaign_id_campaigns"),
        sa.ForeignKeyConstraint(["task_run_id"], ["task_runs.id"], name="fk_llm_calls_task_run_id_task_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_llm_calls"),
    )
    op.create_index("ix_llm_calls_task_run_id_seq", "llm_calls", ["task_run_id", "seq"])
    op.create_index("ix_llm_calls_campaign_id", "llm_calls", ["campaign_id"])
    op.create_index("ix_llm_calls_agent_id_purpose", "llm_calls", ["agent_id", "purpose"])
    op.create_index("ix_llm_calls_request_hash", "llm_calls", ["request_hash"])

    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=True),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_events_campaign_id_campaigns"),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_campaign_id", "events", ["campaign_id"])

    op.create_table(
        "generation_stats",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("generation", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("archive_size", sa.Integer(), nullable=False),
        sa.Column("best_score", sa.Float(), nullable=True),
        sa.Column("mean_score", sa.Float(), nullable=True),
        sa.Column("coverage", sa.Integer(), nullable=False),
        sa.Column("coverage_fraction", sa.Float(), nullable=False),
        sa.Column("mean_jaccard_distance", sa.Float(), nullable=True),
        sa.Column("spent_usd", sa.Float(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name="fk_generation_stats_campaign_id_campaigns"
        ),
        sa.PrimaryKeyConstraint("campaign_id", "generation", name="pk_generation_stats"),
    )


def downgrade() -> None:
    # Dropping a table drops its indexes too (on both backends).
    for table in ("generation_stats", "events", "llm_calls", "task_runs", "agents", "campaigns"):
        op.drop_table(table)
