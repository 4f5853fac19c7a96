"""The report's metrics as polars expressions over (a page of) the export table.

Each metric has a summable form (counts and sums per key) so that pages of a campaign combine
into the same figures as the whole table (`gettok.tasks.report.aggregate`), and a final form
(shares, rankings) computed from the combined sums.
"""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import BaseModel

# Hashtags that tag the feed, not the topic (the Ecuador study excluded fyp, parati, foryou).
GENERIC_HASHTAGS = frozenset(
    """
    fyp fy fypシ fypage fyppage foryou foryoupage foryourpage foru 4u 4you parati paratii
    paratipage paratodos viral viralvideo viraltiktok tiktok tiktokviral trending trend tendencia
    tendencias xyzbca xyzcba capcut explore explorepage duet stitch
    """.split()
)
NO_LABEL = "(none)"
ENGAGEMENT = ("views", "likes", "comments", "shares")


class DatasetSummary(BaseModel):
    videos: int
    users: int
    likes: int
    views: int
    comments: int
    shares: int


def is_generic(tag: str) -> bool:
    tag = tag.casefold().lstrip("#")
    return tag in GENERIC_HASHTAGS or tag.startswith("fyp")


def dataset_summary(df: pl.DataFrame) -> DatasetSummary:
    """The studies' dataset table: videos, distinct users and summed engagement."""
    return DatasetSummary(
        videos=df.height,
        users=df["username"].drop_nulls().n_unique(),
        likes=int(df["like_count"].sum() or 0),
        views=int(df["view_count"].sum() or 0),
        comments=int(df["comment_count"].sum() or 0),
        shares=int(df["share_count"].sum() or 0),
    )


def hashtag_totals(df: pl.DataFrame) -> pl.DataFrame:
    """Per hashtag (case-folded, `#` stripped): videos carrying it and their views."""
    return (
        df.select("video_id", pl.col("view_count").fill_null(0), "hashtags")
        .explode("hashtags")
        .drop_nulls("hashtags")
        .with_columns(tag=pl.col("hashtags").str.to_lowercase().str.strip_chars_start("#"))
        .unique(["video_id", "tag"])
        .group_by("tag")
        .agg(count=pl.len(), views=pl.col("view_count").sum())
    )


def rank_hashtags(
    totals: pl.DataFrame, by: Literal["count", "views"] = "count", n: int = 10
) -> list[tuple[str, int]]:
    """Top hashtags by `by`, generic ones excluded (judged once per distinct tag)."""
    generic = {tag for tag in totals["tag"].to_list() if is_generic(tag)}
    top = (
        totals.filter(~pl.col("tag").is_in(list(generic)))
        .sort([by, "tag"], descending=[True, False])
        .head(n)
    )
    return [(row["tag"], int(row[by])) for row in top.iter_rows(named=True)]


def top_hashtags(
    df: pl.DataFrame, by: Literal["count", "views"] = "count", n: int = 10
) -> list[tuple[str, int]]:
    """Top hashtags (case-folded, generic ones excluded) by videos carrying them or their views."""
    return rank_hashtags(hashtag_totals(df), by, n)


def daily_volume(df: pl.DataFrame) -> pl.DataFrame:
    """Videos and engagement per UTC posting day."""
    return (
        df.drop_nulls("create_date")
        .group_by("create_date")
        .agg(
            videos=pl.len(),
            views=pl.col("view_count").sum(),
            likes=pl.col("like_count").sum(),
            comments=pl.col("comment_count").sum(),
            shares=pl.col("share_count").sum(),
        )
        .sort("create_date")
    )


def coverage_counts(df: pl.DataFrame) -> pl.DataFrame:
    """Per day, the videos with a Whisper transcript, TikTok's, both, and neither."""
    # An empty Whisper transcript (music, silence) is kept in the data but is not a transcript.
    whisper = (
        (pl.col("whisper_status") == "ok")
        & ~pl.col("whisper_is_empty").fill_null(False)
        & (pl.col("whisper_transcript").str.strip_chars().str.len_chars() > 0)
    ).fill_null(False)
    tiktok = (pl.col("tiktok_transcript").str.strip_chars().str.len_chars() > 0).fill_null(False)
    return (
        df.drop_nulls("create_date")
        .with_columns(whisper=whisper, tiktok=tiktok)
        .group_by("create_date")
        .agg(
            videos=pl.len(),
            whisper=pl.col("whisper").sum(),
            tiktok=pl.col("tiktok").sum(),
            both=(pl.col("whisper") & pl.col("tiktok")).sum(),
            neither=(~pl.col("whisper") & ~pl.col("tiktok")).sum(),
        )
    )


def coverage_shares(counts: pl.DataFrame) -> pl.DataFrame:
    sources = ("whisper", "tiktok", "both", "neither")
    return counts.with_columns(pl.col(s) / pl.col("videos") for s in sources).sort("create_date")


def transcript_coverage(df: pl.DataFrame) -> pl.DataFrame:
    """Per day, the share of videos with a Whisper transcript, TikTok's, both, and neither."""
    return coverage_shares(coverage_counts(df))


def counts_by(df: pl.DataFrame, name: str, value: pl.Expr) -> pl.DataFrame:
    return df.with_columns(value.alias(name)).group_by(name).agg(videos=pl.len())


def ranked(counts: pl.DataFrame, name: str) -> list[tuple[str, int]]:
    """(value, videos), most videos first."""
    counts = counts.sort(["videos", name], descending=[True, False])
    return [(r[name], r["videos"]) for r in counts.iter_rows(named=True)]


def download_counts(df: pl.DataFrame) -> pl.DataFrame:
    return counts_by(df, "status", pl.col("download_status").fill_null("not attempted"))


def download_status_counts(df: pl.DataFrame) -> list[tuple[str, int]]:
    return ranked(download_counts(df), "status")


def labels_over_time(df: pl.DataFrame, column: str) -> pl.DataFrame:
    """Per day and label, the videos with that label (NO_LABEL: not labelled yet or failed)."""
    return (
        df.drop_nulls("create_date")
        .with_columns(label=pl.col(column).fill_null(NO_LABEL))
        .group_by("create_date", "label")
        .agg(videos=pl.len())
        .sort("create_date", "label")
    )
