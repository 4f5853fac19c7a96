"""`gettok retranscribe`: transcribe a campaign again with another Whisper model.

The old transcripts stay (history); the new model's become current, so annotations made from the
old ones are stale: the command says how many, and the next `gettok enrich` redoes exactly those.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gettok.cli.preflight import campaign_or_exit, database_or_exit, fail, settings_or_exit


def retranscribe_command(
    campaign_file: Annotated[Path, typer.Option("--campaign", "-c", help="Campaign TOML file.")],
    model: Annotated[
        str, typer.Option("--model", help="faster-whisper model name or directory (e.g. base).")
    ],
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N videos.")] = None,
) -> None:
    """Transcribe the campaign's videos with MODEL, keep the old transcripts, make the new ones
    current, and say how many annotations became stale."""
    from gettok.flows.transcribe import transcribe
    from gettok.tasks.annotate.store import count_stale_annotations
    from gettok.tasks.transcribe.store import make_current
    from gettok.tasks.transcribe.transcriber import ensure_transcription_limit, whisper_options
    from gettok.tasks.transcribe.whisper_model import ModelUnavailable, check_model

    settings = settings_or_exit()
    campaign = campaign_or_exit(campaign_file)
    url = database_or_exit(settings)
    try:
        check_model(model)
    except ModelUnavailable as exc:
        raise fail(str(exc)) from None
    options = whisper_options(settings, campaign.language, campaign.force_language, model=model)
    stale_before = count_stale_annotations(url, campaign.name)
    reused = make_current(url, options, campaign.name)  # already made with MODEL: current again
    ensure_transcription_limit(settings)
    result = transcribe(str(campaign_file), limit=limit, model=model)
    stale = count_stale_annotations(url, campaign.name) - stale_before
    typer.echo(f"{campaign.name}: {result.summary()}")
    if reused:
        typer.echo(f"{reused} earlier {options.model_name} transcripts made current again")
    typer.echo(
        f"{max(stale, 0)} annotations became stale: `gettok enrich` redoes them "
        f"(old transcripts and annotations are kept)"
    )
    if result.failed and not (result.done or result.empty):
        raise fail(f"every one of the {len(result.failed)} transcriptions failed")


def register(app: typer.Typer) -> None:
    """Add the command to the `gettok` app."""
    app.command("retranscribe")(retranscribe_command)
