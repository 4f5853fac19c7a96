"""Migration 0013_lang on existing data: each video's newest ok transcript per engine becomes
current, text hashes are filled in, and annotations take their inputs from their recorded
provenance, so nothing made before the upgrade counts as stale."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import select, text

from gettok import db
from gettok.models.schema import Annotation, Transcript
from gettok.tasks.annotate.provenance import is_stale

NOW = "2024-01-05 00:00:00"


def _insert(conn, table: str, **values) -> None:
    columns = ", ".join(values)
    conn.execute(
        text(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(':' + k for k in values)})"),
        values,
    )


def test_upgrade_backfills_current_transcripts_hashes_and_annotation_inputs(db_url):
    from alembic import command

    command.downgrade(db.alembic_config(db_url), "0009")
    with db.get_engine(db_url).begin() as conn:
        _insert(conn, "videos", id=1, raw="{}", first_seen_at=NOW, last_seen_at=NOW)
        _insert(conn, "frames", id=7, video_id=1, frame_index=0, path="f.jpg", width=1,
                height=1, source="video", created_at=NOW)  # fmt: skip
        rows = [  # id, model, status, text, created_at
            (1, "tiny.en", "ok", "hola a todos", "2024-01-01 00:00:00"),
            (2, "large-v3", "ok", "hola a todos ustedes", "2024-01-02 00:00:00"),
            (3, "medium", "failed", None, "2024-01-03 00:00:00"),
        ]
        for row_id, model, status, words, created in rows:
            _insert(conn, "transcripts", id=row_id, video_id=1, engine="faster-whisper",
                    model=model, settings="{}", settings_hash=model, status=status,
                    text=words, is_empty=False, created_at=created)  # fmt: skip
        inputs = {"inputs": {"transcript_id": 2, "frame_ids": [7]}}
        _insert(conn, "annotations", id=1, video_id=1, kind="stance", status="ok",
                model="m", prompt_id="p", prompt_hash="h", settings=json.dumps(inputs),
                tries=1, is_sandbox=False, created_at=NOW)  # fmt: skip
    db.upgrade(db_url)
    with db.session_scope(db_url) as session:
        current = {t.id: t.is_current for t in session.scalars(select(Transcript))}
        newest = session.get(Transcript, 2)
        assert newest.text_sha256 == hashlib.sha256(b"hola a todos ustedes").hexdigest()
        annotation = session.get(Annotation, 1)
        assert (annotation.transcript_id, annotation.first_frame_id) == (2, 7)
        assert annotation.transcript_sha256 == newest.text_sha256
        assert annotation.inputs_key == ""
        stale = session.scalar(select(is_stale(Annotation)).where(Annotation.id == 1))
    assert current == {1: False, 2: True, 3: False}
    assert stale is not None and not stale
