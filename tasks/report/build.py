"""The campaign report: the studies' dataset figures as Markdown tables and PNG charts.

Metrics are polars functions over the export table (`gettok.tasks.report.metrics`), summed a
page of videos at a time (`gettok.tasks.report.aggregate`), so the report and the exported
dataset always agree and memory does not grow with the campaign; figures are drawn by
`gettok.tasks.report.figures`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select

from gettok.db import session_scope
from gettok.membership import campaign_videos
from gettok.models.campaign import Campaign
from gettok.models.schema import Annotation
from gettok.stage import StageResult, file_digests
from gettok.tasks.export.dataset import campaign_id
from gettok.tasks.report.aggregate import campaign_figures
from gettok.tasks.report.compare_transcripts import TranscriptComparison
from gettok.tasks.report.comparisons import (
    campaign_comparison,
    compare_campaign,
    word_count_points,
)
from gettok.tasks.report.languages import (  # noqa: F401  (importable here)
    language_distribution,
    language_section,
)
from gettok.tasks.report.metrics import (  # noqa: F401  (the report's metrics, importable here)
    GENERIC_HASHTAGS,
    NO_LABEL,
    DatasetSummary,
    daily_volume,
    dataset_summary,
    download_status_counts,
    is_generic,
    labels_over_time,
    top_hashtags,
    transcript_coverage,
)
from gettok.tasks.validate.report_section import validation_section


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
    url: str,
    campaign: str,
    out_dir: Path,
    title: str = "",
    embedding_model: str | None = None,
    config: Campaign | None = None,
) -> ReportResult:
    """Compute every metric, draw the figures into `out_dir` and write `report.md` there; new
    transcript pairs are compared first (sentence embeddings: GETTOK_EMBEDDING_MODEL); `config`
    (the campaign file) adds its events and `[report]` options to the analyses."""
    from gettok.settings import get_settings
    from gettok.tasks.report import figures as figs
    from gettok.tasks.report.analyses import run_analyses, scope_note
    from gettok.tasks.report.dataset_tables import write_dataset_tables

    embedding_model = embedding_model or get_settings().embedding_model
    out_dir.mkdir(parents=True, exist_ok=True)
    before = file_digests(out_dir.iterdir())
    compare_campaign(url, campaign, embedding_model)  # the one writer of the dataset part
    # The dataset part only reads: it runs beside the analyses, in a thread. Both spend much of
    # their time in Postgres, polars and numpy, which leave the GIL; all drawing stays here.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-dataset") as pool:
        dataset = pool.submit(_dataset_part, url, campaign, embedding_model)
        analyses = run_analyses(url, campaign, out_dir, config)
        f, comparison, word_counts, costs = dataset.result()

    figures = _dataset_figures(out_dir, f, comparison, word_counts, config)
    csvs = write_dataset_tables(out_dir, f, comparison, costs)
    figures += [path for section in analyses for path in section.figures]
    if f.synthetic:
        figures = [figs.mark_synthetic(path) for path in figures]

    def link(*names: str) -> str:
        return "Tables: " + ", ".join(f"[{csvs[n].name}]({csvs[n].name})" for n in names)

    sections = [
        f"# {title or campaign}: dataset report",
        *_synthetic_banner(f.synthetic, f.summary.videos),
        f"Campaign `{campaign}`, videos posted {_day(f.first_day)} to {_day(f.last_day)} (UTC).",
        *_dataset_sections(f, link),
        *_transcript_sections(f, comparison, link),
        *_labels_and_downloads_sections(f, link),
        *_cost_sections(costs, link),
        *filter(None, [scope_note(url, campaign)]),
        *(section.text() for section in analyses),
        validation_section(url, campaign),
    ]
    markdown_path = out_dir / "report.md"
    markdown_path.write_text("\n\n".join(sections) + "\n", encoding="utf-8")
    return ReportResult(
        campaign=campaign,
        markdown_path=markdown_path,
        figures=figures,
        dataset=f.summary,
        comparison=comparison,
        llm_cost_usd=sum(c.cost_usd for c in costs),
        analyses=[(s.key, s.title, s.text()) for s in analyses],
        tables=[*csvs.values(), *(path for section in analyses for path in section.tables)],
        changed=file_digests(out_dir.iterdir()) != before,
    )


def _dataset_part(url: str, campaign: str, embedding_model: str):
    """What the dataset figures and tables read: the table pass's figures, the transcript
    comparison, its word counts and the LLM costs."""
    return (
        campaign_figures(url, campaign),
        campaign_comparison(url, campaign, embedding_model),
        word_count_points(url, campaign, embedding_model),
        llm_costs(url, campaign),
    )


def _dataset_figures(
    out_dir: Path,
    f: Any,
    comparison: TranscriptComparison,
    word_counts: list[tuple[int, int, int]],
    config: Campaign | None,
) -> list[Path]:
    """The dataset part's figures, each captioned with its n and the data's days."""
    from gettok.tasks.report import figures as figs
    from gettok.tasks.report.analyses.drawing import caption, lettered

    events = lettered(config.events) if config else []
    first, last = f.first_day, f.last_day
    videos = caption(f.summary.videos, first, last)
    spoken = caption(
        sum(n for _, n, _ in f.languages), first, last, "Whisper transcripts with words"
    )
    both = caption(comparison.videos, first, last, "videos with both transcripts")
    return [
        figs.hashtags_figure(f.by_count, f.by_views, out_dir / "top_hashtags.png", videos),
        figs.daily_volume_figure(f.daily, out_dir / "daily_volume.png", events, videos),
        figs.coverage_figure(f.coverage, out_dir / "transcript_coverage.png", events, videos),
        figs.languages_figure(f.languages, out_dir / "languages.png", spoken),
        figs.labels_figure(
            f.stance, "Stance over time", out_dir / "stance_over_time.png", events, videos
        ),
        figs.labels_figure(
            f.sentiment, "Sentiment over time", out_dir / "sentiment_over_time.png", events, videos
        ),
        figs.bar_figure(
            f.downloads,
            "Downloads by status",
            "videos",
            out_dir / "download_status.png",
            videos,
            "download status",
        ),
        figs.word_counts_figure(
            word_counts, comparison, out_dir / "transcript_word_counts.png", both
        ),
    ]


def _dataset_sections(f: Any, link) -> list[str]:
    summary, by_count, by_views = f.summary, f.by_count, f.by_views
    engagement = [summary.videos, summary.users, summary.likes, summary.views]
    return [
        "## Dataset",
        _table(
            ["videos", "users", "likes", "views", "comments", "shares"],
            [[*engagement, summary.comments, summary.shares]],
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
        link("dataset", "top_hashtags"),
        "## Daily volume and engagement",
        "![daily volume](daily_volume.png)",
        link("daily_volume"),
    ]


def _transcript_sections(f: Any, comparison: TranscriptComparison, link) -> list[str]:
    d = comparison.differences
    return [
        "## Transcripts",
        "Share of videos per day with a transcript from each source.",
        "![transcript coverage](transcript_coverage.png)",
        *language_section(f.languages, f.disagreements, _table),
        f"### Whisper against TikTok's transcripts ({comparison.videos} videos with both)",
        _table(
            [
                "Pearson r (word counts)",
                "R²",
                "mean Jaccard (word sets)",
                f"mean embedding cosine ({comparison.embedding_model or 'no model'})",
                "Whisper words",
                "TikTok words",
            ],
            [
                [
                    _share(comparison.pearson_r),
                    _share(comparison.r_squared),
                    _share(comparison.mean_jaccard),
                    _share(comparison.mean_cosine),
                    comparison.whisper_words,
                    comparison.tiktok_words,
                ]
            ],
        ),
        "Word differences between aligned transcripts:",
        _table(
            ["capitalisation", "punctuation", "spelling", "other words"]
            + ["only Whisper", "only TikTok"],
            [
                [d.capitalisation, d.punctuation, d.spelling, d.substituted]
                + [d.only_in_whisper, d.only_in_tiktok]
            ],
        ),
        "![word counts](transcript_word_counts.png)",
        link("transcript_coverage", "languages", "language_disagreements", "transcript_comparison"),
    ]


def _labels_and_downloads_sections(f: Any, link) -> list[str]:
    return [
        "## Stance and sentiment",
        "![stance](stance_over_time.png)",
        "![sentiment](sentiment_over_time.png)",
        link("stance_over_time", "sentiment_over_time"),
        "## Downloads",
        _table(["status", "videos"], [list(x) for x in f.downloads]),
        "![downloads](download_status.png)",
        link("download_status"),
    ]


def _cost_sections(costs: list[LlmCost], link) -> list[str]:
    if not costs:
        return ["## LLM cost", "No LLM calls recorded."]
    total = sum(c.cost_usd for c in costs)
    table = _table(
        ["kind", "model", "calls", "input tokens", "output tokens", "cost (USD)"],
        [
            [c.kind, c.model, c.calls, c.input_tokens, c.output_tokens, f"{c.cost_usd:.4f}"]
            for c in costs
        ],
    )
    return ["## LLM cost", f"{table}\n\nTotal: {total:.4f} USD\n\n{link('llm_cost')}"]


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
