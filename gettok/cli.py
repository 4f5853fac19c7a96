"""The `gettok` command: thin wrappers that load settings and a campaign, then call a flow."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from gettok import db
from gettok.cli_comments import register as register_comment_commands
from gettok.cli_validate import validate_app
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
register_comment_commands(app)

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
        db.upgrade(url)
    except (DBAPIError, OSError) as exc:
        shown = db.make_url(url).render_as_string(hide_password=True)
        raise fail(f"cannot use the database at {shown}: {_first_line(exc)}") from None
    return url


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

    for line in ensure_prefect_objects(settings_or_exit()):
        typer.echo(line)


@app.command("sandbox")
def sandbox(
    port: Annotated[int | None, typer.Option(help="Port (default: GETTOK_SANDBOX_PORT).")] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
) -> None:
    """Serve the local TikTok + OpenAI stand-in in the foreground (faults from GETTOK_SANDBOX_*)."""
    from gettok.sandbox.config import SandboxConfig
    from gettok.sandbox.server import sandbox_env, serve

    settings = settings_or_exit()
    config = SandboxConfig()
    port = settings.sandbox_port if port is None else port
    base_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    typer.echo(
        f"gettok sandbox at {base_url} (seed {config.seed}, {config.videos_per_day} videos/day)"
    )
    typer.echo("point gettok at it with:")
    for key, value in sandbox_env(base_url, config).items():
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
        typer.Option("--kind", help="description, stance, sentiment or summary (repeatable)."),
    ] = None,
) -> None:
    """Extract frames and annotate pending videos with the LLM (description, stance, sentiment,
    summary), within a budget; --dry-run estimates the cost without sending anything."""
    from gettok.clients.llm import LlmUnavailable, PriceUnknown
    from gettok.flows.enrich import enrich
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
                    f"{k.kind:<12} {k.model:<24} {k.videos:>7} videos "
                    f"{k.input_tokens:>11} in {k.output_tokens:>9} out  ${k.cost_usd:.4f}"
                )
            typer.echo(
                f"estimated total ${estimate.total_usd:.4f} of a ${estimate.budget_usd:.2f} "
                f"budget{'' if estimate.within_budget else ': OVER BUDGET'}"
            )
            return
        result = enrich(campaign=campaign, kinds=kind, budget_usd=budget_usd)
    except (PriceUnknown, LlmUnavailable) as exc:
        raise fail(str(exc)) from None
    typer.echo(result.summary())


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

    settings = settings_or_exit()
    campaign = campaign_or_exit(campaign_file)
    first, last = dates_or_exit(start, end, campaign)
    if not settings.has_tiktok_credentials:
        raise fail(
            "set GETTOK_TIKTOK_CLIENT_KEY and GETTOK_TIKTOK_CLIENT_SECRET "
            "(or run `gettok sandbox` and use the variables it prints)"
        )
    database_or_exit(settings)
    try:
        result = collect(campaign, first, last, wait_for_quota)
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

    settings = settings_or_exit()
    campaign = campaign_or_exit(campaign_file)
    database_or_exit(settings)
    ensure_transcription_limit(settings)  # strict acquisition needs the limit to exist
    result = transcribe(campaign=campaign, retry_failed=retry_failed, limit=limit)
    typer.echo(f"{campaign.name}: {result.summary()}")
    for video_id, error in result.failed.items():  # recorded as `failed` rows; not retried
        typer.echo(f"  video {video_id}: {error}", err=True)


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

    settings = settings_or_exit()
    campaign = campaign_or_exit(campaign_file)
    database_or_exit(settings)
    result = download(campaign=campaign, retry_failed=retry_failed, limit=limit)
    typer.echo(f"{campaign.name}: {result.summary()}")
    if result.blocked_until is not None:
        raise typer.Exit(code=75)


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
    from gettok.local_mode import free_stale_model_slots, local_services
    from gettok.orchestration import ensure_prefect_objects

    campaign = campaign_or_exit(campaign_file)
    first, last = dates_or_exit(start, end, campaign)
    with local_services(settings_or_exit()) as services:
        for note in services.notes:
            typer.secho(note, fg=typer.colors.YELLOW)
        settings = settings_or_exit()
        database_or_exit(settings)
        ensure_prefect_objects(settings)
        for note in free_stale_model_slots(settings):
            typer.secho(note, fg=typer.colors.YELLOW)
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
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder (default: data/exports/<campaign>/).")
    ] = None,
) -> None:
    """Export the campaign's videos, one row each, with a data dictionary beside the file."""
    from gettok.flows.export import export
    from gettok.tasks.export.dataset import CampaignNotFound

    if fmt not in ("parquet", "csv", "jsonl"):
        raise fail(f"--format must be parquet, csv or jsonl, not {fmt!r}")
    settings = settings_or_exit()
    campaign = campaign_or_exit(campaign_file)
    database_or_exit(settings)
    try:
        result = export(campaign, fmt, public, str(out) if out else None)
    except CampaignNotFound as exc:
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
    """Write the dataset report (Markdown + PNG figures) and publish it as Prefect artifacts."""
    from gettok.flows.report import report
    from gettok.tasks.export.dataset import CampaignNotFound

    settings = settings_or_exit()
    campaign = campaign_or_exit(campaign_file)
    database_or_exit(settings)
    try:
        result = report(campaign, str(out) if out else None)
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
    campaign = campaign_or_exit(campaign_file) if campaign_file else None
    database_or_exit(settings)
    result = prune(campaign, limit)
    typer.echo(result.summary())


@app.command("watch")
def watch_command(
    campaign_file: CampaignFile,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N videos.")] = None,
) -> None:
    """Check new videos' frames for the campaign's watchlist targets; alert on matches."""
    from gettok.flows.watch import watch

    settings = settings_or_exit()
    campaign = campaign_or_exit(campaign_file)
    if campaign.watch is None:
        raise fail(f"{campaign_file}: no [watch] section")
    missing = [
        str(p)
        for p in campaign.watch.images
        if not (p.exists() or (campaign_file.parent / p).exists())
    ]
    if missing:
        raise fail(f"watch images not found: {', '.join(missing)}")
    database_or_exit(settings)
    for r in watch(str(campaign_file), limit):
        typer.echo(
            f"{r.target}: {r.videos_checked} videos checked, {len(r.matched)} matched"
            + (f" {r.matched}" if r.matched else "")
            + (f"; not checked: {r.failed}" if r.failed else "")
        )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
