"""The `gettok` command: thin wrappers that load settings and a campaign, then call a flow."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from gettok import db
from gettok.cli_comments import register as register_comment_commands
from gettok.cli_transcripts import register as register_transcript_commands
from gettok.cli_validate import validate_app
from gettok.cli_watch import campaign_watch_lines, watch_app
from gettok.models.campaign import Campaign, CampaignError, load_campaign
from gettok.settings import Settings, get_settings

app = typer.Typer(
    help="Collect, download and enrich TikTok videos for research.", no_args_is_help=True
)
db_app = typer.Typer(help="The results database.", no_args_is_help=True)
campaign_app = typer.Typer(help="Campaign files.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(campaign_app, name="campaign")
app.add_typer(validate_app, name="validate")
app.add_typer(watch_app, name="watch")
register_comment_commands(app)
register_transcript_commands(app)


@app.callback()
def prefect_defaults() -> None:
    # A temporary Prefect server would report telemetry (and log an ERROR when offline).
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The stages log their progress (batches, waiting for the gpu slot) on `gettok.*` loggers.
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "gettok")
    # Prefect gives its temporary server 20 s to start; a laptop busy with Whisper (or this
    # 2-core machine under load) needs more, and a timeout there fails the whole run.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


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
        raise fail(f"cannot use the database at {shown}: {_first_line(exc)}") from None
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


def _first_line(exc: BaseException) -> str:
    """The driver's own message, first line (SQLAlchemy's wrapper adds the statement)."""
    return (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]


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


@app.command("setup")
def setup() -> None:
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


@app.command("status")
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


@app.command("sandbox")
def sandbox(
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


@app.command("enrich")
def enrich_command(
    campaign_file: CampaignFile,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only estimate the cost.")] = False,
    budget_usd: Annotated[
        float | None,
        typer.Option("--budget-usd", min=0, help="Run budget in USD (GETTOK_LLM_BUDGET_USD)."),
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            help="description, stance, sentiment, summary or summary_check (repeatable).",
        ),
    ] = None,
) -> None:
    """Extract frames and annotate pending videos with the LLM (description, stance, sentiment,
    summary), within a budget; --dry-run estimates the cost without sending anything."""
    from gettok.clients.llm import LlmUnavailable, PriceUnknown
    from gettok.tasks.annotate.annotator import REQUESTED_KINDS
    from gettok.tasks.annotate.cost import estimate_enrich

    settings = settings_or_exit()
    campaign = campaign_or_exit(campaign_file)
    unknown = sorted(set(kind or []) - set(REQUESTED_KINDS))
    if unknown:
        raise fail(f"unknown --kind {', '.join(unknown)}: use {', '.join(REQUESTED_KINDS)}")
    database_or_exit(settings)
    try:
        if dry_run:
            estimate = estimate_enrich(
                settings.resolved_database_url, settings, campaign, kind, budget_usd
            )
            for k in estimate.kinds:
                typer.echo(
                    f"{k.kind:<12} {k.model:<24} {k.videos:>7} videos ({k.stale} stale) "
                    f"{k.input_tokens:>11} in {k.output_tokens:>9} out  ${k.cost_usd:.4f}"
                )
            typer.echo(
                f"estimated total ${estimate.total_usd:.4f} of a ${estimate.budget_usd:.2f} "
                f"budget{'' if estimate.within_budget else ': OVER BUDGET'}"
            )
            return
        from gettok.flows.enrich import enrich  # only a real run needs Prefect

        with services_or_exit(llm=True):
            result = enrich(campaign_file=str(campaign_file), kinds=kind, budget_usd=budget_usd)
    except (PriceUnknown, LlmUnavailable) as exc:
        raise fail(str(exc)) from None
    typer.echo(result.summary())
    sent = sum(k.done + k.refused + k.invalid + k.failed for k in result.kinds)
    if sent and sent == sum(k.failed for k in result.kinds):
        raise fail(f"every one of the {sent} annotation requests failed")


@app.command("collect")
def collect_command(
    campaign_file: CampaignFile,
    start: Annotated[
        str | None, typer.Option("--start", help="First UTC day, YYYY-MM-DD (default: campaign's).")
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", help="Last UTC day, inclusive (default: campaign's, or 2 days ago)."),
    ] = None,
    wait_for_quota: Annotated[
        bool, typer.Option("--wait-for-quota", help="Sleep until 00:00 UTC instead of stopping.")
    ] = False,
) -> None:
    """Collect a campaign's videos from the Research API, one UTC date window at a time.

    Resumable: a rerun skips finished windows and resumes the others from their last page.
    Exit status 75 when the daily quota stopped the run (rerun after 00:00 UTC), 1 when windows
    failed.
    """
    from gettok.flows.collect import CollectIncomplete, collect

    campaign = campaign_or_exit(campaign_file)
    first, last = dates_or_exit(start, end, campaign)
    with services_or_exit(tiktok=True) as settings:
        database_or_exit(settings)
        try:
            result = collect(str(campaign_file), first, last, wait_for_quota)
        except CollectIncomplete as exc:
            result = exc.result
    for window in result.windows:
        note = f"  ({window.note})" if window.note else ""
        typer.echo(
            f"{window.window!s:<22} {window.status:<16} {window.videos:>6} videos "
            f"{window.requests:>4} requests{note}"
        )
    typer.echo(
        f"{campaign.name}: {result.state}; {result.videos} videos, {result.requests} requests"
    )
    if result.deferred_after:
        typer.echo(f"days after {result.deferred_after} are not fully indexed yet: collect later")
    if result.aborted or result.windows_failed:
        raise typer.Exit(code=1)
    if result.quota_exhausted:
        raise typer.Exit(code=75)


@app.command("transcribe")
def transcribe_command(
    campaign_file: CampaignFile,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Ask again for videos whose audio failed.")
    ] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N videos.")] = None,
) -> None:
    """Transcribe the campaign's downloaded videos with Whisper (GETTOK_WHISPER_MODEL) and keep
    TikTok's own transcripts beside them; a rerun transcribes only what is pending."""
    from gettok.flows.transcribe import transcribe
    from gettok.tasks.transcribe.transcriber import ensure_transcription_limit
    from gettok.tasks.transcribe.whisper import ModelUnavailable, check_model

    settings = settings_or_exit()
    campaign = campaign_or_exit(campaign_file)
    database_or_exit(settings)
    try:
        check_model(settings.whisper_model)
    except ModelUnavailable as exc:
        raise fail(str(exc)) from None
    ensure_transcription_limit(settings)  # strict acquisition needs the limit to exist
    result = transcribe(str(campaign_file), retry_failed=retry_failed, limit=limit)
    typer.echo(f"{campaign.name}: {result.summary()}")
    for video_id, error in result.failed.items():  # recorded as `failed` rows; not retried
        typer.echo(f"  video {video_id}: {error}", err=True)
    if result.failed and not (result.done or result.empty):
        raise fail(f"every one of the {len(result.failed)} transcriptions failed")


