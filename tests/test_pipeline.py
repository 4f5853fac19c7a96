"""The pipeline flow on the real Prefect engine against the sandbox: every collected video ends
downloaded (or with a status that explains why not), transcribed and annotated, exactly once."""

import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gettok import db
from gettok.flows.pipeline import pipeline, run_dates
from gettok.local_mode import shipped_whisper_model
from gettok.models.campaign import load_campaign, parse_campaign
from gettok.models.schema import Annotation, CampaignVideo, Download, DownloadStatus, Transcript

ROOT = Path(__file__).parents[1]
PERU = ROOT / "campaigns" / "peru_2022.toml"


def campaign(start="2022-12-01", end="2022-12-31"):
    return parse_campaign(
        {"name": "t", "start_date": start, "end_date": end, "query": {"keywords": ["Castillo"]}}
    )


def test_a_scheduled_run_collects_the_last_day_the_index_holds_plus_its_catch_up_days():
    at = datetime(2022, 12, 20, 6, 0, tzinfo=UTC)
    dates = run_dates(campaign(), None, None, at, lag_days=2, catch_up_days=3)
    # 2022-12-17 ended on the 18th at 00:00, 2 days 6 hours before the run: the newest whole day.
    assert dates.scheduled_day == date(2022, 12, 17)
    assert (dates.start, dates.end) == (date(2022, 12, 14), date(2022, 12, 17))


def test_scheduled_runs_stay_inside_the_campaign():
    assert run_dates(campaign(), None, None, datetime(2022, 12, 2, tzinfo=UTC), 2, 7) is None
    late = run_dates(campaign(), None, None, datetime(2023, 2, 1, tzinfo=UTC), 2, 7)
    assert late is None
    edge = run_dates(campaign(), None, None, datetime(2022, 12, 5, 0, 0, tzinfo=UTC), 2, 7)
    assert (edge.start, edge.end) == (date(2022, 12, 1), date(2022, 12, 2))


def test_a_backfill_takes_both_dates_in_order():
    dates = run_dates(campaign(), date(2022, 12, 3), date(2022, 12, 4), None, 2, 7)
    assert (dates.start, dates.end, dates.scheduled_day) == (
        date(2022, 12, 3),
        date(2022, 12, 4),
        None,
    )
    with pytest.raises(ValueError, match="end_date 2022-12-02 is before start_date 2022-12-03"):
        run_dates(campaign(), date(2022, 12, 3), date(2022, 12, 2), None, 2, 7)
    with pytest.raises(ValueError, match="give both start_date and end_date"):
        run_dates(campaign(), date(2022, 12, 3), None, None, 2, 7)


def test_pipeline_processes_every_video_once_and_a_rerun_does_nothing(
    prefect_harness, sandbox_env, monkeypatch, pg_url
):
    monkeypatch.setenv("GETTOK_DATABASE_URL", pg_url)
    monkeypatch.setenv("GETTOK_WHISPER_MODEL", shipped_whisper_model())
    monkeypatch.setenv("GETTOK_LLM_MODEL", "sandbox-vision")
    monkeypatch.setenv("GETTOK_DOWNLOAD_TRANSIENT_BACKOFF_S", "1")
    from gettok.orchestration import ensure_prefect_objects
    from gettok.settings import get_settings

    ensure_prefect_objects(get_settings())
    result = pipeline(
        campaign_file=str(PERU), start_date=date(2022, 12, 7), end_date=date(2022, 12, 7)
    )

    peru = load_campaign(PERU)
    expected = {
        v.id
        for v in sandbox_env.state.corpus.videos_on(date(2022, 12, 7))
        if v.api_visible and _matches(v, peru)
    }
    with db.session_scope(pg_url) as session:
        members = set(session.scalars(select(CampaignVideo.video_id)))
        statuses = dict(session.execute(select(Download.video_id, Download.status)).all())
        whisper = session.scalars(
            select(Transcript.video_id).where(Transcript.engine == "faster-whisper")
        ).all()
        per_kind = dict(
            session.execute(select(Annotation.kind, func.count()).group_by(Annotation.kind)).all()
        )
        duplicates = session.scalar(
            select(func.count()).select_from(
                select(Annotation.video_id, Annotation.kind)
                .group_by(Annotation.video_id, Annotation.kind)
                .having(func.count() > 1)
                .subquery()
            )
        )
    assert members == expected and len(members) > 5
    assert set(statuses) == members  # every video has a download status that explains it
    playable = {
        i for i, s in statuses.items() if s in (DownloadStatus.ok, DownloadStatus.slideshow)
    }
    assert len(whisper) == len(set(whisper)) == len(playable)
    assert (
        per_kind["description"]
        == per_kind["stance"]
        == len({i for i, s in statuses.items() if s is DownloadStatus.ok} | _with_slides(pg_url))
    )
    assert duplicates == 0
    assert result.counts.videos == len(members) and result.collect_state == "completed"

    api_before = sandbox_env.state.counters.copy()
    again = pipeline(
        campaign_file=str(PERU), start_date=date(2022, 12, 7), end_date=date(2022, 12, 7)
    )
    assert again.counts == result.counts
    new_requests = {
        k: sandbox_env.state.counters[k] - api_before.get(k, 0) for k in sandbox_env.state.counters
    }
    for counter in ("research_requests", "llm_requests", "web_pages"):
        assert new_requests.get(counter, 0) == 0, counter


