"""Drive a real campaign (real sandboxes, gateway, litellm, archive) in-process."""

from __future__ import annotations

from dgm.config import CampaignConfig
from dgm.runs.campaign import campaign_runner


def run_campaign(store, docker_client, bench, *, campaign=None, on_runner=None, **config_fields):
    """Create (or resume) a campaign and run it to its end; returns (campaign, status)."""
    config = CampaignConfig(**{"benchmark": bench.name, "model": "scripted:rehearsal", **config_fields})
    if campaign is None:
        campaign = store.create_campaign(name=config.name or f"test-{len(store.list_campaigns())}",
                                         kind="evolution", config=config.model_dump(mode="json"),
                                         seed=config.seed, budget_usd=config.budget_usd)
    # The runner `dgm run` builds (its limits from the config, cpus included), without the CLI's signals.
    with campaign_runner(store, config, campaign, docker_client=docker_client, benchmark=bench) as runner:
        if on_runner:
            on_runner(runner)
        status = runner.run()
    return store.get_campaign(campaign.id), status


def archive_fingerprint(store, campaign_id: str) -> dict:
    """Everything that must match between two runs of the same seeded campaign, minus random ids."""
    agents = store.list_agents(campaign_id)
    key = {a.id: (a.generation, (a.meta or {}).get("slot", 0)) for a in agents}
    runs = store.list_task_runs(campaign_id=campaign_id)
    return {
        "agents": sorted((key[a.id], key.get(a.parent_id), a.commit_sha, a.status, a.rejection_reason,
                          a.score, a.heldout_score, a.stage_reached) for a in agents),
        "runs": sorted((key[r.agent_id], r.kind, r.task_id, r.stage, r.attempt, r.status, r.patch or "")
                       for r in runs),
    }
