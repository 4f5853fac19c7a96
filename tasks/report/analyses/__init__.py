"""The studies' analyses in the report (issue 16): events, normalised engagement, caption
n-grams, hashtags against views and over time, topics, the clusters map and summary checks.

Each analysis is one module with a `*_section(ctx)` that reads by SQL aggregates or bounded
batches, writes its PNG figures and CSV tables into the report folder, and returns a `Section`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from gettok.models.campaign import Campaign, ReportOptions
from gettok.tasks.report.analyses.drawing import lettered
from gettok.tasks.report.analyses.section import AnalysisContext, Section

log = logging.getLogger(__name__)


def _sections() -> list[Callable[[AnalysisContext], Section]]:
    from gettok.tasks.report.analyses.clusters_report import clusters_section
    from gettok.tasks.report.analyses.engagement import engagement_section
    from gettok.tasks.report.analyses.events import events_section
    from gettok.tasks.report.analyses.hashtags import hashtags_section
    from gettok.tasks.report.analyses.ngrams import ngrams_section
    from gettok.tasks.report.analyses.summary_checks import summary_checks_section
    from gettok.tasks.report.analyses.topics import topics_section

    return [
        events_section,
        engagement_section,
        ngrams_section,
        hashtags_section,
        topics_section,
        clusters_section,
        summary_checks_section,
    ]


def run_analyses(url: str, campaign: str, out_dir: Path, config: Campaign | None) -> list[Section]:
    """Every analysis over the campaign, in the report's order (figures without the sandbox
    banner: the report stamps it on every figure once it knows the data is synthetic)."""
    from gettok.db import session_scope
    from gettok.tasks.report.analyses.stopwords import stop_languages, text_language_videos

    language = config.language if config else None
    with session_scope(url) as session:
        stop = stop_languages(text_language_videos(session, campaign), language)
    ctx = AnalysisContext(
        url=url,
        campaign=campaign,
        out_dir=out_dir,
        options=config.report if config else ReportOptions(),
        events=lettered(config.events) if config else [],
        language=language,
        stop_languages=stop,
    )
    return [section(ctx) for section in _sections()]


def scope_note(url: str, campaign: str) -> str | None:
    """Why the analyses' n can be below the dataset's: videos that compliance found no longer
    public (pruned) stay in the dataset's counts but leave the analyses; None when none are."""
    from gettok.db import session_scope
    from gettok.tasks.report.analyses import queries

    with session_scope(url) as session:
        pruned = queries.pruned_videos(session, campaign)
        if not pruned:
            return None
        kept, _, _ = queries.campaign_extent(session, campaign)
    return (
        f"The analyses below read the campaign's {kept:,} videos still public: {pruned:,} "
        f"{'video' if pruned == 1 else 'videos'} found no longer public (pruned by compliance) "
        f"{'is' if pruned == 1 else 'are'} counted in the dataset figures above but left out "
        "of them."
    )


__all__ = ["AnalysisContext", "Section", "run_analyses", "scope_note"]
