"""Benchmark: how each campaign-wide operation grows with the campaign's size.

For each size it builds a synthetic campaign (bench/scale_data.py: videos through the collector's
store, then downloads, media_info, transcripts, frames and annotations in bulk) in a fresh
Postgres database (or SQLite with `--backend sqlite`), then runs every operation in its own
process and records its wall time and peak memory (resource.getrusage(RUSAGE_CHILDREN).ru_maxrss
of a wrapper whose only child is the operation). Between two sizes it reports the growth
exponent log(t2/t1)/log(n2/n1): 1 is linear, 2 quadratic. The last stdout line is one JSON object.

    python -m bench.scale                         # 20k and 100k videos, Postgres
    python -m bench.scale --sizes 100000,1000000  # the million: built in 18-102 min here
    python -m bench.scale --only export_parquet,report --keep   # a subset; keep the databases

`daily_start` is every stage's start on a day with nothing new, past the watermarks a daily
run leaves (`gettok.watermarks`); the `pages_*` operations are the passes over every member it
replaces, the naive baseline (the JSON's `daily_start_vs_whole_pass`).

`report_first` is a campaign's first report (it fits the topic model and assigns every video);
`report` the one after it, as a daily report is (`report` alone measures both, in that order).

Postgres is GETTOK_BENCH_POSTGRES (default postgresql://postgres@127.0.0.1:5432, trust auth).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

from bench.measure import add_child_options, exponents, measure_sizes, run_child

OPERATIONS = (
    "export_parquet",
    "export_jsonl",
    "export_csv_public",
    "report_first",  # no report has read the campaign: the topic model is fitted, all assigned
    "report",  # the next report (a daily one): only new or changed videos are assigned
    "enrich_dry_run",
    "pending_download",
    "pending_transcribe",
    "transcribe_tiktok_nothing_new",
    "pending_frames",
    "pending_annotate",
    "watch_unchecked",
    "prune_selection",
    "pages_download",
    "pages_download_retry",
    "pages_transcribe",
    "pages_frames",
    "pages_annotate",
    "daily_start",  # every stage's start past its watermark, nothing new: constant, not linear
)
LLM_ENV = {
    "GETTOK_LLM_MODEL": "sandbox-vision",
    "GETTOK_LLM_PRICES": '{"sandbox-vision": [100.0, 400.0]}',
}


def run_operation(name: str, url: str, out: Path) -> object:
    """One operation against the campaign "scale"; returns a small figure (rows, count)."""
    from bench.scale_data import scale_campaign

    if name.startswith("export_"):
        from pydantic import SecretStr

        from gettok.tasks.export import export_dataset

        fmt = name.split("_")[1]
        public = name.endswith("_public")
        salt = SecretStr("bench-salt") if public else None
        return export_dataset(url, "scale", out, fmt, public=public, salt=salt).rows
    if name in ("report", "report_first"):
        from bench.scale_data import COMPARISON_MODEL
        from gettok.tasks.report.build import build_report

        report = build_report(url, "scale", out, embedding_model=COMPARISON_MODEL)
        return report.dataset.model_dump(mode="json")
    if name == "enrich_dry_run":
        from gettok.settings import get_settings
        from gettok.tasks.annotate.cost import estimate_enrich

        estimate = estimate_enrich(url, get_settings(), scale_campaign())
        return {k.kind: k.videos for k in estimate.kinds}
    if name.startswith("pages_"):
        return _keyset_pass(name.removeprefix("pages_"), url)
    if name == "daily_start":
        return _daily_start(url)
    return _pending(name, url)


def _daily_start(url: str) -> dict[str, float]:
    """Every stage's daily start when nothing changed since its watermark, through the stages'
    own entry points (their batch runners do no work: nothing reaches them). The marks are set
    just past the campaign's last change, as the last daily run would have left them. Returns
    each stage's seconds (the `pages_*` operations are the same passes over every member)."""
    from bench import daily

    return daily.start_with_nothing_new(url)


def _keyset_pass(stage: str, url: str) -> int:
    """Rows a stage's whole pass over its pending work reads, page by page as the stage's own
    loop reads them (its page function and size), with no work done between pages: what a
    backfill's queries cost, beside the work. A page query that scanned the whole campaign would
    make this quadratic."""
    from bench.scale_data import scale_campaign
    from gettok.settings import get_settings

    settings = get_settings()
    if stage in ("download", "download_retry"):  # retry: the 10% private ones are asked again
        from gettok.tasks.download import store

        retry = stage == "download_retry"
        pages = store.pending_pages(url, "scale", settings.download_batch_size, retry_failed=retry)
    elif stage == "transcribe":
        from gettok.tasks.transcribe import store
        from gettok.tasks.transcribe.whisper import WhisperOptions

        options = WhisperOptions()
        pages = store.pending_pages(url, options, "scale", settings.transcription_task_videos)
    elif stage == "frames":
        from gettok.tasks.frames import store
        from gettok.tasks.frames.campaign import FRAMES_BATCH

        pages = store.pending_pages(url, "bench-digest", "scale", FRAMES_BATCH)
    elif stage == "annotate":
        from gettok.tasks.annotate.annotator import plan_for
        from gettok.tasks.annotate.campaign import pending_pages

        campaign = scale_campaign()
        pages = pending_pages(url, campaign, plan_for("summary", campaign, settings), settings)
    else:
        raise ValueError(f"unknown stage {stage!r}")
    return sum(len(page) for page in pages)


