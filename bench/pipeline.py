"""Benchmark the pipeline's orchestration: what Prefect and the pipeline's own bookkeeping cost per
video when the work itself is instant. The last stdout line is one JSON object.

The real `pipeline` flow runs with its real child flows (download, transcribe, enrich) and batch
tasks (collect-window, download-videos, transcribe-videos, extract-frames, annotate-*); only the
leaf work each batch task calls is swapped, with `unittest.mock.patch` on the module attribute
the task body looks up, for an instant stand-in that writes the rows the real work would (so
every pending query sees the work done):

- collecting a window links that day's pre-inserted videos to the campaign (as `store_page`
  does: linking them all beforehand would hand every day to the first window's downloads) and
  marks the window done; 500 videos per UTC day, like GET-Tok's 50,631 over 101 days;
- downloading writes `ok` download rows, transcribing writes Whisper transcript rows, frame
  extraction one frame row per video, annotating one row per kind (two for a description).
Instant collection outruns processing, so later windows' videos join an earlier process batch
(as in a backfill, where downloads are the slow part), and the batches queued meanwhile leave
their videos to the last one queued (`BatchQueue`).

The baseline calls the same instant functions directly, window by window, in the same batches,
without Prefect and without the pipeline's pending queries, artifacts and logs. Overhead per
video = (pipeline seconds - direct seconds) / videos. Each run gets a fresh SQLite database in a
temporary directory; Prefect is a throwaway server (`prefect_test_harness`, SQLite) set up as
`gettok setup` does. Task runs are read back from that server: those of the pipeline's flow run
and of its child flow runs (a child flow call is also one task run of its parent, as Prefect
records it); `task_runs_per_1k_videos` is the 1,000-video run's count. Batch sizes come from the
settings (GETTOK_LLM_BATCH_SIZE=250 ... to try others).

    python -m bench.pipeline [--sizes 1000 10000] [--per-day 500] [--no-flow-heartbeats]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from bench.instant_work import InstantWork, patched
from gettok import db
from gettok.models.campaign import Campaign, load_campaign
from gettok.models.schema import (
    Video,
)
from gettok.orchestration import ensure_prefect_objects
from gettok.progress import stage_counts
from gettok.settings import Settings, get_settings
from gettok.tasks.annotate.annotator import REQUESTED_KINDS
from gettok.tasks.collect.paging import CollectContext
from gettok.tasks.collect.store import save_campaign
from gettok.tasks.collect.windows import collection_windows
from gettok.tasks.frames import FRAMES_BATCH
from gettok.tasks.transcribe import (
    whisper_options,
)

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN_FILE = ROOT / "campaigns" / "peru_2022.toml"
START = date(2022, 12, 1)


# --- one run ----------------------------------------------------------------------------------


def fresh_database(folder: Path, name: str, campaign: Campaign, days: int, per_day: int) -> str:
    """A migrated SQLite database with `per_day` videos on each of `days` UTC days."""
    url = f"sqlite:///{folder / name}.db"
    db.upgrade(url)
    rows = []
    for d in range(days):
        midnight = int(
            datetime.combine(START + timedelta(days=d), datetime.min.time(), UTC).timestamp()
        )
        for n in range(per_day):
            create_time = midnight + n * 86_400 // per_day
            video_id = (create_time << 32) | (n * 2_654_435_761 % 2**32)
            rows.append({
                "id": video_id, "username": f"usuario{n % 997}", "create_time": create_time,
                "created_at": datetime.fromtimestamp(create_time, UTC), "region_code": "PE",
                "video_description": "Castillo #golpedeestado", "raw": {"id": video_id},
            })  # fmt: skip
    with db.session_scope(url) as session:
        save_campaign(session, campaign)
        for start in range(0, len(rows), 5_000):
            session.execute(insert(Video), rows[start : start + 5_000])
    return url


def use_database(url: str, media_dir: Path) -> Settings:
    os.environ["GETTOK_DATABASE_URL"] = url
    os.environ["GETTOK_MEDIA_DIR"] = str(media_dir)
    return get_settings()


def run_direct(url: str, media_dir: Path, campaign: Campaign, days: int) -> float:
    """The same instant work, window by window and batch by batch, with nothing around it."""
    settings = use_database(url, media_dir)
    work = InstantWork()
    with db.session_scope(url) as session:
        campaign_id = save_campaign(session, campaign)
    ctx = CollectContext(url, None, campaign, campaign_id, None)  # the stand-in needs no client
    options = whisper_options(settings, campaign.language, campaign.force_language)
    kinds = [k for k in REQUESTED_KINDS if work.plan(k, campaign, settings)]
    began = time.perf_counter()
    for window in collection_windows(START, START + timedelta(days=days - 1)):
        work.collect_window(ctx, window)
        videos = work.linked[window]
        ids = [i for i, _ in videos]
        for part in _batches(videos, settings.download_batch_size):
            work.download_videos(part, settings)
        for part in _batches(ids, settings.transcription_batch_files):
            work.transcribe_videos(part, settings, options)
        for part in _batches(ids, FRAMES_BATCH):
            work.extract_frames(url, settings, part, len(part))
        for kind in kinds:
            for part in _batches(ids, settings.llm_batch_size):
                work.annotate_videos(url, settings, campaign, kind, part)
    return time.perf_counter() - began


def run_pipeline(url: str, media_dir: Path, days: int):
    """The real pipeline flow over `days` days; returns its seconds, flow run id and result."""
    from gettok.flows.pipeline import pipeline

    use_database(url, media_dir)
    with patched(InstantWork()):
        began = time.perf_counter()
        state = pipeline(
            campaign_file=str(CAMPAIGN_FILE),
            start_date=START,
            end_date=START + timedelta(days=days - 1),
            return_state=True,
        )
        seconds = time.perf_counter() - began
    return seconds, state.state_details.flow_run_id, state.result()


def _batches(items: list, size: int):
    return (items[start : start + size] for start in range(0, len(items), size))


# --- what Prefect recorded --------------------------------------------------------------------


def task_runs_of(
    flow_run_id, settle_s: float = 60.0
) -> tuple[int, int, dict[str, int], dict[str, int]]:
    """(flow runs, task runs, task runs by task, artifacts) of a flow run and all its
    descendants.

    Task runs reach the server as events, a moment after the flow returns: read until the count
    holds still for a few seconds."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterParentFlowRunId,
    )

    with get_client(sync_client=True) as client:
        deadline, last, stable_since = time.monotonic() + settle_s, None, time.monotonic()
        while True:
            runs = {flow_run_id}
            frontier = [flow_run_id]
            while frontier:
                children = []
                while True:  # in pages: a run with 600 child flows was once counted as 200
                    page = client.read_flow_runs(
                        flow_run_filter=FlowRunFilter(
                            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=frontier)
                        ),
                        limit=200,
                        offset=len(children),
                    )
                    children += page
                    if len(page) < 200:
                        break
                frontier = [c.id for c in children if c.id not in runs]
                runs.update(frontier)
            tasks = []
            while True:
                page = client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(runs))),
                    limit=200,
                    offset=len(tasks),
                )
                tasks += page
                if len(page) < 200:
                    break
            now = time.monotonic()
            if (len(runs), len(tasks)) != last:
                last, stable_since = (len(runs), len(tasks)), now
            elif now - stable_since >= 3 or now > deadline:
                break
            time.sleep(1)
    by_task = Counter(t.task_key.rsplit("-", 1)[0] for t in tasks)
    return len(runs), len(tasks), dict(sorted(by_task.items())), _artifacts_of(list(runs))


