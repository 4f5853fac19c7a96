"""`gettok watch`: check new videos for the campaign's watchlist; `gettok watch evaluate`: measure
how well a face target is recognised on photos it was not enrolled with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gettok.cli.preflight import (
    campaign_or_exit,
    database_or_exit,
    fail,
    services_or_exit,
    settings_or_exit,
)
from gettok.models.campaign import Campaign

watch_app = typer.Typer(
    help="The watchlist: alert when a watched person or picture appears in new videos."
)

CampaignOption = Annotated[
    Path | None, typer.Option("--campaign", "-c", help="Campaign TOML file.")
]


def check_targets(campaign: Campaign) -> list[str]:
    """Load every target as a run would (faces enrolled): one line each, or exit naming the
    target and the file that cannot be used."""
    from gettok.flows.watch import watch_targets
    from gettok.tasks.watch.face_target import TargetError, image_files, load_face_target

    lines = []
    try:
        for target in watch_targets(campaign):
            if target.kind == "face":
                face = load_face_target(target)
                lines.append(
                    f"watch target {target.name} (face): {len(face.examples)} examples, "
                    f"{face.negatives} negatives, threshold {face.threshold} "
                    f"({face.threshold_from})"
                )
            elif target.kind == "image":
                count = len(image_files(target.examples, target.name))
                lines.append(f"watch target {target.name} (image): {count} reference images")
            else:
                lines.append(f"watch target {target.name} (description): {target.description!r}")
    except TargetError as exc:
        raise fail(str(exc)) from None
    return lines


@watch_app.callback(invoke_without_command=True)
def watch_command(
    ctx: typer.Context,
    campaign_file: CampaignOption = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N videos.")] = None,
) -> None:
    """Check new videos for the campaign's watchlist targets; alert on matches. The last line is
    one JSON object: {"targets": {NAME: {"checked": N, "matched": [video ids]}}}."""
    if ctx.invoked_subcommand is not None:
        return
    if campaign_file is None:
        raise fail("give the campaign: gettok watch --campaign FILE")
    settings = settings_or_exit()
    campaign = campaign_or_exit(campaign_file)
    if campaign.watch is None:
        raise fail(f"{campaign_file}: no [watch] section")
    from gettok.flows.watch import watch, watch_targets

    # Every target appears, checked 0 when the campaign has nothing collected yet.
    targets = watch_targets(campaign)
    summary = {t.name: {"checked": 0, "matched": []} for t in targets}
    # Described targets ask the vision LLM: resolved like every command (sandbox, or refused)
    # before anything else is said.
    with services_or_exit(llm=any(t.kind == "description" for t in targets)):
        for line in check_targets(campaign):
            typer.echo(line)
        database_or_exit(settings)
        results = watch(str(campaign_file), limit)
    for r in results:
        typer.echo(
            f"{r.target}: {r.videos_checked} videos checked, {len(r.matched)} matched"
            + (f" {r.matched}" if r.matched else "")
            + (f", {r.already_alerted} already alerted" if r.already_alerted else "")
            + (f"; not checked: {r.failed}" if r.failed else "")
        )
        summary[r.target] = {"checked": r.videos_checked, "matched": r.matched}
    typer.echo(json.dumps({"targets": summary}))


@watch_app.command("evaluate")
def evaluate_command(
    campaign_file: Annotated[Path, typer.Option("--campaign", "-c", help="Campaign TOML file.")],
    target: Annotated[str, typer.Option("--target", help="A face target of the campaign.")],
    positives: Annotated[
        Path, typer.Option("--positives", help="Held-out photos of the target's person.")
    ],
    negatives: Annotated[Path, typer.Option("--negatives", help="Held-out photos of others.")],
) -> None:
    """Precision, recall and F1 of a face target on photos it was not enrolled with, and the
    threshold those photos would choose. The last line is one JSON object."""
    from gettok.flows.watch import watch_targets
    from gettok.tasks.watch.face_target import (
        TargetError,
        evaluate_face_target,
        load_face_target,
    )

    campaign = campaign_or_exit(campaign_file)
    found = {t.name: t for t in watch_targets(campaign)}
    if target not in found or found[target].kind != "face":
        faces = ", ".join(n for n, t in found.items() if t.kind == "face") or "none"
        raise fail(f"{campaign_file}: no face target {target!r} (face targets: {faces})")
    try:
        enrolled = load_face_target(found[target])
        report = evaluate_face_target(enrolled, [positives], [negatives])
    except TargetError as exc:
        raise fail(str(exc)) from None
    enrolled_names = set(enrolled.examples)
    held = set(report["distances"]["positives"]) | set(report["distances"]["negatives"])
    if enrolled_names & held:
        typer.secho(
            "warning: some photos are also enrolled examples (same file name): "
            + ", ".join(sorted(enrolled_names & held)),
            err=True,
            fg=typer.colors.YELLOW,
        )
    typer.echo(
        f"{target}: threshold {report['threshold']} ({report['threshold_from']})\n"
        f"{report['positives']} positives, {report['negatives']} negatives "
        f"({report['no_face']} without a detectable face)\n"
        f"precision {report['precision']:.3f}  recall {report['recall']:.3f}  "
        f"F1 {report['f1']:.3f}; these photos would choose threshold {report['chosen_threshold']}"
    )
    typer.echo(json.dumps(report))


def campaign_watch_lines(campaign: Campaign) -> list[str]:
    """For `gettok campaign show`: the watch targets and their example counts."""
    if campaign.watch is None:
        return []
    return check_targets(campaign)
