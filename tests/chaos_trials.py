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
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import uvicorn
from sqlalchemy import distinct, func, select

from gettok import db
from gettok.local_mode import shipped_whisper_model
from gettok.sandbox.app import create_app
from gettok.sandbox.config import SandboxConfig
from gettok.sandbox.server import sandbox_env
from gettok.sandbox.state import SandboxState
from models.schema import (
    Annotation,
    ApiRequest,
    CampaignVideo,
    Download,
    DownloadStatus,
    Frame,
    Transcript,
    WorkClaim,
)
from tasks.media import MediaProblem, probe_media

ROOT = Path(__file__).resolve().parents[1]
PERU = ROOT / "campaigns" / "peru_2022.toml"
STAGES = ("collect", "download", "transcribe", "frames", "annotate")
DOWNLOAD_CONCURRENCY = 4  # videos in flight at once: what a kill may cost the download stage
LLM_CONCURRENCY = 4
# How long after its trigger a kill lands, at most (seeded uniform): within the stage's pace.
MAX_DELAY_S = {"collect": 0.3, "download": 1.0, "transcribe": 3.0, "frames": 0.5, "annotate": 1.0}


# --- the sandbox, with a ledger of every request it answered -------------------------------


class Request(NamedTuple):
    method: str
    path: str
    status: int
    body: bytes

    @property
    def video_id(self) -> int | None:
        """The video a tiktok.com page or media request is for."""
        match = re.search(
            r"/video/(\d+)$|/media/video/(\d+)\.mp4$|/media/(?:slides|audio)/(\d+)", self.path
        )
        return int(next(g for g in match.groups() if g)) if match else None

    @property
    def kind(self) -> str:
        if self.path.startswith("/v2/research/video/query"):
            return "query"
        if self.path.startswith("/v1/chat/completions"):
            return "llm"
        if self.path.startswith("/media/"):
            return "media"
        if "/video/" in self.path and self.path.startswith("/@"):
            return "page"
        return "other"


class RequestLedger:
    """ASGI middleware: records method, path, status and body of every answered request."""

    def __init__(self, app, entries: list[Request]):
        self.app, self.entries, self.lock = app, entries, threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        body, status = bytearray(), [0]

        async def receive_body():
            message = await receive()
            if message["type"] == "http.request":
                body.extend(message.get("body", b""))
            return message

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive_body, send_status)
        finally:
            with self.lock:
                self.entries.append(Request(scope["method"], scope["path"], status[0], bytes(body)))


@dataclass
class Served:
    base_url: str
    state: SandboxState
    requests: list[Request]

    def env(self) -> dict[str, str]:
        return sandbox_env(self.base_url, self.state.config)

    def patch(self, config: dict[str, Any]) -> None:
        httpx.post(f"{self.base_url}/_sandbox/config", json=config, timeout=10).raise_for_status()


@contextmanager
def serve_app(app) -> Iterator[str]:
    """An ASGI app over real HTTP on a free port, in a daemon thread; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="chaos-server"
    )
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError(f"the server at {base_url} did not start")
            time.sleep(0.02)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def ledgered_sandbox(config: SandboxConfig) -> Iterator[Served]:
    """The sandbox app over HTTP, wrapped in a request ledger."""
    state, requests = SandboxState(config), []
    with serve_app(RequestLedger(create_app(state), requests)) as base_url:
        yield Served(base_url, state, requests)


# --- the campaign every trial runs -------------------------------------------------------


@dataclass(frozen=True)
class World:
    """A small sandbox campaign: Peru's query over two days, 12 videos of every web state."""

    start: date = date(2022, 12, 7)
    end: date = date(2022, 12, 8)
    videos_per_day: int = 12
    campaign: Path = PERU

    def sandbox_config(self, **faults: Any) -> SandboxConfig:
        return SandboxConfig(
            videos_per_day=self.videos_per_day,
            private_share=0.15,
            removed_share=0.1,
            slideshow_share=0.15,
            fault_seed=20221207,
            **faults,
        )

    def args(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gettok.cli",
            "run",
            "--campaign",
            str(self.campaign),
            "--start",
            self.start.isoformat(),
            "--end",
            self.end.isoformat(),
        ]


