"""What every command checks before it runs: settings, campaign file, dates, database and
services, each refused with one clear line (exit status 2) instead of a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from gettok import db
from gettok.models.campaign import Campaign, CampaignError, load_campaign
from gettok.settings import Settings, get_settings

CampaignFile = Annotated[Path, typer.Option("--campaign", "-c", help="Campaign TOML file.")]


def fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


def settings_or_exit() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"GETTOK_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise fail(f"invalid configuration: {problems}") from None


def campaign_or_exit(path: Path) -> Campaign:
    try:
        return load_campaign(path)
    except CampaignError as exc:
        raise fail(str(exc)) from None


def dates_or_exit(
    start: str | None, end: str | None, campaign: Campaign | None = None
) -> tuple[date | None, date | None]:
    """Parse --start/--end (YYYY-MM-DD, UTC, inclusive) or exit naming the bad one; dates outside
    the campaign's range are refused (a typo would put another period's videos in the study)."""
    parsed = []
    for flag, value in (("--start", start), ("--end", end)):
        try:
            parsed.append(date.fromisoformat(value) if value else None)
        except ValueError:
            raise fail(f"{flag} {value!r} is not a date as YYYY-MM-DD") from None
    first, last = parsed
    if first and last and last < first:
        raise fail(f"--end {last} is before --start {first}")
    for flag, day in (("--start", first), ("--end", last)):
        if campaign is None or day is None:
            continue
        if day < campaign.start_date or (campaign.end_date and day > campaign.end_date):
            raise fail(
                f"{flag} {day} is outside campaign {campaign.name} ({campaign.start_date} to "
                f"{campaign.end_date or 'ongoing'}); widen the campaign file to collect it"
            )
    return first, last


def database_or_exit(settings: Settings) -> str:
    """Create or migrate the schema; an unreachable database is one clear line, not a traceback."""
    url = settings.resolved_database_url
    try:
        db.ensure_schema(url)
    except (DBAPIError, OSError) as exc:
        shown = db.make_url(url).render_as_string(hide_password=True)
        raise fail(f"cannot use the database at {shown}: {first_line(exc)}") from None
    return url


@contextmanager
def services_or_exit(tiktok: bool = False, llm: bool = False) -> Iterator[Settings]:
    """Settings for a command that talks to TikTok and/or the LLM, resolved as `gettok run` does:
    a service with nothing configured is the local sandbox (said so); one whose URL is set but
    not its credentials is refused at once, naming the setting."""
    from gettok.local_mode import (
        MissingCredentials,
        local_services,
        refuse_real_services_without_credentials,
    )

    settings = settings_or_exit()
    try:
        refuse_real_services_without_credentials(settings, tiktok, llm)
    except MissingCredentials as exc:
        raise fail(str(exc)) from None
    with local_services(settings, tiktok=tiktok, llm=llm) as services:
        for note in services.notes:
            typer.secho(note, fg=typer.colors.YELLOW)
        yield settings_or_exit()


def web_needs_sandbox(settings: Settings, campaign: str | None) -> bool:
    """Download and prune need no credentials: they use the sandbox only for sandbox data."""
    from gettok.local_mode import stored_videos_are_synthetic

    if settings.has_tiktok_credentials or "tiktok_web_url" in settings.model_fields_set:
        return False
    return stored_videos_are_synthetic(settings.resolved_database_url, campaign)


def first_line(exc: BaseException) -> str:
    """The driver's own message, first line (SQLAlchemy's wrapper adds the statement)."""
    return (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
