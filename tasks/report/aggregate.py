"""The report's figures for a whole campaign, a page of the export table at a time.

Every page yields its counts and sums per key (day, hashtag, label, language, status); the pages'
sums are added up, and shares and rankings are taken from the totals. The dataset table is one
aggregate query. Memory holds a page and the totals (one row per day, tag or label), whatever
the campaign's size; the figures equal those of the whole table at once.
"""

from __future__ import annotations

from datetime import date

import polars as pl
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from gettok.db import session_scope
from gettok.models.schema import CampaignVideo, Video
from gettok.tasks.export.columns import COLUMNS
from gettok.tasks.export.table import campaign_id, table_batches
from gettok.tasks.report import languages, metrics

# What the report reads of the table (the other columns are dropped as each page arrives).
NEEDED = (
    "video_id",
    "is_sandbox",
    "create_date",
    "hashtags",
    "view_count",
    "like_count",
    "comment_count",
    "share_count",
    "download_status",
    "whisper_status",
    "whisper_is_empty",
    "whisper_transcript",
    "whisper_language",
    "whisper_detected_language",
    "whisper_text_language",
    "tiktok_transcript",
    "stance",
    "sentiment",
)

# Parts of the table none of those columns come from: not read.
UNREAD = frozenset({"media", "frames"})


class CampaignFigures(BaseModel):
    """Everything the report shows about the videos."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    summary: metrics.DatasetSummary
    by_count: list[tuple[str, int]]
    by_views: list[tuple[str, int]]
    daily: pl.DataFrame
    coverage: pl.DataFrame
    languages: list[tuple[str, int, int]]  # (language, videos by text, by audio)
    disagreements: pl.DataFrame  # clips whose text and audio languages differ
    downloads: list[tuple[str, int]]
    stance: pl.DataFrame
    sentiment: pl.DataFrame
    synthetic: int

    @property
    def first_day(self) -> date | None:
        return self.daily["create_date"].min() if self.daily.height else None

    @property
    def last_day(self) -> date | None:
        return self.daily["create_date"].max() if self.daily.height else None


PARTS = {
    "hashtags": (metrics.hashtag_totals, ["tag"]),
    "daily": (metrics.daily_volume, ["create_date"]),
    "coverage": (metrics.coverage_counts, ["create_date"]),
    "languages": (languages.language_counts, ["language"]),
    "downloads": (metrics.download_counts, ["status"]),
    "stance": (lambda df: metrics.labels_over_time(df, "stance"), ["create_date", "label"]),
    "sentiment": (lambda df: metrics.labels_over_time(df, "sentiment"), ["create_date", "label"]),
}


def campaign_figures(url: str, campaign: str) -> CampaignFigures:
    """Fold the campaign's pages into the report's figures."""
    parts: dict[str, list[pl.DataFrame]] = {name: [] for name in PARTS}
    disagree: list[pl.DataFrame] = []
    synthetic = 0
    for page in table_batches(url, campaign, with_raw=False, without=UNREAD):
        page = page.select(NEEDED)
        for name, (partial, _) in PARTS.items():
            parts[name].append(partial(page))
        synthetic += int(page["is_sandbox"].sum())
        disagree.append(languages.disagreements(page))
        for name in PARTS:  # keep one running total per part
            parts[name] = [_summed(parts[name], name)]
    totals = {name: _summed(frames, name) for name, frames in parts.items()}
    by_keys = ["create_date", "label"]
    return CampaignFigures(
        summary=dataset_summary(url, campaign),
        by_count=metrics.rank_hashtags(totals["hashtags"], "count"),
        by_views=metrics.rank_hashtags(totals["hashtags"], "views"),
        daily=totals["daily"].sort("create_date"),
        coverage=metrics.coverage_shares(totals["coverage"]),
        languages=languages.ranked_languages(totals["languages"]),
        disagreements=pl.concat(disagree) if disagree else languages.NO_DISAGREEMENTS,
        downloads=metrics.ranked(totals["downloads"], "status"),
        stance=totals["stance"].sort(by_keys),
        sentiment=totals["sentiment"].sort(by_keys),
        synthetic=synthetic,
    )


def _summed(frames: list[pl.DataFrame], name: str) -> pl.DataFrame:
    """The pages' rows of one part added up per key (an empty table's when there is no page)."""
    partial, keys = PARTS[name]
    if not frames:
        return partial(pl.DataFrame(schema={c.name: c.dtype for c in COLUMNS if c.name in NEEDED}))
    if len(frames) == 1:
        return frames[0]
    return pl.concat(frames).group_by(keys).agg(pl.exclude(keys).sum())


def dataset_summary(url: str, campaign: str) -> metrics.DatasetSummary:
    """Videos, distinct users and summed engagement: one aggregate query."""
    with session_scope(url) as session:
        cid = campaign_id(session, campaign)
        row = session.execute(
            select(
                func.count(),
                func.count(func.distinct(Video.username)),
                *(
                    func.coalesce(func.sum(column), 0)
                    for column in (
                        Video.like_count,
                        Video.view_count,
                        Video.comment_count,
                        Video.share_count,
                    )
                ),
            )
            .join(CampaignVideo, CampaignVideo.video_id == Video.id)
            .where(CampaignVideo.campaign_id == cid)
        ).one()
    videos, users, likes, views, comments, shares = (int(x) for x in row)
    return metrics.DatasetSummary(
        videos=videos, users=users, likes=likes, views=views, comments=comments, shares=shares
    )
