"""`gettok comments` and `gettok users` on the real Prefect engine and the sandbox, their bad
input, and the pipeline's `comments_top_n` option."""

from __future__ import annotations

from datetime import date

import pytest
from prefect import flow
from sqlalchemy import func, select
from typer.testing import CliRunner

from gettok import db
from gettok.cli import app
from gettok.db import session_scope
from gettok.flows.pipeline import RunDates, Stages, run_pipeline
from gettok.models.campaign import load_campaign
from gettok.models.schema import Comment, CommentCheckpoint, TikTokUser
from gettok.sandbox.config import SandboxConfig
from gettok.settings import get_settings
from gettok.tasks.collect import collect_campaign
from tests.test_bad_input_cli import PERU

DAY = date(2022, 12, 7)


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(fault_seed=20221207, videos_per_day=40)


@pytest.fixture
def env(sandbox_env, monkeypatch, tmp_path):
    """Settings pointing at the sandbox and a SQLite file; nothing collected yet."""
    url = f"sqlite:///{tmp_path / 'gettok.db'}"
    monkeypatch.setenv("GETTOK_DATABASE_URL", url)
    db.upgrade(url)
    yield url
    db.get_engine.cache_clear()


def gettok(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def count(url: str, model) -> int:
    with session_scope(url) as session:
        return session.scalar(select(func.count()).select_from(model))


def test_comments_and_users_commands_collect_and_a_rerun_does_nothing(prefect_harness, env):
    code, out = gettok("comments", "--campaign", str(PERU))
    assert code == 2 and "collect it first" in out  # nothing collected: one clear line
    collect_campaign(get_settings(), load_campaign(PERU), DAY, DAY)

    code, out = gettok("comments", "--campaign", str(PERU), "--top", "2")
    assert code == 0, out
    assert "comments: 2 done" in out and count(env, Comment) > 0
    code, out = gettok("comments", "--campaign", str(PERU), "--top", "2")
    assert code == 0 and "0 done, 2 skipped" in out and "0 requests" in out

    code, out = gettok("users", "--campaign", str(PERU), "--limit", "3")
    assert code == 0, out
    assert "users: 3 done" in out and count(env, TikTokUser) == 3


def test_bad_comment_requests_are_refused_in_one_line(prefect_harness, env):
    code, out = gettok("comments", "--campaign", str(PERU), "--top", "1", "--video-id", "1")
    assert code == 2 and "--top or --video-id" in out
    code, out = gettok("comments", "--campaign", str(PERU), "--top", "0")
    assert code == 2
    collect_campaign(get_settings(), load_campaign(PERU), DAY, DAY)
    code, out = gettok("comments", "--campaign", str(PERU), "--video-id", "12345")
    assert code == 2 and "not videos of campaign 'peru_2022'" in out and "12345" in out
    assert count(env, CommentCheckpoint) == 0


def test_the_pipeline_collects_the_top_videos_comments_when_asked(prefect_harness, env):
    settings = get_settings()
    stages = Stages(
        download=lambda *_, **__: None,
        transcribe=lambda **_: None,
        enrich=lambda **_: None,
    )

    @flow
    def one_day(top_n: int | None):
        dates = RunDates(start=DAY, end=DAY)
        return run_pipeline(
            load_campaign(PERU), str(PERU), settings, dates, None, None, stages, top_n
        )

    assert count(env, Comment) == 0 and one_day(None).notes == []
    assert count(env, Comment) == 0  # off by default
    result = one_day(2)
    assert any(note.startswith("comments: 2 done") for note in result.notes), result.notes
    assert count(env, CommentCheckpoint) == 2 and count(env, Comment) > 0


def test_a_campaign_file_may_ask_for_comments():
    from gettok.models.campaign import CampaignError, parse_campaign

    base = {"name": "c", "start_date": "2022-12-01", "query": {"keywords": ["Castillo"]}}
    assert parse_campaign(base).comments_top_n is None  # off unless asked
    assert parse_campaign({**base, "comments_top_n": 50}).comments_top_n == 50
    with pytest.raises(CampaignError, match="comments_top_n"):
        parse_campaign({**base, "comments_top_n": 0})
