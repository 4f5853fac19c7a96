"""`gettok comments` and `gettok users`: the Research API's comments and user info (issue 14)."""

from __future__ import annotations

from typing import Annotated

import typer

from gettok.cli.preflight import (
    CampaignFile,
    campaign_or_exit,
    database_or_exit,
    fail,
    services_or_exit,
)


def comments_command(
    campaign_file: CampaignFile,
    top: Annotated[
        int | None,
        typer.Option("--top", min=1, help="Only the N videos with the most comments."),
    ] = None,
    video_id: Annotated[
        list[int] | None,
        typer.Option("--video-id", help="Only this video of the campaign (repeatable)."),
    ] = None,
) -> None:
    """Collect the comments of the campaign's collected videos (up to the API's 1,000 each).

    Resumable: a rerun skips finished videos and resumes the others from their last page.
    Exit status 75 when the daily request budget stopped the run (rerun after 00:00 UTC), 1 when
    videos failed.
    """
    from gettok.flows.comments import comments
    from gettok.tasks.export.dataset import CampaignNotFound

    if top is not None and video_id:
        raise fail("give --top or --video-id, not both")
    campaign = campaign_or_exit(campaign_file)
    try:
        with services_or_exit(tiktok=True) as settings:
            database_or_exit(settings)
            result = comments(str(campaign_file), top_n=top, video_ids=video_id or None)
    except (CampaignNotFound, LookupError) as exc:
        raise fail(str(exc).strip("'\"")) from None
    typer.echo(f"{campaign.name}: {result.summary()}")
    _exit(result)


def users_command(
    campaign_file: CampaignFile,
    max_age_days: Annotated[
        float, typer.Option("--max-age-days", min=0, help="Ask again after this many days.")
    ] = 30,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N users.")] = None,
) -> None:
    """Record user info (display name, bio, followers...) for the campaign's authors, each
    asked at most once per --max-age-days; users the API will not describe get a status."""
    from gettok.flows.comments import users
    from gettok.tasks.export.dataset import CampaignNotFound

    campaign = campaign_or_exit(campaign_file)
    try:
        with services_or_exit(tiktok=True) as settings:
            database_or_exit(settings)
            result = users(str(campaign_file), max_age_days=max_age_days, limit=limit)
    except CampaignNotFound as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{campaign.name}: {result.summary()}")
    _exit(result)


def _exit(result) -> None:
    if any(note.startswith("daily quota reached") for note in result.notes):
        raise typer.Exit(code=75)
    if result.failed_total or any(note.startswith("stopped") for note in result.notes):
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add the commands to the `gettok` app."""
    app.command("comments")(comments_command)
    app.command("users")(users_command)
