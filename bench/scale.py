"""Benchmark: how each campaign-wide operation grows with the campaign's size.

For each size it builds a synthetic campaign (bench/scale_data.py: videos through the collector's
store, then downloads, media_info, transcripts, frames and annotations in bulk) in a fresh
Postgres database (or SQLite with `--backend sqlite`), then runs every operation in its own
process and records its wall time and peak memory (resource.getrusage(RUSAGE_CHILDREN).ru_maxrss
of a wrapper whose only child is the operation). Between two sizes it reports the growth
exponent log(t2/t1)/log(n2/n1): 1 is linear, 2 quadratic. The last stdout line is one JSON object.

    python -m bench.scale                         # 20k and 100k videos, Postgres
    python -m bench.scale --sizes 100000,1000000  # the million: build takes about 20 min/1M here
    python -m bench.scale --only export_parquet,report --keep   # a subset; keep the databases

Postgres is GETTOK_BENCH_POSTGRES (default postgresql://postgres@127.0.0.1:5432, trust auth).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

POSTGRES = os.environ.get("GETTOK_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
OPERATIONS = (
    "export_parquet",
    "export_jsonl",
    "export_csv_public",
    "report",
    "enrich_dry_run",
    "pending_download",
    "pending_transcribe",
    "transcribe_tiktok_nothing_new",
    "pending_frames",
    "pending_annotate",
    "watch_unchecked",
    "prune_selection",
)
LLM_ENV = {
    "GETTOK_LLM_MODEL": "sandbox-vision",
    "GETTOK_LLM_PRICES": '{"sandbox-vision": [100.0, 400.0]}',
}


def run_operation(name: str, url: str, out: Path) -> object:
    """One operation against the campaign "scale"; returns a small figure (rows, count)."""
    from bench.scale_data import scale_campaign

    if name.startswith("export_"):
        from gettok.tasks.export import export_dataset
        from pydantic import SecretStr

        fmt = name.split("_")[1]
        public = name.endswith("_public")
        salt = SecretStr("bench-salt") if public else None
        return export_dataset(url, "scale", out, fmt, public=public, salt=salt).rows
    if name == "report":
        from gettok.tasks.report.build import build_report

        return build_report(url, "scale", out).dataset.model_dump(mode="json")
    if name == "enrich_dry_run":
        from gettok.tasks.annotate.cost import estimate_enrich

        from gettok.settings import get_settings

        estimate = estimate_enrich(url, get_settings(), scale_campaign())
        return {k.kind: k.videos for k in estimate.kinds}
    return len(_pending(name, url))


def _pending(name: str, url: str) -> list:
    from bench.scale_data import scale_campaign

    if name == "pending_download":
        from gettok.tasks.download import store

        return store.pending_videos(url, "scale", limit=None)
    if name == "pending_transcribe":
        from gettok.tasks.transcribe import store
        from gettok.tasks.transcribe.whisper import WhisperOptions

        return store.pending_videos(url, WhisperOptions(), "scale")
    if name == "transcribe_tiktok_nothing_new":
        from gettok.tasks.transcribe import store

        store.record_tiktok_transcripts(url, "scale")  # the first run copies them
        start = time.perf_counter()
        changed = store.record_tiktok_transcripts(url, "scale")
        print(f"second run {time.perf_counter() - start:.2f}s", file=sys.stderr)
        return [None] * changed
    if name == "pending_frames":
        from gettok.tasks.frames import store

        return store.pending_videos(url, "bench-digest", "scale", limit=None)
    if name == "pending_annotate":
        from gettok.tasks.annotate import store
        from gettok.tasks.annotate.annotator import plan_for

        from gettok import db
        from gettok.settings import get_settings

        plan = plan_for("summary", scale_campaign(), get_settings())
        with db.session_scope(url) as session:
            return store.pending_videos(session, "scale", plan)
    if name == "watch_unchecked":
        from gettok.tasks.watch.store import unchecked_frames

        return list(unchecked_frames(url, None, "opencv-orb", "bench-target"))
    if name == "prune_selection":
        from gettok.tasks.prune import store

        return store.pending_videos(url)
    raise ValueError(f"unknown operation {name!r}")


def _warm_imports() -> None:
    """Imports are not the operation's cost (the stores pull in Prefect: seconds under load)."""
    import gettok.tasks.annotate.annotator  # noqa: F401
    import gettok.tasks.annotate.cost  # noqa: F401
    import gettok.tasks.annotate.store  # noqa: F401
    import gettok.tasks.download.store  # noqa: F401
    import gettok.tasks.export  # noqa: F401
    import gettok.tasks.frames.store  # noqa: F401
    import gettok.tasks.prune.store  # noqa: F401
    import gettok.tasks.report.build  # noqa: F401
    import gettok.tasks.report.figures  # noqa: F401
    import gettok.tasks.transcribe.store  # noqa: F401
    import gettok.tasks.transcribe.whisper  # noqa: F401
    import gettok.tasks.validate.score  # noqa: F401
    import gettok.tasks.watch.watchlist  # noqa: F401