@app.command("download")
def download_command(
    campaign_file: CampaignFile,
    retry_failed: Annotated[
        bool,
        typer.Option("--retry-failed", help="Ask again for invalid, private and removed videos."),
    ] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N videos.")] = None,
) -> None:
    """Download the campaign's collected videos that have no good download yet (Pyktok).

    A rerun asks only for what can succeed: new videos, dropped connections past their back-off,
    and throttled ones once the pause is over. Exit status 75 when throttling stopped the run.
    """
    from gettok.flows.download import download
    from gettok.models.schema import DownloadStatus
    from gettok.tasks.download.gate import HostDown

    settings = settings_or_exit()
    campaign = campaign_or_exit(campaign_file)
    database_or_exit(settings)
    with services_or_exit(tiktok=web_needs_sandbox(settings, campaign.name)):
        try:
            result = download(str(campaign_file), retry_failed=retry_failed, limit=limit)
        except HostDown as outage:
            raise fail(f"{campaign.name}: {outage}") from None
    typer.echo(f"{campaign.name}: {result.summary()}")
    if result.blocked_until is not None:
        raise typer.Exit(code=75)
    errors = (DownloadStatus.invalid, DownloadStatus.transient, DownloadStatus.blocked)
    if result.statuses and all(s in errors for s in result.statuses.values()):
        raise fail(f"every one of the {len(result.statuses)} downloads failed")


@app.command("run")
def run_command(
    campaign_file: CampaignFile,
    start: Annotated[str, typer.Option("--start", help="First UTC day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--end", help="Last UTC day, inclusive, YYYY-MM-DD.")],
    budget_usd: Annotated[
        float | None, typer.Option("--budget-usd", min=0, help="LLM spending cap for this run.")
    ] = None,
) -> None:
    """Run the whole pipeline locally: collect, download, transcribe, enrich.

    Embedded defaults: SQLite and media under ./data, an ephemeral Prefect. Services without
    credentials (TikTok, OpenAI) are replaced by the local sandbox, which this command starts.
    Exit status 75 when the daily quota stopped collection (rerun after 00:00 UTC), 1 when a
    stage failed.
    """
    from gettok.flows.pipeline import PipelineIncomplete, pipeline
    from gettok.orchestration import ensure_prefect_objects

    campaign = campaign_or_exit(campaign_file)
    first, last = dates_or_exit(start, end, campaign)
    with services_or_exit(tiktok=True, llm=True) as settings:
        database_or_exit(settings)
        ensure_prefect_objects(settings)
        try:
            result = pipeline(
                campaign_file=str(campaign_file),
                start_date=first,
                end_date=last,
                budget_usd=budget_usd,
            )
            code = 0
        except PipelineIncomplete as exc:
            result, code = exc.result, 1
            typer.secho(str(exc), err=True, fg=typer.colors.RED)
        except DBAPIError as exc:  # lost mid-run: the tasks' logs above have the details
            typer.secho(
                f"error: lost the database during the run: {_first_line(exc)}; what was stored "
                "is kept, rerun once the database is back",
                err=True,
                fg=typer.colors.RED,
            )
            raise typer.Exit(code=1) from None
    typer.echo(
        f"{result.campaign} {result.start}..{result.end}: {result.collect_state}; "
        f"LLM spend ${result.spent_usd:.4f}"
    )
    for row in result.counts.table() if result.counts else []:
        typer.echo(f"  {row['stage']:<11} {row['status']:<28} {row['videos']:>6}")
    shown = db.make_url(settings.resolved_database_url).render_as_string(hide_password=True)
    typer.echo(f"results: {shown}; media: {settings.resolved_media_dir}")
    if code == 0 and result.collect_state.startswith("quota exhausted"):
        code = 75  # as `gettok collect`: days are left; rerun after 00:00 UTC
    raise typer.Exit(code=code)


@app.command("export")
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


@app.command("report")
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


@app.command("prune")
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


def main() -> None:
    """The `gettok` command: stops cleanly on Ctrl-C/SIGTERM; a temporary Prefect server that
    does not start is one line naming the problem, not its traceback and output."""
    from gettok.local_mode import prefect_server_problem
    from gettok.stopping import stop_on_signals

    stop_on_signals()
    try:
        app()
    except RuntimeError as exc:
        problem = prefect_server_problem(exc)
        if problem is None:
            raise
        typer.secho(f"error: {problem}", err=True, fg=typer.colors.RED)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
