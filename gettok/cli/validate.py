"""`gettok validate`: draw a sample for people to code, score their codes, serve the coding page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gettok.cli.preflight import (
    CampaignFile,
    campaign_or_exit,
    database_or_exit,
    fail,
    settings_or_exit,
)

validate_app = typer.Typer(
    help="Validation: people code a sample; gettok measures how far to trust each AI label.",
    no_args_is_help=True,
)


def _ready(campaign_file: Path):
    """Settings, campaign and migrated database, or a clear error (as every gettok command)."""
    settings = settings_or_exit()
    campaign = campaign_or_exit(campaign_file)
    return settings, campaign, database_or_exit(settings)


@validate_app.command("sample")
def sample_command(
    campaign_file: CampaignFile,
    kind: Annotated[
        str, typer.Option("--kind", help="stance, sentiment, summary_check or description.")
    ],
    n: Annotated[int, typer.Option("--n", min=1, help="Videos in the sample.")],
    out: Annotated[Path, typer.Option("--out", help="Coding sheet to write (CSV).")],
    stratify: Annotated[
        str | None, typer.Option("--stratify", help="label or day: equal numbers from each.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same sample).")] = 0,
    coders: Annotated[
        str, typer.Option("--coders", help="Coder names, comma-separated: one column each.")
    ] = "coder_1,coder_2",
) -> None:
    """Draw a seeded random sample of annotated videos, record it, and write a blind coding
    sheet (the model's label is not in it)."""
    from gettok.tasks.validate import create_sample
    from gettok.tasks.validate.kinds import KindError
    from gettok.tasks.validate.sample import SampleError
    from gettok.tasks.validate.store import UnknownCampaign

    if stratify not in (None, "label", "day"):
        raise fail(f"--stratify must be label or day, not {stratify!r}")
    names = [c.strip() for c in coders.split(",") if c.strip()]
    if not names or len(set(names)) != len(names):
        raise fail(f"--coders {coders!r}: give distinct names, comma-separated")
    _, campaign, url = _ready(campaign_file)
    labels = campaign.stance.labels if campaign.stance else None
    try:
        result = create_sample(
            url, campaign.name, kind, n, out, seed=seed, stratify=stratify,
            stance_labels=labels, coders=names,
        )  # fmt: skip
    except (KindError, SampleError, UnknownCampaign) as exc:
        raise fail(str(exc)) from None
    typer.echo(
        f"sample {result.sample_id}: {result.videos} {kind} videos (seed {seed}"
        f"{f', stratified by {stratify}' if stratify else ''}); labels: {', '.join(result.labels)}"
    )
    typer.echo(f"coding sheet: {result.sheet}")
    typer.echo(
        f"score it with: gettok validate score --campaign {campaign_file} --codes {result.sheet}"
    )


@validate_app.command("score")
def score_command(
    campaign_file: CampaignFile,
    codes: Annotated[
        list[Path] | None,
        typer.Option("--codes", help="Coded sheet (repeatable: one coder per file is fine)."),
    ] = None,
    sample: Annotated[
        int | None, typer.Option("--sample", help="Sample id (default: the one the sheets name).")
    ] = None,
    target_accuracy: Annotated[
        float,
        typer.Option("--target-accuracy", min=0, max=1, help="Accuracy labels must reach."),
    ] = 0.8,
) -> None:
    """Store the coded sheets (all or nothing), then print and store the agreement between the
    model and the coders. Last line: one JSON object."""
    from gettok.tasks.validate import SheetError, score_sample, store_sheets
    from gettok.tasks.validate.present import figure_lines
    from gettok.tasks.validate.store import UnknownCampaign, UnknownSample

    if not codes and sample is None:
        raise fail("give --codes (coded sheets) or --sample (codes made on the coding page)")
    _, campaign, url = _ready(campaign_file)
    try:
        if codes:
            sample = store_sheets(url, campaign.name, list(codes), sample)
        result = score_sample(url, campaign.name, sample, target_accuracy)
    except (SheetError, UnknownCampaign, UnknownSample) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"sample {result.sample_id} ({result.kind}):")
    for line in figure_lines(result.figures):
        typer.echo(f"  {line}")
    if len(result.by_prompt) > 1:
        for prompt, figures in result.by_prompt.items():
            typer.echo(f"  prompt {prompt}: {json.dumps(figures.headline())}")
    typer.echo(json.dumps({**result.figures.headline(), "sample": result.sample_id}))


@validate_app.command("serve")
def serve_command(
    campaign_file: CampaignFile,
    sample: Annotated[int, typer.Option("--sample", help="Sample id to code.")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8765,
) -> None:
    """Serve the coding page: watch each video, code it with the keyboard; saved at each key."""
    import uvicorn

    from gettok.tasks.validate.page import CodingSample, coding_app
    from gettok.tasks.validate.store import UnknownCampaign, UnknownSample

    settings, campaign, url = _ready(campaign_file)
    try:
        app = coding_app(CodingSample(url, campaign.name, sample, settings.resolved_media_dir))
    except (UnknownCampaign, UnknownSample) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"coding page for sample {sample}: http://{host}:{port}/ (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
