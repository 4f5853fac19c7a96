"""Odd but real Research API records, collected over HTTP by the real client and collect core,
stored on SQLite and Postgres, then exported: each is stored exactly or kept as a rejected record
with its reason; none fails its page, loses its neighbours or corrupts what is stored."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import polars as pl
import pytest
from fastapi import FastAPI, Request, Response
from sqlalchemy import select

from gettok import db
from gettok.models.campaign import parse_campaign
from gettok.models.schema import (
    CampaignVideo,
    CollectionWindow,
    RejectedRecord,
    Video,
    WindowStatus,
)
from gettok.settings import get_settings
from gettok.tasks.collect import collect_campaign
from gettok.tasks.export.dataset import export_dataset
from tests.chaos_world import serve_app

DAY = date(2022, 12, 7)
NOON = int(datetime(2022, 12, 7, 12, tzinfo=UTC).timestamp())
MAX_ID = 2**63 - 1


def vid(n: int) -> int:
    return (NOON << 32) | n  # a TikTok id carries its creation time in the top 32 bits


RTL = "مرحبا بالعالم \u200fשלום\u200e \u202eevil\u202c"
EMOJI = "🇵🇪 👨\u200d👩\u200d👧 café ñandú 𝕏"
# Records that must be stored, with what must come back.
GOOD = {
    "nul bytes": {
        "id": vid(1),
        "create_time": NOON,
        "username": "user\x00name",
        "video_description": "golpe\x00 de estado",
        "hashtag_names": ["cas\x00tillo"],
        "voice_to_text": "\x00",
    },
    "emoji": {"id": vid(2), "create_time": NOON, "username": "niño_🙂", "video_description": EMOJI},
    "right to left": {
        "id": vid(3),
        "create_time": NOON,
        "video_description": RTL,
        "hashtag_names": ["عربي", "עברית"],
    },
    "only an id and time": {"id": vid(4), "create_time": NOON},
    "extra fields": {
        "id": vid(5),
        "create_time": NOON,
        "brand_new_field": {"nested": [1, 2, {"x": None}]},
        "another_one": None,
    },
    "id as a string": {"id": str(vid(6)), "create_time": NOON, "view_count": "12"},
    "largest 64-bit id": {"id": MAX_ID, "create_time": NOON},
    "nulls everywhere": {
        "id": vid(8),
        "create_time": NOON,
        "hashtag_names": None,
        "effect_ids": None,
        "video_label": None,
        "region_code": None,
    },
    "a very long text": {"id": vid(9), "create_time": NOON, "video_description": "ñ" * 100_000},
    # A text cut mid-emoji: half of a UTF-16 pair (a lone surrogate), escaped in the JSON.
    "half an emoji": {"id": vid(10), "create_time": NOON, "video_description": "golpe \ud83d"},
}
# Records that cannot be a `videos` row: kept as rejected records, the rest of the page stored.
BAD = {
    "id beyond 64 bits": {"id": 2**64 + 5, "create_time": NOON},
    "float id": {"id": 7.174e18, "create_time": NOON},
    "no id": {"create_time": NOON, "username": "nobody"},
    "not an object": "oops",
}


def pages() -> list[dict]:
    videos = list(GOOD.values()) + list(BAD.values())
    repeat = dict(GOOD["emoji"])  # the same video twice on one page
    first = videos[:8] + [repeat]
    return [
        {"videos": first, "cursor": len(first), "has_more": True, "search_id": "s-1"},
        {"videos": videos[8:], "cursor": 100, "has_more": False, "search_id": "s-1"},
    ]


def crafted_api(served: list[dict]) -> FastAPI:
    """A Research API that answers every search with `served`, page by page."""
    app = FastAPI()

    def answer(body: dict) -> Response:  # ASCII JSON: escapes lone surrogates as \\udxxx
        return Response(json.dumps(body), media_type="application/json")

    @app.post("/v2/oauth/token/")
    async def token() -> dict:
        return {"access_token": "clt.crafted", "expires_in": 7200, "token_type": "Bearer"}

    @app.post("/v2/research/video/query/")
    async def query(request: Request) -> Response:
        body = await request.json()
        page = served[1] if body.get("cursor") else served[0]
        return answer({"data": page, "error": {"code": "ok", "message": "", "log_id": "crafted"}})

    return app


@pytest.fixture
def collected(db_url, settings_env, monkeypatch):
    with serve_app(crafted_api(pages())) as base_url:
        monkeypatch.setenv("GETTOK_DATABASE_URL", db_url)
        monkeypatch.setenv("GETTOK_TIKTOK_API_URL", base_url)
        monkeypatch.setenv("GETTOK_TIKTOK_CLIENT_KEY", "key")
        monkeypatch.setenv("GETTOK_TIKTOK_CLIENT_SECRET", "secret")
        campaign = parse_campaign(
            {"name": "odd", "start_date": DAY, "end_date": DAY, "query": {"keywords": ["x"]}}
        )
        result = collect_campaign(get_settings(), campaign, DAY, DAY)
        again = collect_campaign(get_settings(), campaign, DAY, DAY)
    return db_url, result, again


def stored_videos(url: str) -> dict[int, Video]:
    with db.session_scope(url) as session:
        return {v.id: v for v in session.scalars(select(Video))}


def test_every_odd_record_is_stored_exactly(collected):
    url, result, again = collected
    assert result.state == "completed" and [w.status for w in result.windows] == ["done"]
    videos = stored_videos(url)
    assert set(videos) == {int(r["id"]) for r in GOOD.values()}
    nul = videos[vid(1)]
    assert (nul.username, nul.video_description) == ("username", "golpe de estado")
    assert nul.hashtag_names == ["castillo"] and nul.voice_to_text == ""
    assert videos[vid(2)].video_description == EMOJI and videos[vid(2)].username == "niño_🙂"
    assert videos[vid(3)].video_description == RTL
    assert videos[vid(3)].hashtag_names == ["عربي", "עברית"]
    bare = videos[vid(4)]
    assert bare.username is None and bare.view_count is None and bare.hashtag_names == []
    assert bare.created_at == datetime(2022, 12, 7, 12, tzinfo=UTC)
    assert videos[vid(5)].extra_fields == {
        "brand_new_field": {"nested": [1, 2, {"x": None}]},
        "another_one": None,
    }
    assert videos[vid(6)].view_count == 12
    assert MAX_ID in videos  # exact, not rounded through a float
    assert len(videos[vid(9)].video_description) == 100_000
    assert videos[vid(10)].video_description == "golpe \ufffd"  # marked, not dropped
    with db.session_scope(url) as session:
        members = session.scalars(select(CampaignVideo.video_id)).all()
    assert sorted(members) == sorted(videos)  # each once, the repeat included
    assert again.windows[0].status == "skipped" and stored_videos(url).keys() == videos.keys()


def test_records_that_cannot_be_videos_are_kept_with_their_reason(collected):
    url, _result, _again = collected
    with db.session_scope(url) as session:
        rejected = session.scalars(select(RejectedRecord)).all()
        window = session.scalars(select(CollectionWindow)).one()
    assert window.status is WindowStatus.done
    assert len(rejected) == len(BAD), [r.reason for r in rejected]
    by_raw = {json.dumps(r.raw, sort_keys=True): r for r in rejected}
    for name, raw in BAD.items():
        key = json.dumps(raw if isinstance(raw, dict) else {"value": raw}, sort_keys=True)
        assert key in by_raw, f"{name} was not kept"
        assert by_raw[key].reason and by_raw[key].window_id == window.id
    huge = by_raw[json.dumps(BAD["id beyond 64 bits"], sort_keys=True)]
    assert huge.raw["id"] == 2**64 + 5  # the raw payload keeps the id exact
    assert "64-bit" in huge.reason
    # A rerun of a done window asks nothing and keeps them once.
    assert window.last_error and "4 invalid record(s)" in window.last_error


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_the_export_keeps_ids_and_texts_exact(collected, tmp_path, fmt):
    url, _result, _again = collected
    result = export_dataset(url, "odd", tmp_path, fmt)
    assert result.rows == len(GOOD)
    if fmt == "jsonl":
        lines = result.path.read_text(encoding="utf-8").splitlines()
        rows = {json.loads(line)["video_id"]: json.loads(line) for line in lines}
        assert "\x00" not in result.path.read_text(encoding="utf-8")
        sent = json.loads(rows[vid(10)]["raw"])  # the raw payload keeps the escape as sent
        assert sent["video_description"] == "golpe \ud83d"
        assert json.loads(rows[vid(1)]["raw"])["username"] == "user\x00name"
    else:
        read = pl.read_csv(result.path, infer_schema_length=0) if fmt == "csv" else None
        frame = read if read is not None else pl.read_parquet(result.path)
        rows = {int(r["video_id"]): r for r in frame.to_dicts()}
    assert set(rows) == {int(r["id"]) for r in GOOD.values()}  # ids exact in every format
    assert rows[vid(2)]["video_description"] == EMOJI
    assert rows[vid(3)]["video_description"] == RTL
