"""The column-wise export, streamed a page at a time, holds exactly what the per-record export
(tests/export_reference.py, the implementation before streaming) held, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from pydantic import SecretStr
from sqlalchemy import insert, select

from bench.scale_data import build
from gettok.db import session_scope
from gettok.models.api import SANDBOX_RECORD_MARK
from gettok.models.schema import Annotation, AnnotationKind, Transcript, Video
from gettok.tasks.export import dataset, table
from tests import export_reference
from tests.dataset_for_outputs import build_dataset

VIDEOS = 1_300  # three pages of 500 (the last one short)
LATER = datetime(2030, 1, 1, tzinfo=UTC)


def _add_edge_rows(url: str) -> None:
    """Rows the bench data lacks: a newer failed transcript beside an ok one, an on-screen text
    annotation that was refused, a sandbox video and a sandbox annotation, odd handles."""
    with session_scope(url) as s:
        ids = s.scalars(select(Video.id).order_by(Video.id).limit(8)).all()
        s.execute(
            insert(Transcript),
            [
                {"video_id": ids[1], "engine": "faster-whisper", "model": "large-v3",
                 "settings": {}, "settings_hash": "zz", "status": "failed", "created_at": LATER},
                {"video_id": ids[2], "engine": "tiktok", "model": "research-api voice_to_text",
                 "settings": {}, "settings_hash": "t", "status": "failed", "created_at": LATER},
            ],
        )  # fmt: skip
        s.execute(
            insert(Annotation),
            [
                {"video_id": ids[3], "kind": AnnotationKind.onscreen_text, "status": "refused",
                 "model": "m", "prompt_id": "onscreen_text", "prompt_hash": "abcdef0123456789",
                 "value": None, "is_sandbox": False},
                {"video_id": ids[4], "kind": AnnotationKind.stance, "status": "ok", "model": "m2",
                 "prompt_id": "stance", "prompt_hash": "0123456789abcdef", "is_sandbox": True,
                 "value": {"stance": "support", "confidence": 1}, "created_at": LATER},
            ],
        )  # fmt: skip
        s.get(Video, ids[5]).extra_fields = {SANDBOX_RECORD_MARK: True}
        s.get(Video, ids[6]).video_description = "hola ＠ josé_2 y @ana.b\n@ x, ﹫Ünï ok"
        s.get(Video, ids[7]).username = ""
        first = s.get(Video, ids[0])
        first.raw = {**first.raw, "odd": RAW_TEXTS}


# Texts whose JSON escapes the export rewrites (or keeps): accents, an emoji (a UTF-16 pair),
# half a pair, DEL, controls, a NUL, a literal backslash-u, quotes, a slash.
RAW_TEXTS = ["José ＠", "🇵🇪😀", "cut \ud83d", "\udc00 x", "\x7f\x01\x00", "\\u00e9", '"/', "\u2028"]


@pytest.fixture(params=["bench", "outputs"])
def campaign(request, db_url) -> tuple[str, str]:
    if request.param == "bench":
        build(db_url, VIDEOS, name="big")
        _add_edge_rows(db_url)
        return db_url, "big"
    return db_url, build_dataset(db_url, days=4, per_day=8).campaign


def _reference(url: str, name: str, public: bool, salt, ids) -> tuple[pl.DataFrame, int]:
    records = export_reference.campaign_records(url, name, with_raw=not public)
    frame, _, excluded = export_reference.export_frame(records, public=public, salt=salt, ids=ids)
    return frame, excluded


@pytest.mark.parametrize(
    ("fmt", "public", "ids"),
    [("parquet", False, "keep"), ("jsonl", False, "keep"), ("csv", True, "keep"),
     ("parquet", True, "hash"), ("jsonl", True, "drop")],
)  # fmt: skip
def test_streamed_export_equals_the_per_record_export(
    campaign, tmp_path, monkeypatch, fmt, public, ids
):
    url, name = campaign
    monkeypatch.setattr(table, "PAGE", 500)
    salt = SecretStr("s") if public else None
    result = dataset.export_dataset(url, name, tmp_path, fmt, public=public, salt=salt, ids=ids)
    whole, excluded = _reference(url, name, public, salt, ids)
    assert result.rows == whole.height > 0
    assert result.excluded_pruned == excluded
    assert excluded == 0 or public
    if fmt == "parquet":
        assert pl.read_parquet(result.path).equals(whole)
    elif fmt == "jsonl":
        assert result.path.read_bytes() == whole.write_ndjson().encode()
    else:
        lists = [n for n, t in whole.schema.items() if isinstance(t, pl.List)]
        flat = whole.with_columns(pl.col(n).list.join(";") for n in lists)
        assert result.path.read_text() == flat.write_csv()


def test_pages_hold_the_whole_table(campaign, monkeypatch):
    url, name = campaign
    monkeypatch.setattr(table, "PAGE", 7)
    pages = list(table.table_batches(url, name, with_raw=False))
    assert max(p.height for p in pages) == 7
    whole = table.campaign_table(url, name, with_raw=False)
    assert pl.concat(pages).equals(whole)
    assert whole["video_id"].is_sorted() and whole["video_id"].is_unique().all()


def test_a_page_without_media_and_frames_keeps_every_other_column(campaign):
    url, name = campaign
    whole = table.campaign_table(url, name, with_raw=False)
    pages = table.table_batches(url, name, with_raw=False, without=frozenset({"media", "frames"}))
    lean = pl.concat(list(pages))
    queries = (table._media_query(0, 0), table._frames_query(0, 0))
    unread = [c.name for q in queries for c in q.selected_columns if c.name != "video_id"]
    assert whole.select(unread).null_count().sum_horizontal()[0] < whole.height * len(unread)
    assert lean.drop(unread).equals(whole.drop(unread))
    assert lean["duration_s"].null_count() == lean.height and (lean["frames_extracted"] == 0).all()
