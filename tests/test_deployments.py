"""The deployments file as data: every campaign that collects is also pruned and processed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gettok.models.campaign import load_campaign

ROOT = Path(__file__).parents[1]
DEPLOYMENTS = ROOT / "deployments" / "prefect.yaml"
FIFTEEN_DAYS_S = 15 * 24 * 3600


def deployments() -> list[dict]:
    return yaml.safe_load(DEPLOYMENTS.read_text())["deployments"]


def collecting_campaigns(items: list[dict]) -> set[str]:
    """Campaign files of the scheduled pipeline deployments (those that collect every day)."""
    return {
        d["parameters"]["campaign_file"]
        for d in items
        if d["entrypoint"].endswith("pipeline.py:pipeline") and d.get("schedules")
    }


def pruned_campaigns(items: list[dict], all_campaigns: set[str]) -> set[str]:
    """Campaign files re-checked at least every 15 days (no campaign_file means all of them)."""
    covered: set[str] = set()
    for d in items:
        if not d["entrypoint"].endswith("prune.py:prune"):
            continue
        often = [s for s in d.get("schedules") or [] if s.get("interval", 1e12) <= FIFTEEN_DAYS_S]
        if not often:
            continue
        campaign = (d.get("parameters") or {}).get("campaign_file")
        covered |= all_campaigns if campaign is None else {campaign}
    return covered


def shipped_campaigns() -> set[str]:
    return {f"campaigns/{p.name}" for p in sorted((ROOT / "campaigns").glob("*.toml"))}


def test_every_shipped_campaign_collects_daily():
    assert collecting_campaigns(deployments()) == shipped_campaigns()


def test_every_collecting_campaign_is_pruned_every_15_days():
    items = deployments()
    collecting = collecting_campaigns(items)
    assert collecting <= pruned_campaigns(items, shipped_campaigns())


def test_the_coverage_check_fails_when_a_campaign_is_left_out():
    # The check itself: a prune pinned to one campaign leaves the other out.
    items = deployments()
    pinned = [
        {**d, "parameters": {"campaign_file": "campaigns/peru_2022.toml"}}
        if d["entrypoint"].endswith("prune.py:prune")
        else d
        for d in items
    ]
    missing = collecting_campaigns(pinned) - pruned_campaigns(pinned, shipped_campaigns())
    assert missing == {"campaigns/ecuador_2024.toml"}


@pytest.mark.parametrize("campaign_file", sorted(shipped_campaigns()))
def test_every_deployed_campaign_file_loads(campaign_file):
    assert load_campaign(ROOT / campaign_file).name
