"""The campaign report: the studies' dataset figures as Markdown tables and PNG charts.

Metrics are plain functions over the export table
(`gettok.tasks.export.dataset.campaign_records`), so the report and the exported dataset always
agree; figures are drawn by `gettok.tasks.report.figures`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

import polars as pl
from gettok.models.campaign import Campaign
from gettok.models.schema import Annotation
from gettok.tasks.export.dataset import campaign_id, campaign_records, export_frame
from gettok.tasks.report.compare_transcripts import TranscriptComparison, compare_transcripts
from gettok.tasks.validate.report_section import validation_section
from pydantic import BaseModel
from sqlalchemy import func, select

from gettok.db import session_scope
from gettok.membership import campaign_videos
from gettok.stage import StageResult, file_digests

# Hashtags that tag the feed, not the topic (the Ecuador study excluded fyp, parati, foryou).
GENERIC_HASHTAGS = frozenset(
    """
    fyp fy fypシ fypage fyppage foryou foryoupage foryourpage foru 4u 4you parati paratii
    paratipage paratodos viral viralvideo viraltiktok tiktok tiktokviral trending trend tendencia
    tendencias xyzbca xyzcba capcut explore explorepage duet stitch
    """.split()
)
NO_LABEL = "(none)"


class DatasetSummary(BaseModel):
    videos: int
    users: int
    likes: int
    views: int
    comments: int
    shares: int


class LlmCost(BaseModel):
    kind: str
    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class ReportResult(BaseModel):
    campaign: str
    markdown_path: Path
    figures: list[Path]
    dataset: DatasetSummary
    comparison: TranscriptComparison
    llm_cost_usd: float
    # The studies' analyses (issue 16): (artifact key, title, Markdown) each, and their CSVs.
    analyses: list[tuple[str, str, str]] = []
    tables: list[Path] = []
    changed: bool = True  # False: the folder already held exactly this report

    def stage_result(self) -> StageResult:
        return StageResult(
            stage="report",
            done=int(self.changed),
            skipped=int(not self.changed),
            counts={"figures": len(self.figures), "videos": self.dataset.videos},
        )


def is_generic(tag: str) -> bool:
    tag = tag.casefold().lstrip("#")
    return tag in GENERIC_HASHTAGS or tag.startswith("fyp")


def videos_table(records: list[dict[str, Any]]) -> pl.DataFrame:
    """The full (non-public) export table the metrics read."""
    frame, _, _ = export_frame(records, public=False)
    return frame


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


def top_hashtags(
    df: pl.DataFrame,
    by: Literal["count", "views"] = "count",
    n: int = 10,
) -> list[tuple[str, int]]:
    """Top hashtags (case-folded, generic ones excluded) by videos carrying them or their views."""
    tags = (
        df.select("video_id", pl.col("view_count").fill_null(0), "hashtags")
        .explode("hashtags")
        .drop_nulls("hashtags")
        .with_columns(tag=pl.col("hashtags").str.to_lowercase().str.strip_chars_start("#"))
        .filter(~pl.col("tag").map_elements(is_generic, return_dtype=pl.Boolean))
        .unique(["video_id", "tag"])
        .group_by("tag")
        .agg(count=pl.len(), views=pl.col("view_count").sum())
        .sort([by, "tag"], descending=[True, False])
        .head(n)
    )
    return [(row["tag"], int(row[by])) for row in tags.iter_rows(named=True)]


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


def transcript_coverage(df: pl.DataFrame) -> pl.DataFrame:
    """Per day, the share of videos with a Whisper transcript, TikTok's, both, and neither."""
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
            whisper=pl.col("whisper").mean(),
            tiktok=pl.col("tiktok").mean(),
            both=(pl.col("whisper") & pl.col("tiktok")).mean(),
            neither=(~pl.col("whisper") & ~pl.col("tiktok")).mean(),
        )
        .sort("create_date")
    )


def language_distribution(df: pl.DataFrame) -> list[tuple[str, int]]:
    """Languages Whisper detected, over videos with an ok Whisper transcript."""
    counts = (
        df.filter(pl.col("whisper_status") == "ok")
        .with_columns(language=pl.col("whisper_language").fill_null("unknown"))
        .group_by("language")
        .agg(videos=pl.len())
        .sort(["videos", "language"], descending=[True, False])
    )
    return [(r["language"], r["videos"]) for r in counts.iter_rows(named=True)]


