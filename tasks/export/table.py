"""The campaign's export table, a page of videos at a time.

Each page is a range of the campaign's video ids (the next PAGE members past the last page's),
and every other stage's rows are read for that range by column queries (no IN list, no Python
object per video); polars joins them (`gettok.tasks.export.assemble`). Memory holds one page
whatever the campaign's size, and the time grows with the number of videos.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from typing import Any

import polars as pl
from sqlalchemy import String, Text, cast, false, func, select, type_coerce
from sqlalchemy.orm import Session

from gettok.db import session_scope, without_jit
from gettok.json_text import export_json_column
from gettok.keyset import id_bounds
from gettok.membership import member_ranges
from gettok.models.api import LONE_SURROGATE, SANDBOX_RECORD_MARK
from gettok.models.schema import (
    Annotation,
    CampaignVideo,
    Download,
    Frame,
    MediaInfo,
    TextLanguage,
    Transcript,
    Video,
)
from gettok.models.schema import Campaign as CampaignRow
from gettok.prefetch import ahead
from gettok.query_frame import read_frame
from gettok.tasks.annotate.provenance import is_stale
from gettok.tasks.export.assemble import assemble
from gettok.tasks.export.columns import ANNOTATION_KINDS
from gettok.tasks.transcribe.text_language import MODEL as TEXT_LANGUAGE_MODEL
from gettok.tasks.validate.exported import human_code_table

PAGE = 10_000  # videos per page: a few hundred MB at most, 100 pages for a million videos


class CampaignNotFound(LookupError):
    """The campaign has no rows in this database yet (nothing collected)."""


def campaign_id(session: Session, name: str) -> int:
    found = session.scalar(select(CampaignRow.id).where(CampaignRow.name == name))
    if found is None:
        raise CampaignNotFound(f"campaign {name!r} is not in the database: collect it first")
    return found


def table_batches(
    url: str,
    campaign: str,
    *,
    with_raw: bool = True,
    size: int | None = None,
    without: frozenset[str] = frozenset(),
) -> Iterator[pl.DataFrame]:
    """The campaign's full export table (every column) `size` videos at a time, in id order; the
    next page is read (in a thread) while this one is joined and used.

    `with_raw=False` leaves the raw API payloads (the largest column) in the database; a part
    named in `without` ("media", "frames") is not read: its columns are there, empty.
    """
    for parts in ahead(_page_parts(url, campaign, with_raw, size, without)):
        yield assemble(**parts)


def _page_parts(
    url: str, campaign: str, with_raw: bool, size: int | None, without: frozenset[str]
) -> Generator[dict[str, pl.DataFrame], None, None]:
    """Each page's rows from every table, as `assemble` takes them."""

    def read(part: str, query) -> pl.DataFrame:
        # A part left out is asked for no rows: its typed, empty columns, without a scan.
        return read_frame(session, query.where(false()) if part in without else query)

    with session_scope(url) as session:
        without_jit(session)  # 0.7 s of JIT for a 50 ms annotations query, every page at 1M
        cid = campaign_id(session, campaign)
        humans = human_code_table(session, cid)
        for after, until in member_ranges(session, cid, size or PAGE):
            videos = _videos(session, cid, after, until, with_raw)
            if videos.height == 0:  # its members were deleted since `range_end` read them
                continue
            lo, hi = videos["video_id"][0], videos["video_id"][-1]
            yield {
                "videos": videos,
                "downloads": read("downloads", _downloads_query(lo, hi)),
                "media": read("media", _media_query(lo, hi)),
                "frames": read("frames", _frames_query(lo, hi)),
                "transcripts": read("transcripts", _transcripts_query(lo, hi)),
                "annotations": read("annotations", _annotations_query(lo, hi)),
                "languages": read("languages", _languages_query(lo, hi)),
                "humans": humans,
            }


def campaign_table(url: str, campaign: str, *, with_raw: bool = True) -> pl.DataFrame:
    """The whole table at once: for small campaigns and tests (memory grows with the campaign)."""
    return pl.concat(list(table_batches(url, campaign, with_raw=with_raw)), how="vertical")


VIDEO_COLUMNS = (
    "created_at",
    "username",
    "region_code",
    "video_description",
    "view_count",
    "like_count",
    "comment_count",
    "share_count",
    "favorites_count",
    "music_id",
    "video_duration",
    "is_stem_verified",
    "first_seen_at",
    "last_seen_at",
    "pruned_at",
    "pruned_reason",
    "voice_to_text",
)


