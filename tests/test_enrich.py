"""The enrich flow: frames then every kind over what is pending, the run budget, the dry run's
estimate, the CLI and the Prefect flow, against the sandbox and a real database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from gettok import db
from gettok.cli import app
from gettok.clients.llm import LlmClient
from gettok.clients.llm_budget import Budget, PriceUnknown
from gettok.models.campaign import load_campaign
from gettok.models.schema import Annotation, AnnotationKind, Frame
from gettok.sandbox.media import make_clip
from gettok.settings import get_settings
from gettok.tasks.annotate.annotator import annotate_videos, plan_for
from gettok.tasks.annotate.cost import estimate_enrich
from gettok.tasks.annotate.prompts import load_prompt
from tests.enrich_rows import PERU, add_videos, campaign_file, point_at_sandbox

# Tests of the CLI and of Prefect wiring need one backend; the stage's SQL runs on both above.
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
UNFRAMED_ID = (1668988800 << 32) | 77  # a video downloaded but not yet through the frames stage


@pytest.fixture
def rows(db_url, sandbox_env, monkeypatch, tmp_path):
    media = tmp_path / "media"
    point_at_sandbox(monkeypatch, db_url, media)
    fixture = add_videos(db_url, media, count=3)
    add_videos(db_url, media, count=1, frames_per_video=0, first_id=UNFRAMED_ID)
    make_clip(
        media / f"videos/{UNFRAMED_ID}.mp4",
        kind="silent",
        duration_s=1.0,
        width=144,
        height=256,
        seed=3,
    )
    fixture.video_ids.append(UNFRAMED_ID)
    return fixture


def count(url: str, kind: AnnotationKind) -> int:
    with db.session_scope(url) as session:
        return session.scalar(select(func.count()).where(Annotation.kind == kind))


def test_enrich_extracts_frames_then_annotates_and_a_rerun_asks_nothing(rows, db_url, sandbox_env):
    from gettok.flows.enrich import enrich_campaign

    result = enrich_campaign(rows.campaign, get_settings())
    assert result.frames.videos_done == 1 and result.frames.frames_written >= 1
    with db.session_scope(db_url) as session:
        assert session.scalar(select(func.count()).where(Frame.video_id == UNFRAMED_ID)) >= 1
    done = {k.kind: k.done for k in result.kinds}
    assert done == {
        "description": 4,
        "stance": 4,
        "sentiment": 4,
        "summary": 4,
        "summary_check": 4,
    }
    assert count(db_url, AnnotationKind.onscreen_text) == 4
    requests = sandbox_env.state.counters["llm_requests"]
    assert requests == 20 and result.spent_usd == pytest.approx(
        sum(k.cost_usd for k in result.kinds)
    )
    assert "description (sandbox-vision): 4 done" in result.summary()

    again = enrich_campaign(rows.campaign, get_settings())
    assert again.frames.videos_done == 0
    assert all(k.done == 0 for k in again.kinds)
    assert sandbox_env.state.counters["llm_requests"] == requests


def test_budget_stops_new_requests_at_the_limit(rows, db_url, sandbox_env):
    from gettok.flows.enrich import enrich_campaign

    settings = get_settings(llm_batch_size=1)
    # Room for one summary at its worst (every allowed output token), not two: the ceiling.
    expected = estimate_enrich(db_url, settings, rows.campaign, ["summary"]).total_usd / 4
    prompt = load_prompt("summary")
    output_price = settings.llm_prices["sandbox-vision"][1] / 1e6
    one = expected + (prompt.max_output_tokens - prompt.expected_output_tokens) * output_price
    result = enrich_campaign(
        rows.campaign,
        settings,
        kinds=["summary", "sentiment"],
        budget_usd=1.1 * one,
        frames=False,
    )
    summary, sentiment = result.kinds
    assert (summary.done, summary.skipped_budget) == (1, 3)
    assert (sentiment.done, sentiment.skipped_budget) == (0, 4)  # reached: nothing new starts
    assert (
        result.skipped_budget == 7
        and "0 done, 0 refused, 0 invalid, 0 failed, 4 left for budget" in result.summary()
    )
    assert 0 < result.spent_usd <= 1.1 * one
    assert sandbox_env.state.counters["llm_requests"] == 1
    assert count(db_url, AnnotationKind.summary) == 1  # nothing written for the skipped
    assert count(db_url, AnnotationKind.sentiment) == 0

    # The next run with budget left does only what the last one could not afford.
    client = LlmClient(settings)
    rest = annotate_videos(
        db_url,
        settings,
        rows.campaign,
        "summary",
        rows.video_ids,
        client=client,
        budget=Budget(1.0),
    )
    client.close()
    assert (rest.done, rest.skipped_taken) == (3, 1)
    assert rest.prompt_hash == plan_for("summary", rows.campaign, settings).prompt_hash


def test_dry_run_estimates_without_asking_and_is_close(rows, db_url, sandbox_env):
    from gettok.flows.enrich import enrich_campaign

    settings = get_settings()
    estimate = estimate_enrich(db_url, settings, rows.campaign)
    assert sandbox_env.state.counters["llm_requests"] == 0
    assert {k.kind: k.videos for k in estimate.kinds} == {
        "description": 4,
        "stance": 4,
        "sentiment": 4,
        "summary": 4,
        "summary_check": 4,  # one per summary the run will write
    }
    assert count(db_url, AnnotationKind.description) == 0
    assert estimate.within_budget and estimate.budget_usd == settings.llm_budget_usd

    result = enrich_campaign(rows.campaign, settings)
    actual_in = sum(k.input_tokens for k in result.kinds)
    estimated_in = sum(k.input_tokens for k in estimate.kinds)
    # The sandbox counts tokens its own way (word pieces), the estimate by characters / 4; the
    # unframed video is estimated with llm_max_frames frames but the clip gives fewer.
    assert 0.5 < estimated_in / actual_in < 2.0, (estimated_in, actual_in)
    assert estimate.total_usd >= result.spent_usd  # expected answers are longer than the sandbox's


@SQLITE_ONLY
def test_unknown_price_stops_the_run_before_any_request(rows, sandbox_env, monkeypatch):
    from gettok.flows.enrich import enrich_campaign

    monkeypatch.setenv("GETTOK_LLM_STANCE_MODEL", "llama3.1:8b")
    with pytest.raises(PriceUnknown, match="llama3.1:8b"):
        enrich_campaign(rows.campaign, get_settings(), frames=False)
    assert sandbox_env.state.counters["llm_requests"] == 0


def write_campaign(path) -> str:
    stance = PERU["stance"]
    path.write_text(
        f'name = "{PERU["name"]}"\nstart_date = "{PERU["start_date"]}"\n'
        f'end_date = "{PERU["end_date"]}"\n'
        '[query]\nregion_codes = ["PE"]\nkeywords = ["castillo"]\n'
        f'[stance]\ntarget = "{stance["target"]}"\nlabels = {stance["labels"]!r}\n'.replace(
            "'", '"'
        ),
        encoding="utf-8",
    )
    return str(path)


@SQLITE_ONLY
def test_cli_dry_run_prints_the_estimate(rows, tmp_path, sandbox_env):
    campaign = write_campaign(tmp_path / "peru.toml")
    out = CliRunner().invoke(
        app, ["enrich", "--campaign", campaign, "--dry-run", "--budget-usd", "0.01"]
    )
    assert out.exit_code == 0, out.output
    assert "description  sandbox-vision" in out.output
    assert "OVER BUDGET" in out.output  # the sandbox's price makes this run cost more than a cent
    assert sandbox_env.state.counters["llm_requests"] == 0
    bad = CliRunner().invoke(app, ["enrich", "--campaign", campaign, "--kind", "mood"])
    assert bad.exit_code == 2 and "unknown --kind mood" in bad.output


@SQLITE_ONLY
def test_cli_runs_the_prefect_flow(rows, tmp_path, sandbox_env, prefect_harness, db_url):
    campaign = write_campaign(tmp_path / "peru.toml")
    out = CliRunner().invoke(
        app, ["enrich", "--campaign", campaign, "--kind", "summary", "--budget-usd", "5"]
    )
    assert out.exit_code == 0, out.output
    assert "summary (sandbox-vision): 4 done" in out.output
    assert count(db_url, AnnotationKind.summary) == 4
    assert count(db_url, AnnotationKind.description) == 0  # only the kind asked for


@SQLITE_ONLY
def test_flow_takes_prefect_rate_limit_slots(rows, db_url, sandbox_env, prefect_harness, tmp_path):
    from prefect.client.orchestration import get_client

    from gettok.flows.enrich import enrich

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name("llm-test-rate", 5, slot_decay_per_second=50)
    path = campaign_file(tmp_path)
    assert load_campaign(Path(path)) == rows.campaign
    result = enrich(path, kinds=["sentiment"], shared_rate_limit="llm-test-rate")
    assert result.kinds[0].done == 4
    with pytest.raises(ValueError, match="llm-missing-limit"):  # fails before any request
        enrich(path, kinds=["summary"], shared_rate_limit="llm-missing-limit")
    assert count(db_url, AnnotationKind.summary) == 0


@SQLITE_ONLY
def test_wrong_model_stops_the_run_with_a_clear_error(
    rows, db_url, sandbox_env, monkeypatch, tmp_path, prefect_harness
):
    monkeypatch.setenv("GETTOK_LLM_SUMMARY_MODEL", "gpt-4o-mini")  # priced, but not served
    monkeypatch.setenv("GETTOK_LLM_PRICES", '{"gpt-4o-mini": [0.15, 0.6]}')
    campaign = write_campaign(tmp_path / "peru.toml")
    out = CliRunner().invoke(app, ["enrich", "--campaign", campaign, "--kind", "summary"])
    assert out.exit_code == 2 and "HTTP 404 for model 'gpt-4o-mini'" in out.output
    assert "GETTOK_LLM_MODEL=sandbox-vision" in out.output
    assert count(db_url, AnnotationKind.summary) == 0  # no failure recorded against the videos