def labels_over_time(df: pl.DataFrame, column: str) -> pl.DataFrame:
    """Per day and label, the videos with that label (NO_LABEL: not labelled yet or failed)."""
    return (
        df.drop_nulls("create_date")
        .with_columns(label=pl.col(column).fill_null(NO_LABEL))
        .group_by("create_date", "label")
        .agg(videos=pl.len())
        .sort("create_date", "label")
    )


def download_status_counts(df: pl.DataFrame) -> list[tuple[str, int]]:
    counts = (
        df.with_columns(status=pl.col("download_status").fill_null("not attempted"))
        .group_by("status")
        .agg(videos=pl.len())
        .sort(["videos", "status"], descending=[True, False])
    )
    return [(r["status"], r["videos"]) for r in counts.iter_rows(named=True)]


def transcript_pairs(df: pl.DataFrame) -> list[tuple[str, str]]:
    """(Whisper, TikTok) transcripts of the videos that have both, non-empty."""
    both = df.filter(
        (pl.col("whisper_status") == "ok")
        & ~pl.col("whisper_is_empty").fill_null(False)
        & (pl.col("whisper_transcript").str.strip_chars().str.len_chars() > 0)
        & (pl.col("tiktok_transcript").str.strip_chars().str.len_chars() > 0)
    )
    return list(
        zip(both["whisper_transcript"].to_list(), both["tiktok_transcript"].to_list(), strict=True)
    )


