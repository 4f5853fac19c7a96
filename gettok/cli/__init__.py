"""The `gettok` command: thin wrappers that load settings and a campaign, then call a flow.

This module assembles the app; each command lives in the module of its kind (`stages`, `dataset`,
`setup`, `comments`, `transcripts`, `validate`, `watch`) and `preflight` holds the checks they
share. Heavy libraries are imported inside the commands that need them, so quick ones stay quick.
"""

from __future__ import annotations

import os

import typer

from gettok.cli.comments import register as register_comment_commands
from gettok.cli.dataset import export_command, prune_command, report_command
from gettok.cli.setup import campaign_app, db_app, sandbox_command, setup_command, status_command
from gettok.cli.stages import (
    collect_command,
    download_command,
    enrich_command,
    run_command,
    transcribe_command,
)
from gettok.cli.transcripts import register as register_transcript_commands
from gettok.cli.validate import validate_app
from gettok.cli.watch import watch_app

app = typer.Typer(
    help="Collect, download and enrich TikTok videos for research.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(campaign_app, name="campaign")
app.add_typer(validate_app, name="validate")
app.add_typer(watch_app, name="watch")
register_comment_commands(app)
register_transcript_commands(app)
# The other commands, in the order `gettok --help` lists them.
COMMANDS = (
    ("setup", setup_command),
    ("status", status_command),
    ("sandbox", sandbox_command),
    ("enrich", enrich_command),
    ("collect", collect_command),
    ("transcribe", transcribe_command),
    ("download", download_command),
    ("run", run_command),
    ("export", export_command),
    ("report", report_command),
    ("prune", prune_command),
)
for _name, _command in COMMANDS:
    app.command(_name)(_command)


@app.callback()
def prefect_defaults() -> None:
    # A temporary Prefect server would report telemetry (and log an ERROR when offline).
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The stages log their progress (batches, waiting for the gpu slot) on `gettok.*` loggers.
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "gettok")
    # Prefect gives its temporary server 20 s to start; a laptop busy with Whisper (or this
    # 2-core machine under load) needs more, and a timeout there fails the whole run.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


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
