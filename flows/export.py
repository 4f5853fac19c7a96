"""Export: the campaign's dataset as one table (parquet, CSV or JSON lines) with its dictionary.

Method: one row per collected video with its metadata, download status, media information, both
transcripts, and every LLM annotation with the model and prompt that made it. The public variant
leaves out usernames (a salted hash at most), raw payloads, media paths, and pruned videos.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from gettok.flows.artifact_keys import artifact_key
from gettok.models.campaign import load_campaign
from gettok.retry import task_retries
from gettok.settings import get_settings
from gettok.stage import publish
from gettok.tasks.export.dataset import ExportFormat, ExportResult, IdPolicy, export_dataset


@task(name="export-dataset", **task_retries("database"))
def export_dataset_task(
    database_url: str,
    campaign: str,
    out_dir: Path,
    fmt: ExportFormat,
    public: bool,
    ids: IdPolicy = "keep",
) -> ExportResult:
    # The salt is read here, never passed as a parameter: Prefect stores parameters.
    return export_dataset(
        database_url,
        campaign,
        out_dir,
        fmt,
        public=public,
        salt=get_settings().export_salt,
        ids=ids,
    )


@flow(name="export")
def export(
    campaign_file: str,
    fmt: ExportFormat = "parquet",
    public: bool = False,
    out_dir: str | None = None,
    ids: IdPolicy = "keep",
) -> ExportResult:
    """Write `<campaign>[.public].<fmt>` and its dictionary (default data/exports/<name>/)."""
    logger = get_run_logger()
    campaign = load_campaign(Path(campaign_file))
    settings = get_settings()
    target = Path(out_dir) if out_dir else settings.data_dir / "exports" / campaign.name
    if public and settings.export_salt is None:
        logger.warning("GETTOK_EXPORT_SALT is not set: the public export has no user column")
    result = export_dataset_task(
        settings.resolved_database_url, campaign.name, target, fmt, public, ids
    )
    logger.info(
        "exported %d videos x %d columns to %s (dictionary %s)%s",
        result.rows,
        result.columns,
        result.path,
        result.dictionary_path,
        f"; {result.excluded_pruned} pruned videos left out" if result.excluded_pruned else "",
    )
    publish(result.stage_result(), artifact_key("export-result", campaign.name), logger)
    create_markdown_artifact(
        key=artifact_key("export", campaign.name),
        markdown=f"Exported **{result.rows}** videos, {result.columns} columns, "
        f"{'public' if public else 'full'} {fmt}: `{result.path}`; data dictionary "
        f"`{result.dictionary_path}`; pruned videos left out: {result.excluded_pruned}.",
        description=f"Export of {campaign.name}",
    )
    return result
