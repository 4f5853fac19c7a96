"""Language as a hint, over HTTP with the multilingual Whisper base: clips downloaded from the
sandbox keep their own language under a Spanish hint; `force_language` makes both Spanish. The
text identifier (fastText lid.176) then gives each transcript's and caption's language."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from gettok import db
from gettok.models.schema import TextLanguage, Transcript, Video
from gettok.settings import get_settings
from gettok.tasks.download.downloader import download_videos
from gettok.tasks.transcribe import bundled_base, transcribe_videos, whisper_options
from gettok.tasks.transcribe.language import choose_language
from gettok.tasks.transcribe.text_language import CAPTION, identify, identify_campaign
from gettok.tasks.transcribe.wer import word_error_rate
from gettok.tasks.transcribe.whisper import WhisperOptions

DAY = date(2022, 12, 1)


@pytest.fixture
def model_cache(tmp_path_factory, monkeypatch):
    folder = tmp_path_factory.getbasetemp() / "gettok-models"  # one join per test session
    monkeypatch.setenv("GETTOK_MODEL_CACHE", str(folder))
    return folder


def test_the_halves_join_once_into_the_pinned_model(model_cache):
    first = bundled_base.model_dir()
    assert (first / "model.bin").stat().st_size == bundled_base.SIZE
    stamp = (first / "model.bin").stat().st_mtime_ns
    assert bundled_base.model_dir() == first  # cached: not joined again
    assert (first / "model.bin").stat().st_mtime_ns == stamp
    assert not [p for p in model_cache.iterdir() if p.name.startswith(".joining-")]
    options = WhisperOptions(model="base")
    assert options.model_name == "base"
    assert options.provenance()["weights_sha256"] == bundled_base.SHA256


def test_choice_rules_hint_only_below_the_threshold():
    hint = WhisperOptions(model="base", language="es", hint_below=0.5)
    assert choose_language(("en", 0.9), hint, True).model_dump() == {
        "language": "en", "detected": "en", "probability": 0.9, "source": "detected",
    }  # fmt: skip
    assert choose_language(("en", 0.3), hint, True).source == "hint"
    assert choose_language(("en", 0.3), hint, True).language == "es"
    forced = hint.model_copy(update={"force_language": True})
    assert choose_language(("en", 0.99), forced, True).language == "es"
    assert choose_language(("en", 0.99), forced, True).detected == "en"
    assert choose_language(None, hint, False).source == "model"
    # Forced and no-hint settings hash as before hints existed: their transcripts stay valid.
    assert forced.provenance()["language"] == "es" and "language_hint" not in forced.provenance()
    assert hint.provenance()["language"] is None and hint.provenance()["language_hint"] == "es"


def test_text_identifier_uses_the_bundled_model_only():
    assert identify("el presidente anunció nuevas medidas contra la crisis")[0] == "es"
    assert identify("the president announced new measures against the crisis")[0] == "en"
    assert identify("#fyp @someone 2024") == (None, None)


def test_spanish_hint_keeps_each_clip_in_its_own_language_and_force_makes_both_spanish(
    sandbox_env, sqlite_url, monkeypatch, model_cache
):
    monkeypatch.setenv("GETTOK_DATABASE_URL", sqlite_url)
    settings = get_settings()
    public = [
        v
        for v in sandbox_env.state.corpus.videos_on(DAY)
        if v.api_visible and v.web_state == "public" and v.clip_kind == "speech"
    ]
    spanish = next(v for v in public if v.language == "es")
    english = next(v for v in public if v.language == "en")
    chosen = {spanish.id: spanish, english.id: english}
    with db.session_scope(sqlite_url) as session:
        for v in chosen.values():
            session.add(
                Video(id=v.id, username=v.username, raw={}, video_description=v.description)
            )
    download_videos([(v.id, v.username) for v in chosen.values()], settings)  # over HTTP

    hinted = whisper_options(settings, "es", model="base")
    assert sorted(transcribe_videos(list(chosen), settings, hinted).done) == sorted(chosen)
    rows = _whisper_rows(sqlite_url)
    assert {i: rows[i].language for i in chosen} == {spanish.id: "es", english.id: "en"}
    assert {rows[i].language_source for i in chosen} == {"detected"}
    assert rows[english.id].detected_language == "en"
    assert rows[english.id].language_probability >= hinted.hint_below
    for video_id, video in chosen.items():  # each clip's own words, in its own language
        assert word_error_rate([video.speech_text], [rows[video_id].text]) < 0.75

    identify_campaign(sqlite_url)
    with db.session_scope(sqlite_url) as session:
        found = {(r.video_id, r.source): r.language for r in session.scalars(select(TextLanguage))}
    assert found[(spanish.id, "faster-whisper")] == "es"
    assert found[(english.id, "faster-whisper")] == "en"
    assert {(i, CAPTION) for i in chosen} <= set(found)
    assert identify_campaign(sqlite_url) == 0  # nothing new: nothing identified again

    forced = whisper_options(settings, "es", force_language=True, model="base")
    transcribe_videos(list(chosen), settings, forced)
    rows = _whisper_rows(sqlite_url)  # the current ones: the forced run's
    assert {i: rows[i].language for i in chosen} == {spanish.id: "es", english.id: "es"}
    assert {rows[i].language_source for i in chosen} == {"forced"}
    assert rows[english.id].detected_language == "en"  # what Whisper heard is still recorded
    with db.session_scope(sqlite_url) as session:
        history = session.scalars(select(Transcript).where(Transcript.is_current.is_(False)))
        assert {t.video_id for t in history} == set(chosen)  # the hinted ones kept, not current


def _whisper_rows(url: str) -> dict[int, Transcript]:
    with db.session_scope(url) as session:
        rows = session.scalars(
            select(Transcript).where(
                Transcript.engine == "faster-whisper", Transcript.is_current.is_(True)
            )
        ).all()
        session.expunge_all()
    return {t.video_id: t for t in rows}
