"""Hashtags against views (the Ecuador paper's Figures 3 and 4): each hashtag's frequency against
the mean views of the videos carrying it, and the selected hashtags day by day.

Hashtags are case-folded, counted once per video, generic feed tags (fyp, parati, ...) excluded.
One pass, a range of members at a time, sums videos and views per hashtag and day; the totals and
the selected hashtags' days are both read from those sums.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl
from matplotlib.ticker import MaxNLocator
from sqlalchemy import Date, Text, cast, func, select, type_coerce

from gettok.db import session_scope
from gettok.keyset import id_bounds
from gettok.membership import campaign_videos, member_ranges
from gettok.models.schema import Video
from gettok.query_frame import read_frame
from gettok.tasks.report.analyses import queries, tables
from gettok.tasks.report.analyses.drawing import caption, plt, save, timeline, titled
from gettok.tasks.report.analyses.section import AnalysisContext, Section
from gettok.tasks.report.build import is_generic
from gettok.tasks.report.figures import human_log_axes

LABELLED = 15  # points named on the scatter
PAGE = 10_000  # campaign members read at a time
MIN_VIDEOS = 2  # a tag on one video has no mean worth plotting


@dataclass(frozen=True)
class HashtagPoint:
    tag: str
    videos: int
    mean_views: float


def _tag(name) -> str:
    """The hashtag as counted ("" for a generic one): case-folded, without its '#'."""
    tag = str(name).casefold().lstrip("#").strip()
    return "" if is_generic(tag) else tag


def tagged_videos(session, campaign: str) -> Iterator[pl.DataFrame]:
    """(video id, UTC day, views, tag), each tag once per video, a range of the campaign's
    members at a time: Python sees each distinct hashtag of a page once, not every video."""
    day = type_coerce(queries.utc_day(session), Date).label("day")
    for after, until in member_ranges(session, campaign, PAGE):
        members = campaign_videos(campaign, after=after, until=until)  # one range, on SQLite too
        query = select(
            Video.id,
            day,
            func.coalesce(Video.view_count, 0).label("views"),
            cast(Video.hashtag_names, Text).label("names"),
        ).where(Video.id.in_(members), *id_bounds(after, until, Video.id))
        rows = (
            read_frame(session, query)
            .with_columns(pl.col("names").str.json_decode(pl.List(pl.Utf8)))
            .explode("names")
            .filter(pl.col("names").str.len_chars() > 0)
        )
        names = rows["names"].unique()
        tags = pl.DataFrame({"names": names, "tag": [_tag(n) for n in names]})
        yield (
            rows.join(tags, on="names")
            .filter(pl.col("tag") != "")
            .unique(["id", "tag"])
            .select("id", "day", "views", "tag")
        )


def hashtag_tallies(session, campaign: str) -> pl.DataFrame:
    """Videos and summed views per (hashtag, UTC day): the pages' sums, added up as they come
    (one row per hashtag and day, whatever the campaign's size)."""
    summed: list[pl.DataFrame] = []
    for page in tagged_videos(session, campaign):
        summed.append(page.group_by("tag", "day").agg(videos=pl.len(), views=pl.col("views").sum()))
        if len(summed) >= 8:
            summed = [_added(summed)]
    return _added(summed)


def _added(frames: list[pl.DataFrame]) -> pl.DataFrame:
    if not frames:
        schema = {"tag": pl.Utf8, "day": pl.Date, "videos": pl.UInt32, "views": pl.Int64}
        return pl.DataFrame(schema=schema)
    return pl.concat(frames).group_by("tag", "day").agg(pl.col("videos", "views").sum())


def hashtag_points(
    session, campaign: str, min_videos: int = MIN_VIDEOS, tallies: pl.DataFrame | None = None
) -> list[HashtagPoint]:
    """Every non-generic hashtag on `min_videos` or more videos, most frequent first."""
    tallies = hashtag_tallies(session, campaign) if tallies is None else tallies
    summed = tallies.group_by("tag").agg(pl.col("videos", "views").sum())
    points = [
        HashtagPoint(tag, n, views / n)
        for tag, n, views in summed.filter(pl.col("videos") >= min_videos)
        .select("tag", "videos", "views")
        .iter_rows()
    ]
    return sorted(points, key=lambda p: (-p.videos, p.tag))


def hashtags_by_day(
    session, campaign: str, selected: list[str], tallies: pl.DataFrame | None = None
) -> dict[str, Counter]:
    """Per selected hashtag, its videos per UTC day."""
    tallies = hashtag_tallies(session, campaign) if tallies is None else tallies
    out: dict[str, Counter] = {tag: Counter() for tag in selected}
    days = tallies.filter(pl.col("tag").is_in(selected), pl.col("day").is_not_null())
    for tag, day, n in days.select("tag", "day", "videos").iter_rows():
        out[tag][day] += n
    return out


def hashtags_section(ctx: AnalysisContext) -> Section:
    with session_scope(ctx.url) as session:
        tallies = hashtag_tallies(session, ctx.campaign)
        points = hashtag_points(session, ctx.campaign, tallies=tallies)
        selected = ctx.options.hashtags or [p.tag for p in points[: ctx.options.top_hashtags]]
        per_day = hashtags_by_day(session, ctx.campaign, selected, tallies)
        n, first, last = queries.campaign_extent(session, ctx.campaign)
    subtitle = caption(n, first, last)
    scatter = draw_scatter(points, subtitle, ctx.out_dir / "hashtag_views.png")
    over_time = draw_over_time(per_day, subtitle, ctx, ctx.out_dir / "hashtags_over_time.png")
    point_rows = [[p.tag, p.videos, round(p.mean_views, 1)] for p in points]
    csv_points = tables.write_csv(
        ctx.out_dir / "hashtag_views.csv", ["hashtag", "videos", "mean_views"], point_rows
    )
    day_rows = [
        [tag, d.isoformat(), c] for tag, days_ in per_day.items() for d, c in sorted(days_.items())
    ]
    csv_days = tables.write_csv(
        ctx.out_dir / "hashtags_over_time.csv", ["hashtag", "day", "videos"], day_rows
    )
    how = (
        "named in the campaign's `[report] hashtags`"
        if ctx.options.hashtags
        else (f"the {len(selected)} most frequent")
    )
    text = "\n\n".join(
        [
            f"Each hashtag on {MIN_VIDEOS} or more videos: how many videos carry it against the "
            "mean views of those videos (log axes; generic feed tags excluded).",
            "![hashtag frequency against mean views](hashtag_views.png)",
            tables.markdown(["hashtag", "videos", "mean views"], point_rows, limit=20),
            f"Selected hashtags over time ({how}):",
            "![selected hashtags over time](hashtags_over_time.png)",
            f"Tables: [hashtag_views.csv]({csv_points.name}), "
            f"[hashtags_over_time.csv]({csv_days.name})",
        ]
    )
    return Section(
        "hashtags",
        "Hashtags: frequency, views and time",
        text,
        [scatter, over_time],
        [csv_points, csv_days],
        {"selected": selected},
    )


def draw_scatter(points: list[HashtagPoint], subtitle: str, path):
    fig, ax = plt.subplots(figsize=(9, 6))
    if points:
        ax.scatter(
            [p.videos for p in points],
            [max(p.mean_views, 1) for p in points],
            s=18,
            alpha=0.6,
            color="#1f78b4",
        )
        for p in points[:LABELLED]:
            ax.annotate(
                f"#{p.tag}",
                (p.videos, max(p.mean_views, 1)),
                fontsize=8,
                xytext=(4, 3),
                textcoords="offset points",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        human_log_axes(ax)
    else:
        ax.text(
            0.5,
            0.5,
            f"no hashtag on {MIN_VIDEOS} or more videos yet",
            ha="center",
            transform=ax.transAxes,
            color="grey",
        )
    ax.set_xlabel("videos carrying the hashtag (log)")
    ax.set_ylabel("mean views of those videos (log)")
    ax.spines[["top", "right"]].set_visible(False)
    titled(ax, "Hashtag frequency against mean views", f"{subtitle}; {len(points)} hashtags")
    return save(fig, path)


def draw_over_time(per_day: dict[str, Counter], subtitle: str, ctx: AnalysisContext, path):
    fig, ax = plt.subplots(figsize=(11, 4.6))
    days = sorted({d for counts in per_day.values() for d in counts})
    if days:
        for tag, counts in per_day.items():
            ax.plot(days, [counts.get(d, 0) for d in days], label=f"#{tag}", linewidth=1.4)
        timeline(ax, days, ctx.events)
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_xlabel("posting day (UTC)")
    ax.set_ylabel("videos carrying the hashtag")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    titled(ax, "Selected hashtags over time", subtitle)
    return save(fig, path)
