"""Prefect objects gettok needs on a server: work pools and global concurrency limits.

`gettok setup` calls `ensure_prefect_objects` and can be rerun at any time: it creates what is
missing and updates limits whose size changed in the settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists

from gettok.settings import Settings

WORK_POOLS = {
    "cpu": "collection, downloads, frames, LLM calls, outputs",
    "gpu": "Whisper transcription (workers on machines with a GPU)",
}
DOWNLOAD_RATE_LIMIT = "download-rate"
LLM_RATE_LIMIT = "llm-rate"


@dataclass(frozen=True)
class LimitSpec:
    name: str
    limit: int
    slot_decay_per_second: float | None = None  # set: a rate limit (slots refill at this rate)


def concurrency_limits(settings: Settings) -> list[LimitSpec]:
    """The global limits shared by every flow run and worker."""
    download_rate = settings.download_requests_per_s
    llm_rate = settings.llm_requests_per_s
    return [
        LimitSpec(settings.transcription_limit, settings.transcription_concurrency),
        LimitSpec(DOWNLOAD_RATE_LIMIT, max(1, round(download_rate)), download_rate),
        LimitSpec(LLM_RATE_LIMIT, max(1, round(llm_rate)), llm_rate),
    ]


def ensure_prefect_objects(settings: Settings) -> list[str]:
    """Create the work pools and concurrency limits if missing; return what was done."""
    done: list[str] = []
    with get_client(sync_client=True) as client:
        for name, description in WORK_POOLS.items():
            try:
                client.create_work_pool(
                    WorkPoolCreate(name=name, type="process", description=description)
                )
                done.append(f"work pool {name}: created")
            except ObjectAlreadyExists:
                done.append(f"work pool {name}: exists")
        for spec in concurrency_limits(settings):
            client.upsert_global_concurrency_limit_by_name(
                spec.name, spec.limit, slot_decay_per_second=spec.slot_decay_per_second
            )
            rate = f", refills {spec.slot_decay_per_second}/s" if spec.slot_decay_per_second else ""
            done.append(f"concurrency limit {spec.name}: {spec.limit} slots{rate}")
    return done
