"""Benchmark: time and peak memory of the report's analyses at 10k and 100k videos (Postgres).

For each size it builds a synthetic campaign (bench/scale_data.py) in a fresh database, then runs
each analysis, all of them, and the whole report, each in its own process (peak memory as in
bench/measure.py: ru_maxrss of a wrapper whose only child is the operation). The naive baseline,
measured in the same run, reads every video's record as Python objects (`campaign_records`), as
an analysis that loads the campaign would before computing anything. The last stdout line is one
JSON object: per size and operation seconds and peak MB, and the ratios to the baseline.
`topics` runs first and stores the topic model and every video's topic; `analyses` and `report`
after it reuse them where their settings match (as a daily report does).

    python -m bench.report                      # 10k and 100k videos, Postgres
    python -m bench.report --sizes 2000 --only ngrams,topics
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.measure import add_child_options, exponents, measure_sizes, run_child

ANALYSES = ("engagement", "ngrams", "hashtags", "topics", "clusters", "summary_checks")
OPERATIONS = ("naive_records", *ANALYSES, "analyses", "report")
EVENTS = [
    {"date": "2024-03-20", "label": "First", "description": "an event"},
    {"date": "2024-04-15", "label": "Second", "description": "another"},
]


def config():
    from bench.scale_data import CAMPAIGN
    from gettok.models.campaign import parse_campaign

    return parse_campaign({**CAMPAIGN, "events": EVENTS})


def run_operation(name: str, url: str, out: Path) -> object:
    from gettok.tasks.report import analyses

    if name == "naive_records":
        from gettok.tasks.export.dataset import campaign_records

        return len(campaign_records(url, "scale", with_raw=False))
    if name == "report":
        from bench.scale_data import COMPARISON_MODEL
        from gettok.tasks.report.build import build_report

        report = build_report(url, "scale", out, embedding_model=COMPARISON_MODEL, config=config())
        return len(report.figures)
    if name == "analyses":
        return len(analyses.run_analyses(url, "scale", out, config()))
    section = _section(name)
    cfg = config()
    ctx = analyses.AnalysisContext(url, "scale", out, cfg.report, [], cfg.language)
    return len(section(ctx).figures)


def _section(name: str):
    from gettok.tasks.report import analyses

    return {f.__name__.removesuffix("_section"): f for f in analyses._sections()}[name]


def ratios(figures: dict[str, dict]) -> dict[str, dict[str, float]]:
    """Each operation's time and peak memory over the naive baseline's."""
    base = figures.get("naive_records", {})
    out = {}
    for name, figure in figures.items():
        if name != "naive_records" and figure.get("seconds") and base.get("seconds"):
            out[name] = {
                "time": round(figure["seconds"] / base["seconds"], 2),
                "peak_memory": round(figure["peak_mb"] / base["peak_mb"], 2),
            }
    return out


def _warm_imports(operation: str) -> None:
    """Imports (umap's ~30 s) are not the analysis' cost (the same for every operation)."""
    import sklearn.cluster  # noqa: F401
    import umap  # noqa: F401

    import gettok.tasks.export.dataset  # noqa: F401
    import gettok.tasks.report.analyses.clusters  # noqa: F401
    import gettok.tasks.report.analyses.topics  # noqa: F401
    import gettok.tasks.report.build  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--only", default=",".join(OPERATIONS))
    add_child_options(parser)
    args = parser.parse_args()
    if run_child(args, "bench.report", run_operation, _warm_imports):
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    results = measure_sizes("bench.report", sizes, args.backend, args.only.split(","))
    summary = {
        "backend": args.backend,
        "sizes": results,
        "ratio_to_naive": {size: ratios(figures) for size, figures in results.items()},
        "growth_exponent": exponents(results),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
