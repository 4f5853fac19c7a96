"""The contract every stage keeps, checked for each stage on one small sandbox campaign.

A stage's flow takes `campaign_file: str` and returns a result with a `StageResult`; a second run
finds nothing new to do (`done == 0`); no work claim is left behind; and every item the stage
touched ends with a recorded status. The campaign goes through the stages in order (collect,
download, transcribe, frames, annotate, export, report, prune, watch), once per database, through
the real Prefect engine and the sandbox over HTTP.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gettok import db
from gettok.local_mode import shipped_whisper_model
from gettok.membership import campaign_videos
from gettok.models.schema import (
    Annotation,
    AnnotationKind,
    CollectionWindow,
    Download,
    DownloadStatus,
    Frame,
    FrameExtraction,
    PruneRecord,
    Video,
    WindowStatus,
    WorkClaim,
)
from gettok.sandbox.config import SandboxConfig
from gettok.sandbox.server import running_sandbox
from gettok.settings import get_settings
from gettok.stage import StageResult
from tests.conftest import BACKENDS, fresh_database

DAY = date(2022, 12, 1)
STAGES = [
    "collect",
    "download",
    "transcribe",
    "frames",
    "annotate",
    "export",
    "report",
    "prune",
    "watch",
]
CAMPAIGN = """
name = "contract"
title = "Stage contract"
start_date = "2022-12-01"
end_date = "2022-12-01"
language = "en"  # the shipped Whisper model is English-only

[query]
region_codes = ["PE"]
keywords = ["castillo"]

[stance]
target = "Pedro Castillo as President of Peru"
labels = ["support", "no support", "neutral"]

[watch]
description = "a crowd holding a Peruvian flag"
"""


@dataclass
class World:
    """One campaign on one database, taken through the stages in order."""

    url: str
    folder: Path
    env: dict[str, str]
    campaign_file: str
    ran: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory, prefect_harness) -> Iterator[Callable[[str], World]]:
    """A world per backend, made when a test first asks for it and kept for the module."""
    made: dict[str, World] = {}
    with ExitStack() as stack:

        def world(backend: str) -> World:
            if backend not in made:
                folder = tmp_path_factory.mktemp(f"contract-{backend}")
                url = stack.enter_context(_database(backend, folder))
                config = SandboxConfig(
                    fault_seed=20221207,
                    videos_per_day=6,
                    media_cache_dir=tmp_path_factory.getbasetemp() / "contract-media",
                    slideshow_share=0.2,
                    private_share=0.2,
                )
                sandbox = stack.enter_context(running_sandbox(config))
                campaign_file = folder / "contract.toml"
                campaign_file.write_text(CAMPAIGN, encoding="utf-8")
                made[backend] = World(url, folder, _env(sandbox, url, folder), str(campaign_file))
            return made[backend]

        yield world


def _database(backend: str, folder: Path):
    from contextlib import contextmanager

    return contextmanager(fresh_database)(backend, folder)


def _env(sandbox, url: str, folder: Path) -> dict[str, str]:
    return sandbox.env() | {
        "GETTOK_DATABASE_URL": url,
        "GETTOK_DATA_DIR": str(folder / "data"),
        "GETTOK_MEDIA_DIR": str(folder / "media"),
        "GETTOK_WHISPER_MODEL": shipped_whisper_model(),
        "GETTOK_TRANSCRIPTION_LIMIT": "gpu-contract",
        "GETTOK_LLM_MODEL": "sandbox-vision",
        "GETTOK_LLM_PRICES": '{"sandbox-vision": [100.0, 400.0]}',
        "GETTOK_LLM_BACKOFF_S": "0.01",
        "GETTOK_LLM_MAX_WAIT_S": "0.01",
        "GETTOK_DOWNLOAD_REQUESTS_PER_S": "200",
        "GETTOK_DOWNLOAD_TIMEOUT_S": "10",
        "GETTOK_TIKTOK_RETRY_WAIT_SCALE": "0.001",
    }


def run_stage(stage: str, campaign_file: str) -> StageResult:
    """Run the stage's flow and return its StageResult."""
    if stage == "collect":
        from gettok.flows.collect import collect

        return collect(campaign_file, DAY, DAY).stage_result()
    if stage == "download":
        from gettok.flows.download import download

        return download(campaign_file, transient_rounds=0).stage_result()
    if stage == "transcribe":
        from gettok.flows.transcribe import transcribe
        from gettok.tasks.transcribe import ensure_transcription_limit

        ensure_transcription_limit(get_settings())
        return transcribe(campaign_file).stage_result()
    if stage == "frames":
        from gettok.flows.frames import frames

        return frames(campaign_file).stage_result()
    if stage == "annotate":
        from gettok.flows.enrich import enrich

        return enrich(campaign_file).stage_result()
    if stage == "export":
        from gettok.flows.export import export

        return export(campaign_file).stage_result()
    if stage == "report":
        from gettok.flows.report import report

        return report(campaign_file).stage_result()
    if stage == "prune":
        from gettok.flows.prune import prune

        return prune(campaign_file).stage_result()
    from gettok.flows.watch import watch

    total = StageResult(stage="watch")
    for result in watch(campaign_file):
        total = total.merge(result.stage_result())
    return total


