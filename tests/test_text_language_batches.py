"""The text identifier reads its pending texts a batch at a time: every transcript and caption of
the campaign's videos is identified once across many small batches (a batch that ends inside a
video's texts included), and nothing outside the campaign is."""

from __future__ import annotations

from sqlalchemy import select

from bench.scale_data import add_downstream, add_videos, scale_campaign
from gettok import db
from gettok.models.schema import TextLanguage, Transcript, Video
from gettok.tasks.transcribe import text_language
from gettok.tasks.transcribe.text_language import CAPTION, MODEL, identify_campaign

VIDEOS = 60


def _identified(url: str) -> list[tuple[int, str, str]]:
    with db.session_scope(url) as session:
        rows = session.execute(
            select(TextLanguage.video_id, TextLanguage.source, TextLanguage.text_sha256).where(
                TextLanguage.model == MODEL
            )
        ).all()
    return sorted(tuple(r) for r in rows)


def test_every_text_of_the_campaign_is_identified_once_across_batches(db_url, monkeypatch):
    monkeypatch.setattr(text_language, "BATCH", 4)  # ends inside a video's texts
    db.upgrade(db_url)
    ids = add_videos(db_url, scale_campaign(), VIDEOS)
    add_downstream(db_url, ids, frames=False)
    outsider = ids[-1] + 1
    with db.session_scope(db_url) as session:  # collected, but by no campaign
        session.add(Video(id=outsider, raw={}, video_description="fuera de la campaña"))
        session.add(
            Transcript(
                video_id=outsider,
                engine="faster-whisper",
                model="small",
                settings={},
                settings_hash="x",
                status="ok",
                text="una transcripción de otro video",
            )
        )
    with db.session_scope(db_url) as session:
        transcripts = session.execute(
            select(Transcript.video_id, Transcript.engine, Transcript.text_sha256).where(
                Transcript.status == "ok",
                Transcript.text_sha256.is_not(None),
                Transcript.video_id != outsider,
            )
        ).all()
        captions = session.execute(
            select(Video.id, Video.video_description).where(Video.id != outsider)
        ).all()
    expected = sorted(
        {tuple(t) for t in transcripts}
        | {(v, CAPTION, text_language.sha256(text or "")) for v, text in captions}
    )
    assert len(transcripts) > VIDEOS  # TikTok's and Whisper's: more texts than videos

    assert identify_campaign(db_url, "scale") == len(expected)
    assert _identified(db_url) == expected
    assert identify_campaign(db_url, "scale") == 0  # nothing new: nothing identified again
    assert _identified(db_url) == expected


def test_each_batch_of_transcripts_is_asked_past_the_last_one(db_url, monkeypatch):
    """Keyset pages: a batch asked from the start again walked every text identified before it
    (at a million videos, every batch of a backfill walked the campaign)."""
    from sqlalchemy import event

    monkeypatch.setattr(text_language, "BATCH", 4)
    db.upgrade(db_url)
    add_downstream(db_url, add_videos(db_url, scale_campaign(), 12), frames=False)
    batches: list[str] = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        if "FROM transcripts" in statement and "LIMIT" in statement.upper():
            batches.append(statement)

    engine = db.get_engine(db_url)
    event.listen(engine, "before_cursor_execute", keep)
    try:
        written = text_language._identify_transcripts(db_url, "scale")
    finally:
        event.remove(engine, "before_cursor_execute", keep)

    assert written > 8 and len(batches) >= 3  # three or more batches of 4
    assert "transcripts.id >" not in batches[0]
    assert all("transcripts.id >" in statement for statement in batches[1:])
