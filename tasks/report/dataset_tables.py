"""The dataset part of the report as CSV beside its Markdown tables and figures: every table
and every figure's numbers, so a researcher can redraw or cite them without parsing Markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from gettok.tasks.report.aggregate import CampaignFigures
from gettok.tasks.report.analyses.tables import write_csv
from gettok.tasks.report.compare_transcripts import TranscriptComparison


def _frame(path: Path, df: pl.DataFrame) -> Path:
    return write_csv(path, df.columns, [list(row) for row in df.rows()])


def write_dataset_tables(
    out_dir: Path, f: CampaignFigures, comparison: TranscriptComparison, costs: list[Any]
) -> dict[str, Path]:
    """Write each CSV into `out_dir`; returns them by the name the report links them under."""
    s = f.summary
    ranked = max(len(f.by_count), len(f.by_views))

    def nth(ranking: list[tuple[str, int]], i: int) -> list[Any]:
        return list(ranking[i]) if i < len(ranking) else ["", ""]

    return {
        "dataset": write_csv(
            out_dir / "dataset.csv",
            ["videos", "users", "likes", "views", "comments", "shares", "synthetic_videos"],
            [[s.videos, s.users, s.likes, s.views, s.comments, s.shares, f.synthetic]],
        ),
        "top_hashtags": write_csv(
            out_dir / "top_hashtags.csv",
            ["rank", "hashtag_by_videos", "videos", "hashtag_by_views", "views"],
            [[i + 1, *nth(f.by_count, i), *nth(f.by_views, i)] for i in range(ranked)],
        ),
        "daily_volume": _frame(out_dir / "daily_volume.csv", f.daily),
        "transcript_coverage": _frame(out_dir / "transcript_coverage.csv", f.coverage),
        "languages": write_csv(
            out_dir / "languages.csv",
            ["language", "videos_by_text", "videos_by_audio"],
            [list(row) for row in f.languages],
        ),
        "language_disagreements": _frame(out_dir / "language_disagreements.csv", f.disagreements),
        "transcript_comparison": write_csv(
            out_dir / "transcript_comparison.csv", *_comparison_table(comparison)
        ),
        "stance_over_time": _frame(out_dir / "stance_over_time.csv", f.stance),
        "sentiment_over_time": _frame(out_dir / "sentiment_over_time.csv", f.sentiment),
        "download_status": write_csv(
            out_dir / "download_status.csv", ["status", "videos"], [list(x) for x in f.downloads]
        ),
        "llm_cost": write_csv(
            out_dir / "llm_cost.csv",
            ["kind", "model", "calls", "input_tokens", "output_tokens", "cost_usd"],
            [
                [c.kind, c.model, c.calls, c.input_tokens, c.output_tokens, c.cost_usd]
                for c in costs
            ],
        ),
    }


def _comparison_table(c: TranscriptComparison) -> tuple[list[str], list[list[Any]]]:
    """Whisper against TikTok: the header and the campaign's one row."""
    d = c.differences
    columns = {
        "videos": c.videos,
        "pearson_r": c.pearson_r,
        "r_squared": c.r_squared,
        "mean_jaccard": c.mean_jaccard,
        "mean_cosine": c.mean_cosine,
        "embedding_model": c.embedding_model or "",
        "whisper_words": c.whisper_words,
        "tiktok_words": c.tiktok_words,
        "capitalisation": d.capitalisation,
        "punctuation": d.punctuation,
        "spelling": d.spelling,
        "other_words": d.substituted,
        "only_whisper": d.only_in_whisper,
        "only_tiktok": d.only_in_tiktok,
    }
    return list(columns), [list(columns.values())]