def _artifacts_of(flow_runs: list) -> dict[str, int]:
    """How many artifacts the flow runs made, and the largest one's stored size in bytes: a
    table that grew with the videos (not the days or batches) would burden the server's
    database and the UI."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    artifacts: list = []
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=flow_runs)),
                limit=200,
                offset=len(artifacts),
            )
            artifacts += page
            if len(page) < 200:
                break
    sizes = [len(json.dumps(a.data, default=str)) for a in artifacts]
    return {"artifacts": len(artifacts), "largest_artifact_bytes": max(sizes, default=0)}


# --- the benchmark ----------------------------------------------------------------------------


def measure(folder: Path, campaign: Campaign, videos: int, per_day: int) -> dict:
    days = max(1, math.ceil(videos / per_day))
    media_dir = folder / "media"
    direct_url = fresh_database(folder, f"direct-{videos}", campaign, days, per_day)
    direct_s = run_direct(direct_url, media_dir, campaign, days)
    direct_counts = stage_counts(direct_url, campaign.name)
    pipeline_url = fresh_database(folder, f"pipeline-{videos}", campaign, days, per_day)
    pipeline_s, run_id, result = run_pipeline(pipeline_url, media_dir, days)
    flow_runs, task_runs, by_task, artifacts = task_runs_of(run_id)
    total = days * per_day
    # The instant work must have reached every video, the same way in both runs.
    assert result.counts == direct_counts, (result.counts, direct_counts)
    assert result.counts.with_frames == total == result.counts.downloads.get("ok"), result.counts
    return {
        "videos": total,
        "days": days,
        "direct_s": round(direct_s, 3),
        "pipeline_s": round(pipeline_s, 3),
        "overhead_ms_per_video": round(1000 * (pipeline_s - direct_s) / total, 2),
        "flow_runs": flow_runs,
        "task_runs": task_runs,
        "task_runs_per_1k_videos": round(1000 * task_runs / total, 1),
        "task_runs_by_task": by_task,
        **artifacts,
        "batches": result.batches,
        "annotations": result.counts.annotations,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--per-day", type=int, default=500)
    parser.add_argument(
        "--no-flow-heartbeats",
        action="store_true",
        help="run with Prefect's flow heartbeats off (each flow run's exit waits ~1 s for them)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_LOCAL_STORAGE_PATH,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    campaign = load_campaign(CAMPAIGN_FILE)
    os.environ.setdefault("GETTOK_TIKTOK_CLIENT_KEY", "bench")  # the client is built, never asked
    os.environ.setdefault("GETTOK_TIKTOK_CLIENT_SECRET", "bench")
    os.environ["GETTOK_TIKTOK_API_URL"] = "http://127.0.0.1:9"
    settings = get_settings()
    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="gettok-bench-pipeline-") as tmp:
        folder = Path(tmp)
        updates = {PREFECT_LOCAL_STORAGE_PATH: folder / "results"}
        if args.no_flow_heartbeats:
            updates[PREFECT_FLOWS_HEARTBEAT_FREQUENCY] = None
        with prefect_test_harness(server_startup_timeout=180), temporary_settings(updates):
            heartbeat_s = PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value()
            ensure_prefect_objects(settings)  # as `gettok setup` does: pools and limits
            # One day first, so that one-off start-up costs (imports, first flow run) are not
            # charged to the 1k run.
            warm = measure(folder, campaign, args.per_day, args.per_day)
            for size in args.sizes:
                runs[f"{size // 1000}k" if size % 1000 == 0 else str(size)] = measure(
                    folder, campaign, size, args.per_day
                )
                print(json.dumps({"run": size, **runs[list(runs)[-1]]}), flush=True)
    print(json.dumps(summary(runs, warm, args.per_day, heartbeat_s, settings)))


def summary(
    runs: dict[str, dict], warm: dict, per_day: int, heartbeat_s, settings: Settings
) -> dict:
    """The final JSON line: the overheads per video against the aims, and how they were run."""
    first = runs[next(iter(runs))]
    return {
        "overhead_ms_per_video_1k": runs.get("1k", {}).get("overhead_ms_per_video"),
        "overhead_ms_per_video_10k": runs.get("10k", {}).get("overhead_ms_per_video"),
        "task_runs_per_1k_videos": first["task_runs_per_1k_videos"],
        "aim": {"overhead_ms_per_video": 20, "task_runs_per_1k_videos": 100},
        "videos_per_day": per_day,
        "batch_settings": {
            "download_batch_size": settings.download_batch_size,
            "transcription_batch_files": settings.transcription_batch_files,
            "transcription_task_videos": settings.transcription_task_videos,
            "frames_batch": FRAMES_BATCH,
            "llm_batch_size": settings.llm_batch_size,
            "llm_kinds": len(REQUESTED_KINDS),
        },
        "database": "fresh SQLite per run in a temporary directory",
        "prefect": "prefect_test_harness (temporary server on SQLite)",
        "prefect_flow_heartbeat_s": heartbeat_s,
        "warmup_run": {k: warm[k] for k in ("videos", "direct_s", "pipeline_s")},
        "runs": runs,
    }


if __name__ == "__main__":
    main()
