"""Benchmark: videos downloaded per second, one at a time vs. the configured parallelism.

Both runs fetch the same corpus videos from a sandbox served by its own process, through a CDN
paced at `--cdn-bytes-per-s` per connection (as the live CDN is: per-connection bandwidth, not the
CPU, is what parallel downloads buy), into fresh media folders and fresh databases. The polite
request rate is lifted for both runs (it would cap both equally). Prints one JSON object last.

    python bench/download.py [--videos 24] [--concurrency N] [--cdn-bytes-per-s 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gettok import db  # noqa: E402
from gettok.models.api import ResearchVideo  # noqa: E402
from gettok.models.campaign import load_campaign  # noqa: E402
from gettok.models.schema import CampaignVideo, utcnow  # noqa: E402
from gettok.sandbox.config import SandboxConfig  # noqa: E402
from gettok.sandbox.corpus import Corpus  # noqa: E402
from gettok.sandbox.media_cache import clip_for  # noqa: E402
from gettok.settings import get_settings  # noqa: E402
from gettok.tasks.collect.store import save_campaign, upsert_videos  # noqa: E402
from gettok.tasks.download.downloader import download_videos  # noqa: E402
from gettok.tasks.download.gate import DownloadGate  # noqa: E402

SERVE = """
import json, sys
from gettok.sandbox.config import SandboxConfig
from gettok.sandbox.server import serve
serve(SandboxConfig.model_validate(json.loads(sys.argv[1])), port=int(sys.argv[2]))
"""


def public_videos(config: SandboxConfig, count: int) -> list:
    corpus, videos, day = Corpus(config), [], date(2022, 12, 1)
    while len(videos) < count:
        videos += [v for v in corpus.videos_on(day) if v.web_state == "public"]
        day += timedelta(days=1)
    return videos[:count]


def store(url: str, videos: list) -> None:
    db.upgrade(url)
    records = [v.api_record() for v in videos]
    with db.session_scope(url) as session:
        campaign_id = save_campaign(session, load_campaign(ROOT / "campaigns" / "peru_2022.toml"))
        upsert_videos(
            session, [ResearchVideo.model_validate(r) for r in records], records, utcnow()
        )
        session.execute(
            insert(CampaignVideo), [{"campaign_id": campaign_id, "video_id": v.id} for v in videos]
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(base_url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/_sandbox/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("sandbox did not start")


def run(base_url: str, videos: list, concurrency: int, workdir: Path) -> dict:
    url = f"sqlite:///{workdir / 'gettok.db'}"
    store(url, videos)
    settings = get_settings(
        database_url=url,
        media_dir=workdir / "media",
        tiktok_web_url=base_url,
        download_concurrency=concurrency,
        download_requests_per_s=1000,
    )
    gate = DownloadGate.from_settings(settings)
    started = time.perf_counter()
    result = download_videos([(v.id, v.username) for v in videos], settings, gate)
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 3),
        "videos_per_s": round(result.done / seconds, 3),
        "by_status": result.by_status,
        "bytes": sum(p.stat().st_size for p in (workdir / "media" / "videos").glob("*.mp4")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--concurrency", type=int, default=None, help="default: settings")
    parser.add_argument("--cdn-bytes-per-s", type=float, default=1_000_000)
    args = parser.parse_args()
    concurrency = args.concurrency or get_settings().download_concurrency

    with tempfile.TemporaryDirectory(prefix="gettok-bench-download-") as tmp:
        tmp = Path(tmp)
        cache = Path(os.environ.get("GETTOK_BENCH_MEDIA_CACHE", tmp / "sandbox-media"))
        config = SandboxConfig(
            media_cache_dir=cache, web={"media_bytes_per_s": args.cdn_bytes_per_s}
        )
        videos = public_videos(config, args.videos + 1)
        warmup, videos = videos[:1], videos[1:]
        for video in videos + warmup:  # clips are made once, before any clock starts
            clip_for(video, cache)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-c", SERVE, config.model_dump_json(), str(port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_up(base_url)
            run(base_url, warmup, 1, tmp / "warmup")  # imports, first connections, first parse
            serial = run(base_url, videos, 1, tmp / "serial")
            parallel = run(base_url, videos, concurrency, tmp / "parallel")
        finally:
            server.terminate()
            server.wait(timeout=10)

    assert serial["bytes"] == parallel["bytes"], "the two runs stored different files"
    print(
        json.dumps(
            {
                "bench": "download",
                "videos": len(videos),
                "concurrency": concurrency,
                "cdn_bytes_per_s_per_connection": args.cdn_bytes_per_s,
                "videos_per_s_serial": serial["videos_per_s"],
                "videos_per_s_parallel": parallel["videos_per_s"],
                "parallel_over_serial": round(parallel["videos_per_s"] / serial["videos_per_s"], 2),
                "seconds_serial": serial["seconds"],
                "seconds_parallel": parallel["seconds"],
                "by_status_serial": serial["by_status"],
                "by_status_parallel": parallel["by_status"],
                "bytes_per_run": serial["bytes"],
            }
        )
    )


if __name__ == "__main__":
    main()