def llm_costs(url: str, campaign: str) -> list[LlmCost]:
    """Calls, tokens and dollars per annotation kind and model (every attempt that was billed)."""
    with session_scope(url) as session:
        cid = campaign_id(session, campaign)
        rows = session.execute(
            select(
                Annotation.kind,
                Annotation.model,
                func.count(),
                func.coalesce(func.sum(Annotation.input_tokens), 0),
                func.coalesce(func.sum(Annotation.output_tokens), 0),
                func.coalesce(func.sum(Annotation.cost_usd), 0.0),
            )
            .where(Annotation.video_id.in_(campaign_videos(cid, with_pruned=True)))
            .group_by(Annotation.kind, Annotation.model)
            .order_by(Annotation.kind, Annotation.model)
        ).all()
    return [
        LlmCost(
            kind=str(k),
            model=m,
            calls=n,
            input_tokens=int(i),
            output_tokens=int(o),
            cost_usd=float(c),
        )
        for k, m, n, i, o, c in rows
    ]


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def _share(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def build_report(
    url: str, campaign: str, out_dir: Path, title: str = "", config: Campaign | None = None
) -> ReportResult:
    """Compute every metric, draw the figures into `out_dir` and write `report.md` there;
    `config` (the campaign file) adds its events and `[report]` options to the analyses."""
    from gettok.tasks.report import figures as figs
    from gettok.tasks.report.analyses import run_analyses
    from gettok.tasks.report.analyses.drawing import lettered

    out_dir.mkdir(parents=True, exist_ok=True)
    before = file_digests(out_dir.iterdir())
    df = videos_table(campaign_records(url, campaign, with_raw=False))
    summary = dataset_summary(df)
    by_count, by_views = top_hashtags(df, "count"), top_hashtags(df, "views")
    daily, coverage = daily_volume(df), transcript_coverage(df)
    languages, downloads = language_distribution(df), download_status_counts(df)
    stance, sentiment = labels_over_time(df, "stance"), labels_over_time(df, "sentiment")
    pairs = transcript_pairs(df)
    comparison = compare_transcripts(pairs)
    costs = llm_costs(url, campaign)
    events = lettered(config.events) if config else []

    figures = [
        figs.hashtags_figure(by_count, by_views, out_dir / "top_hashtags.png"),
        figs.daily_volume_figure(daily, out_dir / "daily_volume.png", events),
        figs.coverage_figure(coverage, out_dir / "transcript_coverage.png", events),
        figs.bar_figure(
            languages, "Transcript language (Whisper)", "videos", out_dir / "languages.png"
        ),
        figs.labels_figure(stance, "Stance over time", out_dir / "stance_over_time.png", events),
        figs.labels_figure(
            sentiment, "Sentiment over time", out_dir / "sentiment_over_time.png", events
        ),
        figs.bar_figure(
            downloads, "Downloads by status", "videos", out_dir / "download_status.png"
        ),
        figs.word_counts_figure(pairs, comparison, out_dir / "transcript_word_counts.png"),
    ]
    synthetic = int(df["is_sandbox"].sum()) if df.height else 0
    if synthetic:
        figures = [figs.mark_synthetic(path) for path in figures]
    analyses = run_analyses(url, campaign, out_dir, config, bool(synthetic))
    figures += [path for section in analyses for path in section.figures]
    d = comparison.differences
    total_cost = sum(c.cost_usd for c in costs)
    first = daily["create_date"].min() if daily.height else None
    last = daily["create_date"].max() if daily.height else None
    sections = [
        f"# {title or campaign}: dataset report",
        *_synthetic_banner(synthetic, summary.videos),
        f"Campaign `{campaign}`, videos posted {_day(first)} to {_day(last)} (UTC).",
        "## Dataset",
        _table(
            ["videos", "users", "likes", "views", "comments", "shares"],
            [
                [
                    summary.videos,
                    summary.users,
                    summary.likes,
                    summary.views,
                    summary.comments,
                    summary.shares,
                ]
            ],
        ),
        "## Top hashtags (generic ones such as fyp, parati, foryou excluded)",
        _table(
            ["rank", "by videos", "videos", "by views", "views"],
            [
                [
                    i + 1,
                    *(by_count[i] if i < len(by_count) else ("", "")),
                    *(by_views[i] if i < len(by_views) else ("", "")),
                ]
                for i in range(max(len(by_count), len(by_views)))
            ],
        ),
        "![top hashtags](top_hashtags.png)",
        "## Daily volume and engagement",
        "![daily volume](daily_volume.png)",
        "## Transcripts",
        "Share of videos per day with a transcript from each source.",
        "![transcript coverage](transcript_coverage.png)",
        _table(["language", "videos"], [list(x) for x in languages])
        if languages
        else "No Whisper transcripts yet.",
        "![languages](languages.png)",
        f"### Whisper against TikTok's transcripts ({comparison.videos} videos with both)",
        _table(
            [
                "Pearson r (word counts)",
                "R²",
                "mean Jaccard (word sets)",
                "Whisper words",
                "TikTok words",
            ],
            [
                [
                    _share(comparison.pearson_r),
                    _share(comparison.r_squared),
                    _share(comparison.mean_jaccard),
                    comparison.whisper_words,
                    comparison.tiktok_words,
                ]
            ],
        ),
        "Word differences between aligned transcripts:",
        _table(
            [
                "capitalisation",
                "punctuation",
                "spelling",
                "other words",
                "only Whisper",
                "only TikTok",
            ],
            [
                [
                    d.capitalisation,
                    d.punctuation,
                    d.spelling,
                    d.substituted,
                    d.only_in_whisper,
                    d.only_in_tiktok,
                ]
            ],
        ),
        "![word counts](transcript_word_counts.png)",
        "## Stance and sentiment",
        "![stance](stance_over_time.png)",
        "![sentiment](sentiment_over_time.png)",
        "## Downloads",
        _table(["status", "videos"], [list(x) for x in downloads]),
        "![downloads](download_status.png)",
        "## LLM cost",
        (
            _table(
                ["kind", "model", "calls", "input tokens", "output tokens", "cost (USD)"],
                [
                    [c.kind, c.model, c.calls, c.input_tokens, c.output_tokens, f"{c.cost_usd:.4f}"]
                    for c in costs
                ],
            )
            + f"\n\nTotal: {total_cost:.4f} USD"
        )
        if costs
        else "No LLM calls recorded.",
        *(section.text() for section in analyses),
        validation_section(url, campaign),
    ]
    markdown_path = out_dir / "report.md"
    markdown_path.write_text("\n\n".join(sections) + "\n", encoding="utf-8")
    return ReportResult(
        campaign=campaign,
        markdown_path=markdown_path,
        figures=figures,
        dataset=summary,
        comparison=comparison,
        llm_cost_usd=total_cost,
        analyses=[(s.key, s.title, s.text()) for s in analyses],
        tables=[path for section in analyses for path in section.tables],
        changed=file_digests(out_dir.iterdir()) != before,
    )


def _synthetic_banner(synthetic: int, videos: int) -> list[str]:
    """A warning first thing in the report when any of its data came from the sandbox."""
    if not synthetic:
        return []
    return [
        f"> **SANDBOX DATA: {synthetic} of {videos} videos are synthetic** (gettok's local sandbox "
        "stood in for TikTok or the LLM; `is_sandbox` in the export). Do not report these numbers."
    ]


def _day(day: date | None) -> str:
    return day.isoformat() if day else "n/a"
