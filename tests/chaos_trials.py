"""Crash-and-resume trials of the whole pipeline, shared by tests/test_chaos.py and bench/chaos.py.

A trial runs `gettok run` as a subprocess against a sandbox served in this process (every request
it answers goes into a ledger), SIGKILLs it at a seeded point of one stage (found from the
database, plus a seeded delay), reruns it to the end, and compares the result with an
uninterrupted run of the same campaign: the same videos, downloads, transcripts, frames and
annotations, each once; nothing stored before the kill done again; no file under the media folder
that no row points at; no request repeated beyond those in flight at the kill.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import distinct, func, select

from gettok import db
from gettok.models.schema import (
    Annotation,
    ApiRequest,
    CampaignVideo,
    Download,
    DownloadStatus,
    Frame,
    Transcript,
    WorkClaim,
)
from gettok.tasks.download.media import MediaProblem, probe_media
from tests.chaos_world import (
    DOWNLOAD_CONCURRENCY,
    LLM_CONCURRENCY,
    KillPoint,
    Request,
    World,
    ledgered_sandbox,
    logged_counts,
    pipeline_env,
    run_gettok,
)

STAGES = ("collect", "download", "transcribe", "frames", "annotate")
# How long after its trigger a kill lands, at most (seeded uniform): within the stage's pace.
MAX_DELAY_S = {"collect": 0.02, "download": 0.2, "transcribe": 3.0, "frames": 0.05, "annotate": 1.0}


# --- what the database holds -------------------------------------------------------------


def progress(url: str) -> dict[str, int]:
    """Rows each stage has stored so far (the kill triggers)."""
    with db.session_scope(url) as session:
        count = session.scalar
        return {
            "collect": count(select(func.count()).select_from(ApiRequest)) or 0,
            "download": count(select(func.count()).select_from(Download)) or 0,
            "transcribe": count(select(func.count()).where(Transcript.engine == "faster-whisper"))
            or 0,
            "frames": count(select(func.count(distinct(Frame.video_id)))) or 0,
            "annotate": count(select(func.count()).select_from(Annotation)) or 0,
        }


@dataclass
class Stored:
    """What one campaign database holds, keyed the way a researcher would look it up."""

    videos: set[int] = field(default_factory=set)
    downloads: dict[int, tuple] = field(default_factory=dict)  # status, sha256, bytes
    transcripts: dict[tuple, tuple] = field(default_factory=dict)  # (video, engine)
    frames: dict[tuple, tuple] = field(default_factory=dict)  # (video, index)
    annotations: dict[tuple, tuple] = field(default_factory=dict)  # (video, kind)
    stamps: dict[str, dict[tuple, tuple]] = field(default_factory=dict)  # row id, time per key
    duplicates: int = 0  # rows beyond one per key
    claims: int = 0
    paths: dict[str, int | None] = field(default_factory=dict)  # media path -> expected bytes

    def items(self) -> dict[str, set]:
        return {
            "videos": set(self.videos),
            "downloads": set(self.downloads),
            "transcripts": set(self.transcripts),
            "frames": set(self.frames),
            "annotations": set(self.annotations),
        }


def stored(url: str) -> Stored:
    out = Stored()
    with db.session_scope(url) as session:
        out.videos = set(session.scalars(select(CampaignVideo.video_id)))
        out.claims = session.scalar(select(func.count()).select_from(WorkClaim)) or 0
        stamps: dict[str, dict[tuple, tuple]] = {}
        rows = Counter()
        for d in session.scalars(select(Download)):
            out.downloads[d.video_id] = (d.status.value, d.sha256, d.bytes)
            stamps.setdefault("downloads", {})[(d.video_id,)] = (d.status.value, d.updated_at)
            if d.status is DownloadStatus.ok and d.path:
                out.paths[d.path] = d.bytes
            for p in (d.image_paths or []) + ([d.audio_path] if d.audio_path else []):
                out.paths[str(p)] = None
        for t in session.scalars(select(Transcript)):
            key = (t.video_id, t.engine)
            rows["transcripts", key] += 1
            out.transcripts[key] = (t.status, t.is_empty, t.text, t.language)
            stamps.setdefault("transcripts", {})[key] = (t.id, t.created_at)
        for f in session.scalars(select(Frame)):
            key = (f.video_id, f.frame_index)
            rows["frames", key] += 1
            out.frames[key] = (f.width, f.height, f.source, f.path)
            out.paths[f.path] = None
            stamps.setdefault("frames", {})[key] = (f.id, f.created_at)
        for a in session.scalars(select(Annotation)):
            key = (a.video_id, a.kind.value)
            rows["annotations", key] += 1
            value = json.dumps(a.value, sort_keys=True, ensure_ascii=False)
            out.annotations[key] = (a.status.value, value)
            stamps.setdefault("annotations", {})[key] = (a.id, a.created_at)
        out.stamps = stamps
        out.duplicates = sum(n - 1 for n in rows.values())
    return out


def differences(expected: Stored, got: Stored) -> tuple[list[str], int]:
    """How `got` differs from the uninterrupted run: problems, and items lost."""
    problems, lost = [], 0
    for table, keys in expected.items().items():
        have = got.items()[table]
        missing, extra = keys - have, have - keys
        lost += len(missing)
        if missing:
            problems.append(f"{table}: {len(missing)} missing, e.g. {sorted(missing)[:3]}")
        if extra:
            problems.append(
                f"{table}: {len(extra)} not in the uninterrupted run: {sorted(extra)[:3]}"
            )
        values = getattr(expected, table)
        if isinstance(values, dict):
            changed = [k for k in keys & have if values[k] != getattr(got, table)[k]]
            if changed:
                k = changed[0]
                problems.append(
                    f"{table}: {len(changed)} differ, e.g. {k}: "
                    f"{str(values[k])[:200]} != {str(getattr(got, table)[k])[:200]}"
                )
    if got.duplicates:
        problems.append(f"{got.duplicates} duplicate rows")
    return problems, lost


def redone_rows(after_kill: Stored, final: Stored) -> list[str]:
    """Rows stored before the kill that the rerun replaced or rewrote."""
    problems = []
    for table, rows in after_kill.stamps.items():
        now = final.stamps.get(table, {})
        if table == "downloads":  # only outcomes that are final (transient ones are asked again)
            rows = {k: v for k, v in rows.items() if v[0] != "transient"}
        changed = [k for k, v in rows.items() if now.get(k) != v]
        if changed:
            problems.append(f"{table}: {len(changed)} rows stored before the kill were redone")
    return problems


def media_problems(media_dir: Path, final: Stored) -> list[str]:
    """Every file under the media folder is a valid file an ok row points at; nothing else."""
    problems = []
    referenced = {Path(p).as_posix(): n for p, n in final.paths.items()}
    present = {p.relative_to(media_dir).as_posix(): p for p in media_dir.rglob("*") if p.is_file()}
    stray = sorted(set(present) - set(referenced))
    if stray:
        problems.append(f"{len(stray)} files no row points at, e.g. {stray[:3]}")
    absent = sorted(set(referenced) - set(present))
    if absent:
        problems.append(f"{len(absent)} rows point at no file, e.g. {absent[:3]}")
    for rel, size in referenced.items():
        path = present.get(rel)
        if path is None:
            continue
        if path.stat().st_size == 0 or (size is not None and path.stat().st_size != size):
            problems.append(f"{rel}: {path.stat().st_size} bytes, the row says {size}")
        elif rel.startswith("videos/"):
            try:
                probe_media(path)
            except MediaProblem as exc:
                problems.append(f"{rel}: not a valid video ({exc})")
    return problems


# --- a trial -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    seed: int
    stage: str
    backend: str = "sqlite"

    def __str__(self) -> str:
        return f"{self.stage}-{self.backend}-{self.seed}"

    def kill_point(self, totals: dict[str, int]) -> KillPoint:
        rng = random.Random(self.seed)
        total = totals[self.stage]
        return KillPoint(
            self.stage, rng.randint(1, max(1, total - 1)), rng.uniform(0, MAX_DELAY_S[self.stage])
        )


@dataclass
class Baseline:
    """The uninterrupted run the trials compare with."""

    stored: Stored
    totals: dict[str, int]
    requests: Counter  # kind -> answered 2xx requests
    seconds: float


@dataclass
class TrialReport:
    trial: Trial
    kill: KillPoint
    killed: bool
    at_kill: dict[str, int] | None
    problems: list[str]
    lost: int
    duplicates: int
    seconds: float


def ok_requests(requests: list[Request]) -> Counter:
    return Counter(r.kind for r in requests if 200 <= r.status < 300)


def run_baseline(world: World, db_url: str, data_dir: Path, prefect_api_url: str) -> Baseline:
    with ledgered_sandbox(world.sandbox_config()) as served:
        env = pipeline_env(served, db_url, data_dir, prefect_api_url)
        outcome = run_gettok(world.args(), env, data_dir / "baseline.log")
        if outcome.returncode != 0:
            raise RuntimeError(f"the uninterrupted run failed: {outcome.log[-3000:]}")
        requests = ok_requests(served.requests)
    return Baseline(stored(db_url), progress(db_url), requests, outcome.seconds)


def run_trial(
    trial: Trial,
    world: World,
    baseline: Baseline,
    db_url: str,
    data_dir: Path,
    prefect_api_url: str,
) -> TrialReport:
    """Kill a run at the trial's point, rerun it, and list every way the result falls short."""
    kill = trial.kill_point(baseline.totals)
    started = time.monotonic()
    db.upgrade(db_url)  # a fresh, empty database (the kill trigger reads it from the start)
    with ledgered_sandbox(world.sandbox_config()) as served:
        env = pipeline_env(served, db_url, data_dir, prefect_api_url)
        first = run_gettok(
            world.args(), env, data_dir / "killed.log", kill, poll=lambda: progress(db_url)
        )
        time.sleep(0.5)  # requests the server was still answering land in the ledger
        before = len(served.requests)
        after_kill = stored(db_url)
        rerun = run_gettok(world.args(), env, data_dir / "rerun.log")
        final = stored(db_url)
        killed_run, rerun_requests = served.requests[:before], served.requests[before:]

    problems: list[str] = []
    if not first.killed:
        problems.append(f"the run ended (rc {first.returncode}) before the kill point {kill}")
    if rerun.returncode != 0:
        problems.append(f"the rerun failed (rc {rerun.returncode}): {rerun.log[-2000:]}")
    diff, lost = differences(baseline.stored, final)
    problems += diff
    problems += redone_rows(after_kill, final)
    problems += media_problems(data_dir / "media", final)
    if final.claims:
        problems.append(f"{final.claims} work claims left after the rerun")
    redone = _redone_requests(baseline, after_kill, killed_run, rerun_requests, problems)
    _redone_local_work(baseline, after_kill, rerun.log, problems)
    return TrialReport(
        trial,
        kill,
        first.killed,
        first.at_kill,
        problems,
        lost,
        final.duplicates + redone,
        round(time.monotonic() - started, 1),
    )


