"""Transcription with the real tiny.en model on real mp4s (espeak-ng speech, music, no audio).

WER threshold: tiny.en on these espeak-ng clips measured 0.057 corpus WER (worst clip 0.10) over
ten voices; we allow 0.25 per clip. A clip that got another clip's words, lost half its words or
came back empty scores 0.5-1.0, so the bound still fails on every mistake it exists to catch.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gettok import db
from gettok.models.schema import (
    Campaign,
    CampaignVideo,
    Download,
    DownloadStatus,
    Transcript,
    Video,
)
from gettok.sandbox.clip_audio import speak
from gettok.sandbox.media import make_clip, write_audio
from gettok.settings import get_settings
from gettok.tasks.transcribe import (
    TIKTOK_ENGINE,
    WHISPER_ENGINE,
    pending_videos,
    record_tiktok_transcripts,
    transcribe_videos,
    whisper_options,
)
from gettok.tasks.transcribe.audio import decode_clip
from gettok.tasks.transcribe.wer import word_error_rate
from gettok.tasks.transcribe.whisper import WhisperOptions, transcribe_clips
from gettok.tasks.transcribe.whisper_model import load_model

MAX_WER = 0.25
SPEECH = {
    "council": "The city council met on Tuesday to discuss the new budget for public schools.",
    "farmers": "Farmers in the northern valley say the harvest will be smaller this year.",
    "music": "",
}
SMALL = {"width": 64, "height": 64, "fps": 5}  # the picture is irrelevant here: keep encoding fast


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """One file of each kind a download can leave, generated once for the module."""
    d = tmp_path_factory.mktemp("clips")
    files = {
        "council": make_clip(d / "council.mp4", text=SPEECH["council"], seed=1, **SMALL),
        "farmers": make_clip(d / "farmers.mp4", text=SPEECH["farmers"], seed=4, **SMALL),
        "music": make_clip(d / "music.mp4", kind="music", duration_s=8, **SMALL),
        "silent": make_clip(d / "silent.mp4", kind="silent", duration_s=2, **SMALL),
        "slides": write_audio(d / "slides.m4a", speak(SPEECH["farmers"], "en", seed=7)),
    }
    corrupt = d / "corrupt.mp4"  # an ftyp box, then garbage: passes a naive "is it mp4" check
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x07garbage" * 500)
    files["corrupt"] = corrupt
    return files


def test_batch_maps_each_clip_to_its_own_words(clips):
    names = ["council", "music", "farmers", "silent"]
    options = WhisperOptions(model="tiny.en", language="en")
    results = transcribe_clips(load_model(options), [decode_clip(clips[n]) for n in names], options)
    council, music, farmers, silent = results

    assert word_error_rate([SPEECH["council"]], [council.text]) < MAX_WER
    assert word_error_rate([SPEECH["farmers"]], [farmers.text]) < MAX_WER
    assert word_error_rate([SPEECH["farmers"]], [council.text]) > 0.7  # not the neighbour's words
    for speech in (council, farmers):
        assert not speech.is_empty and speech.language == "en"
        assert speech.segments and all(
            0 <= s.start <= s.end <= speech.duration_s + 0.05 for s in speech.segments
        )
    assert music.is_empty and music.has_audio and music.duration_s > 7.5
    assert silent.is_empty and not silent.has_audio and silent.text == ""


def test_without_vad_timestamped_segments_stay_in_their_clip(clips):
    names = ["farmers", "council"]
    options = WhisperOptions(model="tiny.en", vad=False, timestamps=True)
    results = transcribe_clips(load_model(options), [decode_clip(clips[n]) for n in names], options)
    for name, clip in zip(names, results, strict=True):
        assert word_error_rate([SPEECH[name]], [clip.text]) < MAX_WER
        assert clip.segments[0].start < 1.0  # times are the clip's own, not the batch's
        assert clip.segments[-1].end <= clip.duration_s + 0.05


# --- the stage, against the database ------------------------------------------------------------


def add_videos(
    url: str, campaign: str, files: dict[int, tuple[str, Path]], media_dir: Path
) -> None:
    """A campaign whose videos were downloaded to `files` (id -> (kind, path))."""
    with db.session_scope(url) as session:
        row = Campaign(name=campaign, query={}, query_hash="x", start_date=date(2022, 11, 20),
                       region_codes=["PE"])  # fmt: skip
        session.add(row)
        session.flush()
        for video_id, (kind, path) in files.items():
            target = media_dir / "videos" / f"{video_id}{path.suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
            relative = str(target.relative_to(media_dir))
            voice = "hola a todos desde lima" if video_id % 2 else None
            session.add(Video(id=video_id, raw={}, voice_to_text=voice))
            session.flush()  # no ORM relationships: the video row must exist first
            session.add(CampaignVideo(campaign_id=row.id, video_id=video_id))
            slideshow = kind == "slides"
            session.add(Download(
                video_id=video_id,
                status=DownloadStatus.slideshow if slideshow else DownloadStatus.ok,
                path=None if slideshow else relative,
                audio_path=relative if slideshow else None,
                is_slideshow=slideshow,
            ))  # fmt: skip


BASE_ID = 7_170_000_000_000_000_000  # ids above 2**53, like TikTok's


@pytest.fixture
def stage(db_url, clips, settings_env, monkeypatch):
    monkeypatch.setenv("GETTOK_DATABASE_URL", db_url)
    monkeypatch.setenv("GETTOK_WHISPER_MODEL", "tiny.en")
    settings = get_settings()
    kinds = ["council", "music", "silent", "corrupt", "slides"]
    ids = {BASE_ID + n: (kind, clips[kind]) for n, kind in enumerate(kinds)}
    add_videos(db_url, "peru", ids, settings.resolved_media_dir)
    return settings, {kind: video_id for video_id, (kind, _) in ids.items()}


def test_stage_records_every_outcome_and_reruns_do_nothing(stage):
    settings, ids = stage
    url, options = settings.resolved_database_url, whisper_options(settings, "en")
    pending = pending_videos(url, options, "peru")
    assert sorted(pending) == sorted(ids.values())

    result = transcribe_videos(pending, settings, options)
    assert sorted(result.done) == sorted([ids["council"], ids["slides"]])
    assert sorted(result.empty) == sorted([ids["music"], ids["silent"]])
    assert list(result.failed) == [ids["corrupt"]]

    with db.session_scope(url) as session:
        rows = {t.video_id: t for t in session.scalars(select(Transcript))}
    council = rows[ids["council"]]
    assert (
        council.engine == WHISPER_ENGINE and council.model == "tiny.en" and council.status == "ok"
    )
    assert word_error_rate([SPEECH["council"]], [council.text]) < MAX_WER
    assert council.language == "en" and council.duration_s > 3 and not council.is_empty
    assert (
        council.segments[0]["avg_logprob"] < 0 and 0 <= council.segments[0]["no_speech_prob"] <= 1
    )
    assert council.settings["beam_size"] == settings.whisper_beam_size
    assert council.settings["device"] in ("cpu", "cuda") and len(council.settings_hash) == 32
    assert word_error_rate([SPEECH["farmers"]], [rows[ids["slides"]].text]) < MAX_WER
    assert rows[ids["music"]].is_empty and rows[ids["music"]].status == "ok"
    assert rows[ids["silent"]].is_empty and rows[ids["silent"]].text == ""
    failed = rows[ids["corrupt"]]
    assert failed.status == "failed" and "audio" in failed.error and failed.text is None

    # Idempotent: nothing pending, and a rerun of the same ids transcribes nothing.
    assert pending_videos(url, options, "peru") == []
    again = transcribe_videos(list(ids.values()), settings, options)
    assert again.done == again.empty == [] and not again.failed
    assert sorted(again.skipped) == sorted(ids.values())
    # Failures are asked again only on request, and replace their row rather than add one.
    assert pending_videos(url, options, "peru", retry_failed=True) == [ids["corrupt"]]
    retried = transcribe_videos([ids["corrupt"]], settings, options, retry_failed=True)
    assert list(retried.failed) == [ids["corrupt"]]
    # Other settings are other work: a new beam size makes everything pending again.
    other = options.model_copy(update={"beam_size": 1})
    assert sorted(pending_videos(url, other, "peru")) == sorted(ids.values())
    with db.session_scope(url) as session:
        assert session.scalar(select(func.count()).select_from(Transcript)) == len(ids)


def test_tiktok_transcripts_kept_for_comparison(stage):
    settings, ids = stage
    url = settings.resolved_database_url
    assert record_tiktok_transcripts(url, "peru") == 2  # odd ids carry voice_to_text
    assert record_tiktok_transcripts(url, "peru") == 0  # unchanged: nothing to do
    with db.session_scope(url) as session:
        rows = session.scalars(select(Transcript).where(Transcript.engine == TIKTOK_ENGINE)).all()
        assert {r.video_id for r in rows} == {i for i in ids.values() if i % 2}
        assert all(r.text == "hola a todos desde lima" and not r.is_empty for r in rows)
        session.get(Video, ids["music"]).voice_to_text = "nuevo texto de tiktok"
    assert record_tiktok_transcripts(url, "peru") == 1  # re-collected text replaces the old


def test_a_run_with_nothing_new_loads_no_tiktok_transcript(stage):
    """At a million videos, reloading every stored TikTok transcript cost 18 s and 2.4 GB."""
    from sqlalchemy import event

    settings, _ = stage
    url = settings.resolved_database_url
    assert record_tiktok_transcripts(url, "peru") == 2
    loaded = []

    def count(target, _context):
        loaded.append(target.id)

    event.listen(Transcript, "load", count)
    try:
        assert record_tiktok_transcripts(url, "peru") == 0
    finally:
        event.remove(Transcript, "load", count)
    assert loaded == []


def test_provenance_names_the_model_and_hashes_its_weights_never_a_path(tmp_path):
    import hashlib
    import shutil

    from gettok.local_mode import shipped_whisper_model

    shipped = Path(shipped_whisper_model())
    by_path = WhisperOptions(model=str(shipped)).provenance()
    by_name = WhisperOptions(model="tiny.en").provenance()
    weights = hashlib.sha256((shipped / "model.bin").read_bytes()).hexdigest()
    assert by_path["model"] == by_name["model"] == "tiny.en"
    assert by_path["weights_sha256"] == by_name["weights_sha256"] == weights
    assert str(shipped) not in json.dumps(by_path)

    mine = tmp_path / "whisper-es-finetuned"
    shutil.copytree(shipped, mine)
    with open(mine / "model.bin", "ab") as f:
        f.write(b"\0")  # other weights, same files otherwise
    custom = WhisperOptions(model=str(mine)).provenance()
    assert custom["model"] == "whisper-es-finetuned" and str(tmp_path) not in json.dumps(custom)
    assert custom["weights_sha256"] not in (None, weights)
    assert "weights_sha256" not in WhisperOptions(model="large-v3").provenance()  # a hub name
