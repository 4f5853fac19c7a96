"""Benchmark: frame sampling by keyframe seek against the original read-every-frame method.

Clips are the sandbox's own (360x640, 30 fps, 20 to 60 s so that 1 in 300 matters), made once and
cached. Two encodings: a keyframe every 2 s (the sandbox's clips) and every 250 frames (x264's
default), since the gain depends on how far apart keyframes are. Each method runs on the same clips,
best of three; `same_frames` checks both keep the same indices with the same pixels. The last stdout
line is one JSON object.

    python -m bench.frames [--clips 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from gettok.sandbox import media
from gettok.tasks.frames.sampling import naive_sample_frames, sample_frames

EVERY, CAP, MAX_SIDE = 300, 20, 768
CACHE = Path(tempfile.gettempdir()) / f"gettok-bench-frames-{media.MEDIA_VERSION}"


def make_clips(count: int, keyframe_interval: int) -> list[Path]:
    durations = np.linspace(20, 60, count).round(1)
    clips = []
    for n, duration in enumerate(durations):
        kind = ("music", "speech", "silent")[n % 3]
        path = CACHE / f"gop{keyframe_interval}-{n}-{duration}.mp4"
        if not path.exists():
            temp = path.with_suffix(".tmp.mp4")
            media.make_clip(
                temp, kind=kind, duration_s=float(duration), seed=n, fps=30,
                keyframe_interval=keyframe_interval,
            )  # fmt: skip
            os.replace(temp, path)
        clips.append(path)
    return clips


def best_of(repeat: int, run) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        value = run()
        best = min(best, time.perf_counter() - started)
    return best, value


def compare(clips: list[Path], repeat: int) -> dict:
    fast_s, fast = best_of(
        repeat, lambda: [list(sample_frames(c, EVERY, CAP, MAX_SIDE)) for c in clips]
    )
    naive_s, naive = best_of(repeat, lambda: [naive_sample_frames(c, EVERY, CAP) for c in clips])
    same_indices = all(
        [i for i, _, _ in f] == [i for i, _ in n] for f, n in zip(fast, naive, strict=True)
    )
    diffs = [
        float(np.abs(a.astype(int) - b.astype(int)).mean())
        for f, n in zip(fast, naive, strict=True)
        for (_, _, a), (_, b) in zip(f, n, strict=False)
    ]
    return {
        "videos_per_s": round(len(clips) / fast_s, 2),
        "naive_videos_per_s": round(len(clips) / naive_s, 2),
        "speedup_vs_naive": round(naive_s / fast_s, 2),
        "same_frames": same_indices and max(diffs, default=0.0) < 1.0,
        "max_mean_pixel_diff": round(max(diffs, default=0.0), 4),
        "frames_kept": sum(len(f) for f in fast),
    }


def stage_rate(clips: list[Path]) -> float:
    """Videos per second through the whole stage (selection, JPEGs, rows) on a fresh SQLite db."""
    from gettok import db
    from gettok.db import session_scope
    from gettok.models.schema import Download, DownloadStatus, Video
    from gettok.settings import get_settings
    from gettok.tasks.frames.extract import extract_frames

    with tempfile.TemporaryDirectory(prefix="gettok-bench-stage-") as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        db.upgrade(url)
        media_dir = Path(tmp) / "media"
        with session_scope(url) as session:
            for n, clip in enumerate(clips, start=1):
                (media_dir / "videos").mkdir(parents=True, exist_ok=True)
                shutil.copyfile(clip, media_dir / "videos" / f"{n}.mp4")
                session.add(Video(id=n, raw={}))
                session.flush()
                session.add(Download(video_id=n, status=DownloadStatus.ok, path=f"videos/{n}.mp4"))
        settings = get_settings(media_dir=media_dir, data_dir=Path(tmp))
        started = time.perf_counter()
        result = extract_frames(url, settings)
        elapsed = time.perf_counter() - started
        db.get_engine.cache_clear()
        assert result.videos_done == len(clips), result
        return round(len(clips) / elapsed, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    short_gop = make_clips(args.clips, 2 * 30)
    long_gop = make_clips(args.clips, 250)
    headline = compare(short_gop, args.repeat)
    x264_default = compare(long_gop, args.repeat)
    print(
        json.dumps(
            {
                "bench": "frames",
                "videos": args.clips,
                "clip_seconds": [20, 60],
                "fps": 30,
                "frame_every": EVERY,
                "keyframe_every_frames": 60,
                **headline,
                "keyframe_every_250": {
                    k: x264_default[k]
                    for k in ("videos_per_s", "speedup_vs_naive", "same_frames", "frames_kept")
                },
                "stage_videos_per_s": stage_rate(short_gop),
                "cpu_count": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