def videos_query(cid: int, after: int | None, until: int, with_raw: bool):
    """SQL: the campaign's videos with ids in (after, until], in id order.

    Both tables get both bounds. Bounded below alone, Postgres merge-joined `videos` read from its
    key's start (910,000 rows before the last pages of a million: a second a page, quadratic in
    the campaign) or hash-joined and sorted every video past the page."""
    return (
        select(
            Video.id.label("video_id"),
            *(getattr(Video, name) for name in VIDEO_COLUMNS),
            cast(Video.extra_fields, Text).label("extra_fields"),
            cast(Video.hashtag_names, Text).label("hashtags"),
            cast(Video.video_mention_list, Text).label("mentions"),
            *([cast(Video.raw, Text).label("raw")] if with_raw else []),
        )
        .join(CampaignVideo, CampaignVideo.video_id == Video.id)
        .where(CampaignVideo.campaign_id == cid)
        .where(*id_bounds(after, until, CampaignVideo.video_id, Video.id))
        .order_by(CampaignVideo.video_id)
    )


def _videos(
    session: Session, cid: int, after: int | None, until: int, with_raw: bool
) -> pl.DataFrame:
    """The page's videos; JSON lists and the sandbox mark are read from their JSON text by polars,
    the raw payload's stored text rewritten as the export writes it (`export_json_column`)."""
    page = read_frame(session, videos_query(cid, after, until, with_raw))
    mark = pl.col("extra_fields").str.json_path_match(f"$.{SANDBOX_RECORD_MARK}")
    raw = export_json_column(page["raw"]) if with_raw else pl.lit(None, dtype=pl.Utf8)
    return page.with_columns(
        sandbox_record=mark.is_not_null() & ~mark.is_in(["false", "0", '""', "null"]),
        hashtags=_json_list("hashtags"),
        mentions=_json_list("mentions"),
        raw=raw,
    )


def _json_list(name: str) -> pl.Expr:
    """A JSON list of strings as a list column; a missing list is an empty one."""
    return pl.col(name).str.json_decode(pl.List(pl.Utf8)).fill_null(pl.lit([], pl.List(pl.Utf8)))


def raw_json(raw: Any) -> str:
    """The payload as JSON text; half of a UTF-16 pair (a text cut mid-emoji) stays the escape
    the API sent, since no file encoding can hold it as a character."""
    text = json.dumps(raw, ensure_ascii=False)
    return LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _downloads_query(lo: int, hi: int):
    return select(
        Download.video_id,
        type_coerce(Download.status, String).label("download_status"),
        Download.attempts.label("download_attempts"),
        Download.last_error.label("download_error"),
        Download.path.label("media_path"),
        Download.bytes.label("media_bytes"),
        Download.sha256.label("media_sha256"),
        Download.is_slideshow,
    ).where(Download.video_id.between(lo, hi))


def _media_query(lo: int, hi: int):
    return select(
        MediaInfo.video_id,
        MediaInfo.duration_s,
        MediaInfo.fps,
        MediaInfo.frame_count,
        MediaInfo.width,
        MediaInfo.height,
        MediaInfo.has_audio,
        MediaInfo.video_codec,
        MediaInfo.audio_codec,
    ).where(MediaInfo.video_id.between(lo, hi))


def _frames_query(lo: int, hi: int):
    return (
        select(Frame.video_id, func.count().label("frames_extracted"))
        .where(Frame.video_id.between(lo, hi))
        .group_by(Frame.video_id)
    )


def _transcripts_query(lo: int, hi: int):
    return select(
        Transcript.id,
        Transcript.video_id,
        Transcript.engine,
        Transcript.model,
        Transcript.settings_hash,
        type_coerce(Transcript.status, String).label("status"),
        Transcript.language,
        Transcript.language_probability,
        Transcript.text,
        Transcript.is_empty,
        Transcript.created_at,
        Transcript.detected_language,
        Transcript.language_source,
        Transcript.text_sha256,
        Transcript.is_current,
    ).where(Transcript.video_id.between(lo, hi))


def _annotations_query(lo: int, hi: int):
    """The annotations of the exported kinds; the value as JSON text, read by polars."""
    return select(
        Annotation.id,
        Annotation.video_id,
        type_coerce(Annotation.kind, String).label("kind"),
        type_coerce(Annotation.status, String).label("status"),
        cast(Annotation.value, Text).label("value"),
        Annotation.model,
        Annotation.prompt_id,
        Annotation.prompt_hash,
        Annotation.is_sandbox,
        Annotation.created_at,
        Annotation.transcript_id,
    ).where(
        Annotation.video_id.between(lo, hi),
        type_coerce(Annotation.kind, String).in_(ANNOTATION_KINDS),
        ~is_stale(Annotation),  # made from an old transcript or frames: not exported
    )


def _languages_query(lo: int, hi: int):
    """The text identifier's language of each caption and transcript version."""
    return select(
        TextLanguage.video_id,
        TextLanguage.source,
        TextLanguage.text_sha256,
        TextLanguage.language,
    ).where(TextLanguage.video_id.between(lo, hi), TextLanguage.model == TEXT_LANGUAGE_MODEL)