def unrecorded(stage: str, world: World) -> list:
    """Items the stage should have touched that have no recorded status."""
    members = campaign_videos("contract", with_pruned=True)
    usable = Download.status.in_([DownloadStatus.ok, DownloadStatus.slideshow])
    queries = {
        "collect": select(CollectionWindow.id).where(
            CollectionWindow.status.in_([WindowStatus.pending, WindowStatus.running])
        ),
        "download": select(Video.id).where(
            Video.id.in_(members), ~Video.id.in_(select(Download.video_id))
        ),
        "frames": select(Download.video_id).where(
            usable, ~Download.video_id.in_(select(FrameExtraction.video_id))
        ),
        "prune": select(Video.id).where(
            Video.pruned_at.is_not(None), ~Video.id.in_(select(PruneRecord.video_id))
        ),
        "watch": select(Frame.video_id).where(
            ~Frame.video_id.in_(
                select(Annotation.video_id).where(Annotation.kind == AnnotationKind.watch_match)
            )
        ),
    }
    url = world.url
    if stage in queries:
        with db.session_scope(url) as session:
            return list(session.scalars(queries[stage]))
    if stage == "transcribe":
        from gettok.tasks.transcribe import pending_videos, whisper_options

        return pending_videos(url, whisper_options(get_settings(), "en"), "contract")
    if stage == "annotate":
        from gettok.models.campaign import load_campaign
        from gettok.tasks.annotate import store
        from gettok.tasks.annotate.annotator import REQUESTED_KINDS, plan_for

        campaign = load_campaign(Path(world.campaign_file))
        with db.session_scope(url) as session:
            return [
                (kind, store.pending_videos(session, "contract", plan))
                for kind in REQUESTED_KINDS
                if (plan := plan_for(kind, campaign, get_settings()))
                and store.pending_videos(session, "contract", plan)
            ]
    folder = Path(get_settings().data_dir) / ("exports" if stage == "export" else "reports")
    wanted = "contract.parquet" if stage == "export" else "report.md"
    return [] if (folder / "contract" / wanted).is_file() else [wanted]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("stage", STAGES)
def test_stage_keeps_the_contract(stage, backend, worlds, monkeypatch):
    world = worlds(backend)
    for key in list(os.environ):
        if key.startswith("GETTOK_") and not key.startswith("GETTOK_TEST_"):
            monkeypatch.delenv(key)
    for key, value in world.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(world.folder)
    for before in STAGES[: STAGES.index(stage)]:  # what this stage works on
        if before not in world.ran:
            run_stage(before, world.campaign_file)
            world.ran.append(before)

    first = run_stage(stage, world.campaign_file)
    world.ran.append(stage)
    assert isinstance(first, StageResult) and first.stage == stage
    if stage in ("collect", "download", "transcribe", "frames", "annotate", "export", "report"):
        assert first.done > 0, first.summary()  # the small campaign gives each of them work
    again = run_stage(stage, world.campaign_file)
    assert again.done == 0, again.summary()
    with db.session_scope(world.url) as session:
        assert session.scalar(select(func.count()).select_from(WorkClaim)) == 0
    assert unrecorded(stage, world) == []
