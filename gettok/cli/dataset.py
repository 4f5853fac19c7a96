"""`gettok export`, `report` and `prune`: the stored dataset published, described, and kept
compliant. Export and report read the database directly: no Prefect server starts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gettok.cli.preflight import (
    CampaignFile,
    campaign_or_exit,
    database_or_exit,
    fail,
    services_or_exit,
    settings_or_exit,
    web_needs_sandbox,
)


def export_command(
    campaign_file: CampaignFile,
    fmt: Annotated[str, typer.Option("--format", "-f", help="parquet, csv or jsonl.")] = "parquet",
    public: Annotated[
        bool,
        typer.Option(
            "--public",
            help="No usernames (salted hash with GETTOK_EXPORT_SALT), "
            "no raw payloads or media paths, pruned videos left out.",
        ),
    ] = False,
    ids: Annotated[
        str,
        typer.Option(
            "--ids",
            help="Public exports: keep video ids (others can re-hydrate and honour deletions, "
            "but an id leads to its author), hash them (salted) or drop them.",
        ),
    ] = "keep",
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder (default: data/exports/<campaign>/).")
    ] = None,
) -> None:
    """Export the campaign's videos, one row each, with a data dictionary beside the file.

    Reads the database directly: no Prefect server is started (the `export` flow is for
    deployments)."""
    from gettok.tasks.export.dataset import CampaignNotFound, export_dataset

    if fmt not in ("parquet", "csv", "jsonl"):
        raise fail(f"--format must be parquet, csv or jsonl, not {fmt!r}")
    if ids not in ("keep", "hash", "drop"):
        raise fail(f"--ids must be keep, hash or drop, not {ids!r}")
    if ids != "keep" and not public:
        raise fail(f"--ids {ids} applies to public exports only: add --public")
    settings = settings_or_exit()
    campaign = campaign_or_exit(campaign_file)  # a bad file fails here, with its problem named
    database_or_exit(settings)
    if public and settings.export_salt is None:
        typer.secho("GETTOK_EXPORT_SALT is not set: the public export has no user column", err=True)
    target = out or settings.data_dir / "exports" / campaign.name
    try:
        result = export_dataset(
            settings.resolved_database_url,
            campaign.name,
            target,
            fmt,
            public=public,
            salt=settings.export_salt,
            ids=ids,
        )
    except (CampaignNotFound, ValueError) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{result.rows} videos, {result.columns} columns: {result.path}")
    typer.echo(f"data dictionary: {result.dictionary_path}")
    if result.excluded_pruned:
        typer.echo(f"{result.excluded_pruned} pruned videos left out of the public export")


def report_command(
    campaign_file: CampaignFile,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder (default: data/reports/<campaign>/).")
    ] = None,
) -> None:
    """Write the dataset report (Markdown + PNG figures). Reads the database directly: no Prefect
    server is started (the `report` flow, for deployments, also publishes Prefect artifacts)."""
    from gettok.tasks.export.dataset import CampaignNotFound
    from gettok.tasks.report.build import build_report

    settings = settings_or_exit()
    campaign = campaign_or_exit(campaign_file)  # a bad file fails here, with its problem named
    database_or_exit(settings)
    target = out or settings.data_dir / "reports" / campaign.name
    try:
        result = build_report(
            settings.resolved_database_url, campaign.name, target, campaign.title, config=campaign
        )
    except CampaignNotFound as exc:
        raise fail(str(exc)) from None
    typer.echo(f"report: {result.markdown_path} ({len(result.figures)} figures)")


def prune_command(
    campaign_file: Annotated[
        Path | None, typer.Option("--campaign", "-c", help="Campaign TOML (default: all).")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N videos.")] = None,
) -> None:
    """Compliance: re-check stored videos and delete media and frames of non-public ones."""
    from gettok.flows.prune import prune

    settings = settings_or_exit()
    # A bad file fails here, with its problem named.
    campaign = campaign_or_exit(campaign_file) if campaign_file else None
    database_or_exit(settings)
    with services_or_exit(tiktok=web_needs_sandbox(settings, campaign and campaign.name)):
        result = prune(str(campaign_file) if campaign_file else None, limit)
    typer.echo(result.summary())
    if result.checked and result.transient == result.checked:
        raise fail(f"none of the {result.checked} videos could be checked; nothing was deleted")
