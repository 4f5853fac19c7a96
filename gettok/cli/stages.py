"""`gettok collect`, `download`, `transcribe`, `enrich` and `run`: the pipeline's stages, each a
thin wrapper that checks its inputs, calls the stage's flow and prints its summary."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.exc import DBAPIError

from gettok import db
from gettok.cli.preflight import (
    CampaignFile,
    campaign_or_exit,
    database_or_exit,
    dates_or_exit,
    fail,
    first_line,
    services_or_exit,
    settings_or_exit,
    web_needs_sandbox,
)


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
    from gettok.clients.llm import LlmUnavailable
    from gettok.clients.llm_budget import PriceUnknown
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
    from gettok.tasks.transcribe.whisper_model import ModelUnavailable, check_model

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
                f"error: lost the database during the run: {first_line(exc)}; what was stored "
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
