"""`gettok setup`, `db upgrade`, `campaign show`, `status` and `sandbox`: prepare and inspect what
the stages run on (database, Prefect, campaign file, the local sandbox)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gettok import db
from gettok.cli.preflight import campaign_or_exit, database_or_exit, settings_or_exit
from gettok.cli.watch import campaign_watch_lines

db_app = typer.Typer(help="The results database.", no_args_is_help=True)
campaign_app = typer.Typer(help="Campaign files.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema on GETTOK_DATABASE_URL (idempotent)."""
    settings = settings_or_exit()
    database_or_exit(settings)
    url = db.make_url(db.normalise_url(settings.resolved_database_url))
    typer.echo(
        f"database at revision {db.current_revision(settings.resolved_database_url)}: "
        f"{url.render_as_string(hide_password=True)}"
    )


@campaign_app.command("show")
def campaign_show(path: Annotated[Path, typer.Argument(help="Campaign TOML file.")]) -> None:
    """Validate a campaign and print the query the Research API will receive."""
    campaign = campaign_or_exit(path)
    end = campaign.end_date or campaign.start_date
    typer.echo(f"campaign {campaign.name}: {campaign.title}")
    typer.echo(f"dates (UTC, inclusive): {campaign.start_date} to {campaign.end_date or 'ongoing'}")
    if campaign.stance:
        typer.echo(
            f"stance towards {campaign.stance.target!r}: {', '.join(campaign.stance.labels)}"
        )
    for line in campaign_watch_lines(campaign):
        typer.echo(line)
    typer.echo("first request body (one window):")
    typer.echo(
        json.dumps(
            campaign.api_request_body(campaign.start_date, min(end, campaign.start_date)),
            indent=2,
            ensure_ascii=False,
        )
    )


def setup_command() -> None:
    """Create the Prefect work pools (cpu, gpu) and global concurrency limits; safe to rerun."""
    from gettok.orchestration import ensure_prefect_objects
    from gettok.schedule_status import configured_api_url

    settings = settings_or_exit()
    api_url = configured_api_url()
    if api_url:
        typer.echo(f"Prefect API: {api_url}")
    else:
        typer.secho(
            "warning: PREFECT_API_URL is not set, so this configures a temporary local Prefect "
            "that workers and schedules never see; start `prefect server start` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api first (see the README)",
            err=True,
            fg=typer.colors.YELLOW,
        )
    for line in ensure_prefect_objects(settings):
        typer.echo(line)


def status_command(
    campaign_file: Annotated[
        Path | None, typer.Option("--campaign", "-c", help="Also the campaign's stage counts.")
    ] = None,
) -> None:
    """The next scheduled runs of each deployment (from PREFECT_API_URL), and with --campaign
    how many of its videos each stage has done."""
    from gettok.schedule_status import configured_api_url, next_scheduled_runs

    settings = settings_or_exit()
    campaign = campaign_or_exit(campaign_file) if campaign_file else None
    api_url = configured_api_url()
    if not api_url:
        typer.echo("no Prefect server configured (PREFECT_API_URL): no schedules to show")
    else:
        typer.echo(f"schedules on {api_url}:")
        for entry in next_scheduled_runs():
            times = ", ".join(f"{t:%Y-%m-%d %H:%M} UTC" for t in entry.next_runs) or "none"
            paused = " (paused)" if entry.paused else ""
            typer.echo(
                f"  {entry.deployment}{paused}: {'; '.join(entry.schedules) or 'no schedule'}"
            )
            typer.echo(f"    next runs: {times}")
    if campaign is not None:
        from gettok.progress import stage_counts

        database_or_exit(settings)
        typer.echo(f"{campaign.name}:")
        for row in stage_counts(settings.resolved_database_url, campaign.name).table():
            typer.echo(f"  {row['stage']:<11} {row['status']:<28} {row['videos']:>6}")


def sandbox_command(
    port: Annotated[int | None, typer.Option(help="Port (default: GETTOK_SANDBOX_PORT).")] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
) -> None:
    """Serve the local TikTok + OpenAI stand-in in the foreground (faults from GETTOK_SANDBOX_*)."""
    from gettok.local_mode import sandbox_variables
    from gettok.sandbox.config import SandboxConfig
    from gettok.sandbox.server import serve

    settings = settings_or_exit()
    config = SandboxConfig()
    port = settings.sandbox_port if port is None else port
    base_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    typer.echo(
        f"gettok sandbox at {base_url} (seed {config.seed}, {config.videos_per_day} videos/day)"
    )
    typer.echo("point gettok at it with (every service, credential and model it stands in for):")
    for key, value in sandbox_variables(base_url, config).items():
        typer.echo(f"  export {key}={value}")
    serve(config, host=host, port=port)