def pipeline_env(
    served: Served, db_url: str, data_dir: Path, prefect_api_url: str, **extra: str
) -> dict[str, str]:
    """What `gettok run` gets: the sandbox's services and credentials, a fresh database, fast
    politeness settings, and a Prefect server shared by the trials (no ephemeral server each)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GETTOK_", "OPENAI_", "PREFECT_"))
    }
    return (
        env
        | served.env()
        | {
            "PREFECT_API_URL": prefect_api_url,
            "PREFECT_HOME": str(data_dir / "prefect-home"),
            "PYTHONUNBUFFERED": "1",
            "GETTOK_DATABASE_URL": db_url,
            "GETTOK_DATA_DIR": str(data_dir),
            "GETTOK_WHISPER_MODEL": shipped_whisper_model(),
            "GETTOK_WHISPER_BEAM_SIZE": "1",
            "GETTOK_LLM_MODEL": "sandbox-vision",
            "GETTOK_LLM_CONCURRENCY": str(LLM_CONCURRENCY),
            "GETTOK_LLM_REQUESTS_PER_S": "100",
            "GETTOK_DOWNLOAD_CONCURRENCY": str(DOWNLOAD_CONCURRENCY),
            "GETTOK_DOWNLOAD_REQUESTS_PER_S": "100",
            "GETTOK_DOWNLOAD_TRANSIENT_BACKOFF_S": "1",
            "GETTOK_TIKTOK_RETRY_WAIT_SCALE": "0.01",
            # Rows land two clips at a time, so a kill can fall between batches or inside one.
            "GETTOK_TRANSCRIPTION_BATCH_FILES": "2",
            # A killed run's slot stays leased for minutes (see report): a second slot lets the
            # rerun go on without waiting for the lease to expire.
            "GETTOK_TRANSCRIPTION_CONCURRENCY": "2",
            "GETTOK_TRANSCRIPTION_LIMIT": f"chaos-gpu-{os.getpid()}-{data_dir.name}"[:120],
        }
        | extra
    )


def prefect_api_url() -> str:
    """The API of the Prefect server this process uses (the test harness's, in tests)."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


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


# --- running gettok ---------------------------------------------------------------------


@dataclass(frozen=True)
class KillPoint:
    stage: str
    after: int  # kill once the stage has stored this many rows...
    delay_s: float  # ...and this long after


@dataclass
class RunOutcome:
    returncode: int | None
    killed: bool
    seconds: float
    log: str
    at_kill: dict[str, int] | None = None


def run_gettok(
    args: list[str],
    env: dict[str, str],
    log_path: Path,
    kill: KillPoint | None = None,
    timeout_s: float = 300,
    poll: Callable[[], dict[str, int]] | None = None,
) -> RunOutcome:
    """Run to the end, or SIGKILL its process group at `kill` (then it is not waited for)."""
    started = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        killed, at_kill = False, None
        try:
            deadline = started + timeout_s
            if kill is not None and poll is not None:
                while proc.poll() is None and time.monotonic() < deadline:
                    if poll().get(kill.stage, 0) >= kill.after:
                        time.sleep(kill.delay_s)
                        if proc.poll() is None:
                            os.killpg(proc.pid, signal.SIGKILL)
                            killed = True
                            proc.wait(30)
                            at_kill = poll()
                        break
                    time.sleep(0.05)
            proc.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
    return RunOutcome(
        None if killed else proc.returncode,
        killed,
        round(time.monotonic() - started, 1),
        log_path.read_text(errors="replace"),
        at_kill,
    )


def logged_counts(log: str, pattern: str) -> int:
    """The sum of the numbers a log line pattern reports (e.g. "(\\d+) videos to transcribe")."""
    return sum(int(n) for n in re.findall(pattern, log))


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
