"""Run summaries speak of the run: counts limited to its days, and empty transcripts named."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select, update

from gettok import db
from gettok.models.schema import Transcript
from gettok.progress import stage_counts
from tests.dataset_for_outputs import build_dataset


def test_counts_of_a_run_cover_its_days_and_say_empty(db_url):
    data = build_dataset(db_url, days=4, per_day=7, start=date(2022, 12, 10))
    days = (date(2022, 12, 11), date(2022, 12, 12))
    in_run = [v for v in data.videos if days[0] <= v.day <= days[1]]
    transcribed = [v.id for v in in_run if v.whisper is not None]
    assert 0 < len(in_run) < len(data.videos) and len(transcribed) >= 2
    with db.session_scope(db_url) as session:  # half of them heard only music
        session.execute(
            update(Transcript)
            .where(Transcript.video_id.in_(transcribed[::2]))
            .values(is_empty=True)
        )
        statuses = dict(session.execute(select(Transcript.video_id, Transcript.status)).all())

    whole = stage_counts(db_url, data.campaign)
    run = stage_counts(db_url, data.campaign, posted=days)

    assert whole.videos == len(data.videos) and run.videos == len(in_run)
    empty = len(transcribed[::2])
    ok = sum(1 for i in transcribed if statuses[i] == "ok") - empty
    assert run.transcripts.get("faster-whisper/empty") == empty
    assert run.transcripts.get("faster-whisper/ok", 0) == ok