def _redone_requests(
    baseline: Baseline,
    after_kill: Stored,
    killed_run: list[Request],
    rerun: list[Request],
    problems: list[str],
) -> int:
    """Requests asked again beyond those in flight at the kill; returns how many."""
    done = {v for v, row in after_kill.downloads.items() if row[0] != "transient"}
    asked_again = {r.video_id for r in rerun if r.kind in ("page", "media")} & done
    if asked_again:
        problems.append(
            f"downloads of {len(asked_again)} videos recorded before the kill were asked again"
        )
    in_flight = {r.video_id for r in rerun if r.kind == "page"} & {
        r.video_id for r in killed_run if r.kind == "page"
    }
    if len(in_flight) > DOWNLOAD_CONCURRENCY:
        problems.append(
            f"{len(in_flight)} video pages asked twice (at most {DOWNLOAD_CONCURRENCY})"
        )
    both = ok_requests(killed_run) + ok_requests(rerun)
    extra = {k: both[k] - baseline.requests[k] for k in ("query", "llm")}
    if extra["query"] > 1:
        problems.append(f"{extra['query']} Research API pages asked again (at most 1 in flight)")
    if extra["llm"] > LLM_CONCURRENCY:
        problems.append(f"{extra['llm']} LLM requests asked again (at most {LLM_CONCURRENCY})")
    if both["llm"] < baseline.requests["llm"]:
        problems.append(
            f"{both['llm']} LLM requests, the uninterrupted run made {baseline.requests['llm']}"
        )
    return len(asked_again) + max(0, extra["query"] - 1) + max(0, extra["llm"] - LLM_CONCURRENCY)


def _redone_local_work(
    baseline: Baseline, after_kill: Stored, rerun_log: str, problems: list[str]
) -> None:
    """The rerun's own logs say what it transcribed and framed: only what the kill left undone."""
    whisper = lambda s: {k for k in s.transcripts if k[1] == "faster-whisper"}  # noqa: E731
    left = len(whisper(baseline.stored) - whisper(after_kill))
    transcribed = logged_counts(rerun_log, r"(\d+) videos to transcribe")
    if transcribed != left:
        problems.append(f"the rerun transcribed {transcribed} videos, {left} were left")
    framed = {k[0] for k in baseline.stored.frames} - {k[0] for k in after_kill.frames}
    extracted = logged_counts(rerun_log, r"frames for (\d+) video")
    if extracted != len(framed):
        problems.append(
            f"the rerun extracted frames of {extracted} videos, {len(framed)} were left"
        )
