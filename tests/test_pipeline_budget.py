"""The LLM budget of `gettok run` is one hard ceiling over all its batches (issue 20 #6).

A run processes each collected window as a batch (download, transcribe, enrich), one after
another: each batch's enrich gets what the earlier ones left, including what a batch that failed
had spent before it failed. Here the run's windows bring new videos (rows written as collection
and the media stages would), and the real enrich flow annotates them against the sandbox LLM at a
price; what the stored annotations cost may never exceed the run's budget, and the run reports
what they cost.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from gettok import db
from gettok.flows.pipeline import PipelineIncomplete, RunDates, Stages, run_pipeline
from gettok.models.schema import Annotation
from gettok.settings import get_settings
from gettok.tasks.annotate.cost import estimate_enrich
from gettok.tasks.collect.paging import WindowOutcome
from tests.enrich_rows import add_videos, campaign_file, make_campaign, point_at_sandbox

PER_WINDOW = 2
FIRST_ID = (1668902400 << 32) | 5000
DATES = RunDates(start=date(2022, 12, 7), end=date(2022, 12, 9))  # three windows


def spent(url: str) -> float:
    with db.session_scope(url) as session:
        return float(session.scalar(select(func.coalesce(func.sum(Annotation.cost_usd), 0.0))))


def annotations(url: str) -> int:
    with db.session_scope(url) as session:
        return session.scalar(select(func.count()).select_from(Annotation))


def one_window_estimate(tmp_path, settings) -> float:
    """What one window's videos are expected to cost (estimated on a scratch database)."""
    scratch = f"sqlite:///{tmp_path / 'scratch.db'}"
    db.upgrade(scratch)
    add_videos(scratch, tmp_path / "scratch-media", count=PER_WINDOW, first_id=FIRST_ID)
    return estimate_enrich(scratch, settings, make_campaign(), None).total_usd


def window_stage(url: str, media, windows: list) -> Stages:
    """Stages whose collect step stores a window's new videos (their downloads, transcripts and
    frames included): the enrich flow is the real one."""

    def collect_window(ctx, window):
        first = FIRST_ID + 100 * len(windows)
        add_videos(url, media, count=PER_WINDOW, first_id=first)
        windows.append(window)
        return WindowOutcome(window=window, status="done", videos=PER_WINDOW, new_videos=PER_WINDOW)

    return Stages(
        download=lambda *_, **__: None,
        transcribe=lambda **_: None,
        collect_window=collect_window,
    )


def run(settings, folder, stages, budget_usd):
    from prefect import flow

    from gettok.orchestration import ensure_prefect_objects

    ensure_prefect_objects(settings)  # the shared LLM rate limit the enrich flow takes

    @flow
    def three_windows():
        return run_pipeline(
            make_campaign(), campaign_file(folder), settings, DATES, None, budget_usd, stages
        )

    return three_windows()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_budget_is_one_ceiling_across_the_batches_of_a_run(
    prefect_harness, db_url, sandbox_env, monkeypatch, tmp_path
):
    point_at_sandbox(monkeypatch, db_url, tmp_path / "media")
    settings = get_settings(tiktok_client_key="k", tiktok_client_secret="s")
    budget = 1.5 * one_window_estimate(tmp_path, settings)  # one batch and part of the next
    windows: list = []
    result = run(settings, tmp_path, window_stage(db_url, tmp_path / "media", windows), budget)

    assert len(windows) == 3 and result.batches == 4  # three windows and the final sweep
    assert 0 < spent(db_url) <= budget
    assert result.spent_usd == pytest.approx(spent(db_url))
    kinds = 5  # description (with on-screen text), stance, sentiment, summary: 4 requests
    assert annotations(db_url) < 3 * PER_WINDOW * kinds  # the ceiling left work for later


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_what_a_failed_batch_spent_counts_against_the_batches_after_it(
    prefect_harness, db_url, sandbox_env, monkeypatch, tmp_path
):
    """The first batch's LLM stops after its descriptions and stances are paid for (a 404 model
    for the sentiment); what it spent counts in the run's spend and budget."""
    import gettok.flows.pipeline as pipeline_module

    point_at_sandbox(monkeypatch, db_url, tmp_path / "media")
    monkeypatch.setattr(
        pipeline_module,
        "process_new_videos",
        pipeline_module.process_new_videos.with_options(retries=0),
    )
    settings = get_settings(tiktok_client_key="k", tiktok_client_secret="s")
    budget = 4 * one_window_estimate(tmp_path, settings)  # room for the first kinds at least
    # Sentiment, asked after description and stance, goes to a model the sandbox lacks.
    monkeypatch.setenv("GETTOK_LLM_SENTIMENT_MODEL", "gpt-4o-mini")
    monkeypatch.setenv(
        "GETTOK_LLM_PRICES", '{"sandbox-vision": [100.0, 400.0], "gpt-4o-mini": [0.15, 0.6]}'
    )
    windows: list = []
    with pytest.raises(PipelineIncomplete) as incomplete:
        run(settings, tmp_path, window_stage(db_url, tmp_path / "media", windows), budget)
    result = incomplete.value.result
    assert 0 < spent(db_url) and "HTTP 404" in str(incomplete.value)
    assert result.spent_usd == pytest.approx(spent(db_url))  # the failed batch's spend counted
    assert spent(db_url) <= budget
