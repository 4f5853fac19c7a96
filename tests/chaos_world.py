"""The world a chaos test runs in: the sandbox over HTTP with a ledger of every request it
answered, a small campaign, the environment `gettok run` gets, and running it (to the end, or
SIGKILLed at a point the caller watches for). Used by the chaos, secrets and Postgres tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import uvicorn

from gettok.local_mode import shipped_whisper_model
from gettok.sandbox.app import create_app
from gettok.sandbox.config import SandboxConfig
from gettok.sandbox.server import sandbox_env
from gettok.sandbox.state import SandboxState

ROOT = Path(__file__).resolve().parents[1]
PERU = ROOT / "campaigns" / "peru_2022.toml"
NO_WAITS = ROOT / "tests" / "no_waits.py"
DOWNLOAD_CONCURRENCY = 4  # videos in flight at once: what a kill may cost the download stage
LLM_CONCURRENCY = 4


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
            str(NO_WAITS),  # retries without their waits, as in-process tests run them
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
                    time.sleep(0.02)
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