def _pending(name: str, url: str) -> int:
    """How many items the stage's pending query yields (an iterator is counted, not held: the
    stage itself handles one page at a time)."""
    from bench.scale_data import scale_campaign

    if name == "pending_download":
        from gettok.tasks.download import store

        return len(store.pending_videos(url, "scale", limit=None))
    if name == "pending_transcribe":
        from gettok.tasks.transcribe import store
        from gettok.tasks.transcribe.whisper import WhisperOptions

        return len(store.pending_videos(url, WhisperOptions(), "scale"))
    if name == "transcribe_tiktok_nothing_new":
        from gettok.tasks.transcribe import store

        store.record_tiktok_transcripts(url, "scale")  # the first run copies them
        start = time.perf_counter()
        changed = store.record_tiktok_transcripts(url, "scale")
        print(f"second run {time.perf_counter() - start:.2f}s", file=sys.stderr)
        return changed
    if name == "pending_frames":
        from gettok.tasks.frames import store

        return len(store.pending_videos(url, "bench-digest", "scale", limit=None))
    if name == "pending_annotate":
        from gettok import db
        from gettok.settings import get_settings
        from gettok.tasks.annotate import store
        from gettok.tasks.annotate.annotator import plan_for

        plan = plan_for("summary", scale_campaign(), get_settings())
        with db.session_scope(url) as session:
            return len(store.pending_videos(session, "scale", plan))
    if name == "watch_unchecked":
        from gettok.tasks.watch.store import unchecked_frames

        return sum(1 for _ in unchecked_frames(url, None, "opencv-orb", "bench-target"))
    if name == "prune_selection":
        from gettok.tasks.prune import store

        return len(store.pending_videos(url))
    raise ValueError(f"unknown operation {name!r}")


# The modules each operation's process loads, imported before its clock starts (import time is
# not the operation's cost). An export or report is its own command and loads only its modules;
# the pending queries run inside the stages' processes, which load Prefect and Whisper.
STAGE_MODULES = (
    "gettok.keyset",
    "gettok.tasks.annotate.annotator",
    "gettok.tasks.annotate.campaign",
    "gettok.tasks.annotate.cost",
    "gettok.tasks.annotate.store",
    "gettok.tasks.download.store",
    "gettok.tasks.frames.campaign",
    "gettok.tasks.frames.store",
    "gettok.tasks.prune.store",
    "gettok.tasks.transcribe.store",
    "gettok.tasks.transcribe.whisper",
    "gettok.tasks.watch.watchlist",
)
OWN_MODULES = {
    "export": ("gettok.tasks.export", "gettok.tasks.comments.export", "pyarrow.parquet"),
    "report": ("gettok.tasks.report.build", "gettok.tasks.report.figures", "umap"),
}


def _warm_imports(operation: str) -> None:
    """Imports are not the operation's cost (the stores pull in Prefect: seconds under load; the
    first ones compile bytecode); only what the operation's own process loads is counted in its
    memory (warming every module first added 370 MB to each figure)."""
    for module in OWN_MODULES.get(operation.split("_")[0], STAGE_MODULES):
        importlib.import_module(module)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,100000")
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--only", default=",".join(OPERATIONS))
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    add_child_options(parser)
    args = parser.parse_args()
    if run_child(args, "bench.scale", run_operation, _warm_imports, LLM_ENV):
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    only = args.only.split(",")
    if "report" in only and "report_first" not in only:  # "report" is the one that follows
        only.insert(only.index("report"), "report_first")
    results = measure_sizes("bench.scale", sizes, args.backend, only, args.keep)
    summary = {"backend": args.backend, "sizes": results, "growth_exponent": exponents(results)}
    if "daily_start" in only:
        summary["daily_start_vs_whole_pass"] = _daily_ratios(results)
    print(json.dumps(summary))


def _daily_ratios(results: dict[int, dict[str, dict]]) -> dict[int, dict[str, float]]:
    """Per size: each stage's whole pass (`pages_*`) over its daily start, in time."""
    ratios = {}
    for size, ops in results.items():
        daily = (ops.get("daily_start") or {}).get("result") or {}
        ratios[size] = {
            stage: round(ops[f"pages_{stage}"]["seconds"] / max(daily[stage], 1e-3), 1)
            for stage in ("download", "transcribe", "frames", "annotate")
            if f"pages_{stage}" in ops and stage in daily
        }
    return ratios


if __name__ == "__main__":
    main()
