"""`read_frame`: a query's rows as a frame typed from its SQL types, value for value what the
ORM reads, on both backends (Postgres through COPY as CSV, SQLite through tuples)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import polars as pl
import pytest
from sqlalchemy import insert, select

from bench.scale_data import build
from gettok.db import session_scope
from gettok.models.schema import Transcript
from gettok.query_frame import UTC_DATETIME, read_frame

# Texts CSV must quote or could mistake for something else (a NULL, a separator, a row's end).
TEXTS = ["", None, "a,b", 'say "hi"', "two\nlines\r\n", "\\N", "NULL", "José 😀", " lead", "t"]
PROBABILITIES = [2 / 3, 1e-300, 0.1, None, 1.0, 123456.789, -0.0, 5e-324, None, 0.5]
COLUMNS = (
    Transcript.id,
    Transcript.video_id,
    Transcript.text,
    Transcript.language_probability,
    Transcript.is_empty,
    Transcript.is_current,
    Transcript.created_at,
)


@pytest.fixture
def stored(db_url) -> list[int]:
    """Transcripts holding every odd value, each with its own creation time (microseconds)."""
    _, videos = build(db_url, 2, name="frames")
    rng = random.Random(7)
    rows = [
        {
            "video_id": videos[i % 2],
            "engine": "faster-whisper",
            "model": f"m{i}",
            "settings": {},
            "settings_hash": "h",
            "text": text,
            "language_probability": probability,
            "is_empty": i % 3 == 0,
            "is_current": i % 2 == 0,
            "created_at": datetime(2024, 1 + i, 2, 3, 4, 5, rng.randrange(10**6), tzinfo=UTC),
        }
        for i, (text, probability) in enumerate(zip(TEXTS, PROBABILITIES, strict=True))
    ]
    with session_scope(db_url) as session:
        return list(session.scalars(insert(Transcript).returning(Transcript.id), rows))


def test_a_frame_holds_what_the_orm_reads(db_url, stored):
    query = select(*COLUMNS).where(Transcript.id.in_(stored)).order_by(Transcript.id)
    with session_scope(db_url) as session:
        frame = read_frame(session, query)
        rows = session.execute(query).all()
    assert frame.schema == {
        "id": pl.Int64,
        "video_id": pl.Int64,
        "text": pl.Utf8,
        "language_probability": pl.Float64,
        "is_empty": pl.Boolean,
        "is_current": pl.Boolean,
        "created_at": UTC_DATETIME,
    }
    assert frame.rows() == [tuple(row) for row in rows]
    assert frame["text"].to_list() == TEXTS
    assert frame["language_probability"].to_list() == PROBABILITIES


def test_no_rows_is_an_empty_frame_of_the_same_types(db_url, stored):
    with session_scope(db_url) as session:
        empty = read_frame(session, select(*COLUMNS).where(Transcript.id < 0))
        full = read_frame(session, select(*COLUMNS))
    assert empty.height == 0 and empty.schema == full.schema


def test_a_column_without_a_frame_type_is_named(db_url):
    with session_scope(db_url) as session, pytest.raises(TypeError, match="'settings'"):
        read_frame(session, select(Transcript.id, Transcript.settings))