def _with_slides(url: str) -> set[int]:
    with db.session_scope(url) as session:
        return set(
            session.scalars(
                select(Download.video_id).where(Download.status == DownloadStatus.slideshow)
            )
        )


def _matches(video, campaign) -> bool:
    from gettok.sandbox.research_api import _compile

    return _compile(campaign.query.to_api())(video)


def test_a_failed_batch_does_not_stop_the_batches_after_it(
    prefect_harness, sqlite_url, monkeypatch
):
    import gettok.flows.pipeline as pipeline_module
    from gettok.flows.pipeline import PipelineIncomplete
    from gettok.tasks.collect.paging import WindowOutcome

    downloads = []
    first_batch_started = threading.Event()

    def collect_window(ctx, window):
        if window.start.day == 8:  # the first batch must not be left to the second
            assert first_batch_started.wait(60)
        return WindowOutcome(window=window, status="done", videos=1, new_videos=1)

    def download(campaign, **options):
        downloads.append(options["transient_rounds"])
        first_batch_started.set()
        if len(downloads) == 1:
            raise RuntimeError("the first window's batch breaks")

    monkeypatch.setattr(
        pipeline_module,
        "process_new_videos",
        pipeline_module.process_new_videos.with_options(retries=0),
    )
    with pytest.raises(PipelineIncomplete, match="1 batch"):
        _run_windows(sqlite_url, collect_window, download, last_day=8)
    # The first window's batch failed and the final sweep still ran; the second window's batch
    # ran too, unless the final sweep was already queued behind it when it started.
    assert downloads in ([0, 0, 1], [0, 1])


def test_a_batch_with_a_later_one_queued_leaves_its_videos_to_it(
    prefect_harness, sqlite_url, monkeypatch
):
    """Collection outran processing: the windows queued while the first batch ran are processed
    by the final sweep's one pass, not one pass each."""
    from gettok.flows.pipeline import ProcessingChain
    from gettok.tasks.collect.paging import WindowOutcome

    collected, downloads, queued = [], [], []
    submit = ProcessingChain.process

    def process(chain, label, final):
        submit(chain, label, final)
        queued.append(label)

    monkeypatch.setattr(ProcessingChain, "process", process)

    def collect_window(ctx, window):
        collected.append(window)
        return WindowOutcome(window=window, status="done", videos=1, new_videos=1)

    def download(campaign, **options):
        downloads.append(options["transient_rounds"])
        if len(downloads) == 1:  # the first batch is slow: every window is collected and the
            # final sweep queued meanwhile (waited for, not slept on: a loaded CI is slow to submit)
            deadline = time.monotonic() + 120
            while "final sweep" not in queued and time.monotonic() < deadline:
                time.sleep(0.05)

    result = _run_windows(sqlite_url, collect_window, download, last_day=10)
    assert len(collected) == 4 and result.batches == 5
    assert downloads == [0, 1]  # the first window's batch, then the final sweep alone


def _run_windows(url: str, collect_window, download, last_day: int):
    """`run_pipeline` over 7 December .. `last_day` December 2022 in a flow, with instant stages
    but `collect_window` and `download`."""
    from prefect import flow

    from gettok.flows.pipeline import RunDates, Stages, run_pipeline
    from gettok.settings import get_settings

    stages = Stages(
        download=download,
        transcribe=lambda **_: None,
        enrich=lambda **_: None,
        collect_window=collect_window,
    )
    settings = get_settings(database_url=url, tiktok_client_key="k", tiktok_client_secret="s")
    dates = RunDates(start=date(2022, 12, 7), end=date(2022, 12, last_day))

    @flow
    def windows():
        return run_pipeline(campaign(), "t.toml", settings, dates, None, None, stages)

    return windows()
