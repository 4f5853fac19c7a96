"""Report: the dataset's figures, as the studies reported them, in Markdown with PNG charts.

Method: dataset totals (videos, users, likes, views, comments, shares); top-10 hashtags by count
and by views without generic ones; daily volume and engagement; transcript coverage by source;
languages; Whisper against TikTok's transcripts (Pearson r, R^2, Jaccard); stance and sentiment
over time; download outcomes; LLM cost. Published as Prefect artifacts when run as a flow.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from gettok.flows.artifact_keys import artifact_key
from gettok.models.campaign import Campaign, load_campaign
from gettok.retry import task_retries
from gettok.settings import get_settings
from gettok.stage import publish
from gettok.tasks.report.build import ReportResult, build_report


@task(name="build-report", **task_retries("database"))
def build_report_task(
    database_url: str, campaign: str, out_dir: Path, title: str, config: Campaign | None = None
) -> ReportResult:
    return build_report(database_url, campaign, out_dir, title, config=config)


def publish_report(result: ReportResult) -> None:
    """The report as a Markdown artifact with its figures inline, and the dataset table."""
    folder = result.markdown_path.parent

    def inline(match: re.Match) -> str:
        path = folder / match.group(2)
        if not path.is_file():
            return match.group(0)
        data = base64.b64encode(path.read_bytes()).decode()
        return f"![{match.group(1)}](data:image/png;base64,{data})"

    figure_link = r"!\[([^\]]*)\]\(([^)]+\.png)\)"
    markdown = re.sub(figure_link, inline, result.markdown_path.read_text(encoding="utf-8"))
    key = artifact_key("report", result.campaign)
    for section_key, title, text in result.analyses:  # each analysis also on its own
        create_markdown_artifact(
            markdown=re.sub(figure_link, inline, text),
            key=f"{key}-{section_key}",
            description=f"{title} of {result.campaign}",
        )
    create_markdown_artifact(
        markdown=markdown, key=key, description=f"Dataset report of {result.campaign}"
    )
    create_table_artifact(
        table=[result.dataset.model_dump()],
        key=f"{key}-dataset",
        description=f"Dataset totals of {result.campaign}",
    )


@flow(name="report")
def report(campaign_file: str, out_dir: str | None = None) -> ReportResult:
    """Write report.md and its PNG figures (default data/reports/<name>/) and publish them."""
    logger = get_run_logger()
    campaign = load_campaign(Path(campaign_file))
    settings = get_settings()
    target = Path(out_dir) if out_dir else settings.data_dir / "reports" / campaign.name
    result = build_report_task(
        settings.resolved_database_url, campaign.name, target, campaign.title, campaign
    )
    c = result.comparison
    logger.info(
        "report of %s: %d videos, %d users, %d figures in %s",
        campaign.name,
        result.dataset.videos,
        result.dataset.users,
        len(result.figures),
        target,
    )
    logger.info(
        "transcripts compared on %d videos: r=%s, mean Jaccard=%s",
        c.videos,
        c.pearson_r,
        c.mean_jaccard,
    )
    publish(result.stage_result(), artifact_key("report-result", campaign.name), logger)
    publish_report(result)
    return result
