"""The campaign-size benchmarks' driver (bench/scale.py, bench/report.py): per size a synthetic
campaign (bench/scale_data.py) in a fresh database, then each operation in its own process.

Peak memory is resource.getrusage(RUSAGE_CHILDREN).ru_maxrss of a wrapper process whose only
child is the operation, so no operation's peak hides another's. A benchmark module names its
operations; `python -m MODULE --op NAME` runs one and `--measure NAME` times one (`run_child`).
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
from collections.abc import Callable, Sequence
from pathlib import Path

POSTGRES = os.environ.get("GETTOK_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def measure(module: str, name: str, url: str, env: dict[str, str] | None = None) -> dict:
    """Time and peak memory of one operation of `module` in a fresh child process; `env` is
    added to this process's environment for the child."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", module, "--op", name, "--url", url, "--out", out]
        start = time.perf_counter()
        done = subprocess.run(
            command, capture_output=True, text=True, env={**os.environ, **(env or {})}
        )
        seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:], "seconds": round(seconds, 2)}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "seconds": round(result["seconds"], 2), "peak_mb": round(peak_mb)}


def measure_in_wrapper(module: str, name: str, url: str) -> dict:
    """Run `measure` in its own process, so RUSAGE_CHILDREN sees this operation alone."""
    command = [sys.executable, "-m", module, "--measure", name, "--url", url]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_sizes(
    module: str, sizes: Sequence[int], backend: str, operations: Sequence[str], keep: bool = False
) -> dict[int, dict[str, dict]]:
    """Per size, a fresh database with the synthetic campaign, and each operation measured in it;
    the database is dropped afterwards unless `keep`."""
    from bench.scale_data import build

    results: dict[int, dict[str, dict]] = {}
    folder = Path(tempfile.mkdtemp(prefix=f"gettok-{module.rsplit('.', 1)[-1]}-"))
    for size in sizes:
        url = fresh_database(backend, folder)
        try:
            start = time.perf_counter()
            build(url, size)
            print(f"{size}: built in {time.perf_counter() - start:.0f}s", file=sys.stderr)
            results[size] = {}
            for name in operations:
                results[size][name] = measure_in_wrapper(module, name, url)
                print(f"{size} {name}: {results[size][name]}", file=sys.stderr)
        finally:
            if not keep:
                drop_database(url)
    return results


def add_child_options(parser: argparse.ArgumentParser) -> None:
    """The hidden options the driver starts a benchmark module's children with."""
    parser.add_argument("--op", help=argparse.SUPPRESS)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)


def run_child(
    args: argparse.Namespace,
    module: str,
    run_operation: Callable[[str, str, Path], object],
    warm_imports: Callable[[str], None],
    env: dict[str, str] | None = None,
) -> bool:
    """Whether this process is one of the driver's children, after doing its part: `--op` runs
    one operation and prints its seconds and figure; `--measure` runs `measure` on one."""
    if args.op:
        warm_imports(args.op)
        start = time.perf_counter()
        figure = run_operation(args.op, args.url, Path(args.out))
        print(json.dumps({"seconds": time.perf_counter() - start, "result": figure}))
        return True
    if args.measure:
        print(json.dumps(measure(module, args.measure, args.url, env)))
        return True
    return False


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
