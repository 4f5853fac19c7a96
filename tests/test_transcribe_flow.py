"""The transcribe flow on the real Prefect engine: the `gpu` limit holds across parallel runs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from prefect.concurrency._asyncio import ConcurrencySlotAcquisitionError
from sqlalchemy import select
from typer.testing import CliRunner

from gettok import db
from gettok.cli import app
from gettok.models.schema import Transcript
from gettok.sandbox.media import make_clip
from gettok.settings import get_settings
from gettok.tasks.transcribe import ensure_transcription_limit, model_slot
from gettok.tasks.transcribe.wer import word_error_rate
from tests.test_transcribe import BASE_ID, MAX_WER, SMALL, SPEECH, add_videos

CAMPAIGN = """
name = "{name}"
start_date = "2022-11-20"
end_date = "2022-11-21"
language = "en"
[query]
region_codes = ["PE"]
keywords = ["castillo"]
"""


@pytest.fixture
def two_campaigns(sqlite_url, settings_env, monkeypatch, tmp_path, prefect_harness):
    monkeypatch.setenv("GETTOK_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("GETTOK_WHISPER_MODEL", "tiny.en")
    monkeypatch.setenv("GETTOK_TRANSCRIPTION_LIMIT", "gpu-test")
    monkeypatch.setenv("GETTOK_TRANSCRIPTION_BATCH_FILES", "1")  # several model sections per run
    settings = get_settings()
    clips = {
        name: make_clip(tmp_path / f"{name}.mp4", text=SPEECH[name], seed=n, **SMALL)
        for n, name in enumerate(["council", "farmers"])
    }
    files = {}
    for n, campaign in enumerate(["peru", "ecuador"]):
        ids = {BASE_ID + 10 * n + k: ("speech", clips[name]) for k, name in enumerate(clips)}
        add_videos(sqlite_url, campaign, ids, settings.resolved_media_dir)
        files[campaign] = tmp_path / f"{campaign}.toml"
        files[campaign].write_text(CAMPAIGN.format(name=campaign))
    return settings, files


def test_parallel_flow_runs_never_hold_the_model_at_once(two_campaigns):
    from gettok.flows.transcribe import transcribe

    settings, files = two_campaigns
    assert settings.transcription_concurrency == 1
    ensure_transcription_limit(settings)
    results, spans, errors = {}, {}, []
    barrier = threading.Barrier(len(files))

    def run(name: str) -> None:
        try:
            barrier.wait()
            start = time.monotonic()
            results[name] = transcribe(campaign_file=str(files[name]))
            spans[name] = (start, time.monotonic())
        except Exception as exc:  # surfaced below, with the thread's own error
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    # The runs themselves overlapped, so only the limit can have kept their model work apart.
    (a0, a1), (b0, b1) = spans.values()
    assert a0 < b1 and b0 < a1
    sections = sorted(s for r in results.values() for s in r.model_sections)
    assert len(sections) == 4  # one per video: batches of one file
    for (_, end), (next_start, _) in zip(sections, sections[1:], strict=False):
        assert end <= next_start, f"model sections overlap: {sections}"
    for result in results.values():
        assert len(result.done) == 2 and not result.failed

    with db.session_scope(settings.resolved_database_url) as session:
        rows = session.scalars(select(Transcript).where(Transcript.engine == "faster-whisper"))
        texts = {r.video_id: r.text for r in rows}
    assert len(texts) == 4
    assert word_error_rate([SPEECH["council"]], [texts[BASE_ID + 10]]) < MAX_WER


def test_strict_acquisition_refuses_a_missing_limit(prefect_harness):
    with pytest.raises(ConcurrencySlotAcquisitionError):
        with model_slot("no-such-limit-for-gettok"):
            pass


def test_cli_transcribes_what_is_pending(two_campaigns):
    _, files = two_campaigns
    runner = CliRunner()
    first = runner.invoke(app, ["transcribe", "--campaign", str(files["peru"])])
    assert first.exit_code == 0, first.output
    assert "peru: 2 transcribed, 0 empty, 0 failed" in first.output
    again = runner.invoke(app, ["transcribe", "--campaign", str(files["peru"])])
    assert again.exit_code == 0 and "peru: 0 transcribed, 0 empty, 0 failed" in again.output


def test_missing_campaign_file_is_a_clear_error(settings_env):
    result = CliRunner().invoke(app, ["transcribe", "--campaign", str(Path("nope.toml"))])
    assert result.exit_code == 2 and "no such campaign file" in result.output


def test_waiting_for_the_gpu_slot_is_said(prefect_harness, settings_env, caplog):
    import logging

    from gettok.settings import get_settings
    from gettok.tasks.transcribe.transcriber import ensure_transcription_limit, model_slot

    settings = get_settings()
    ensure_transcription_limit(settings)
    with caplog.at_level(logging.INFO, logger="gettok"), model_slot(settings.transcription_limit):
        pass
    assert "waiting for a slot of the 'gpu' limit" in caplog.text
    assert "got the 'gpu' slot after" in caplog.text