def measure(name: str, url: str) -> dict:
    """Time and peak memory of one operation in a fresh child process."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "bench.scale", "--op", name, "--url", url, "--out", out]
        start = time.perf_counter()
        done = subprocess.run(
            command, capture_output=True, text=True, env={**os.environ, **LLM_ENV}
        )
        seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:], "seconds": round(seconds, 2)}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"seconds": round(result["seconds"], 2), "peak_mb": round(peak_mb), **result}


def measure_in_wrapper(name: str, url: str) -> dict:
    """Run `measure` in its own process, so RUSAGE_CHILDREN sees this operation alone."""
    command = [sys.executable, "-m", "bench.scale", "--measure", name, "--url", url]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def fresh_database(backend: str, folder: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / f'scale-{uuid.uuid4().hex[:8]}.db'}"
    from sqlalchemy import create_engine, text

    name = f"gettok_scale_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{POSTGRES}/postgres".replace("postgresql://", "postgresql+psycopg://"))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{POSTGRES}/{name}".replace("postgresql://", "postgresql+psycopg://")


def drop_database(url: str) -> None:
    if url.startswith("sqlite"):
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        return
    from sqlalchemy import create_engine, text

    admin = create_engine(f"{POSTGRES}/postgres".replace("postgresql://", "postgresql+psycopg://"))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def exponents(results: dict[int, dict[str, dict]]) -> dict[str, float]:
    """log(t2/t1)/log(n2/n1) between the smallest and largest size, per operation."""
    small, large = min(results), max(results)
    growth = {}
    for name, figure in results[large].items():
        before = results[small].get(name, {})
        if small != large and figure.get("seconds") and before.get("seconds"):
            ratio = figure["seconds"] / max(before["seconds"], 1e-3)
            growth[name] = round(math.log(ratio) / math.log(large / small), 2)
    return growth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,100000")
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--only", default=",".join(OPERATIONS))
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--op", help=argparse.SUPPRESS)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.op:
        _warm_imports()  # imports are not the operation's cost (first ones compile bytecode)
        start = time.perf_counter()
        figure = run_operation(args.op, args.url, Path(args.out))
        print(json.dumps({"seconds": time.perf_counter() - start, "result": figure}))
        return
    if args.measure:
        print(json.dumps(measure(args.measure, args.url)))
        return
    from bench.scale_data import build

    results: dict[int, dict[str, dict]] = {}
    folder = Path(tempfile.mkdtemp(prefix="gettok-scale-"))
    for size in [int(s) for s in args.sizes.split(",")]:
        url = fresh_database(args.backend, folder)
        start = time.perf_counter()
        build(url, size)
        print(f"{size}: built in {time.perf_counter() - start:.0f}s", file=sys.stderr)
        results[size] = {}
        for name in args.only.split(","):
            results[size][name] = measure_in_wrapper(name, url)
            print(f"{size} {name}: {results[size][name]}", file=sys.stderr)
        if not args.keep:
            drop_database(url)
    summary = {"backend": args.backend, "sizes": results, "growth_exponent": exponents(results)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
