"""Engagement over time normalised (the Ecuador paper's Figure 1): videos, shares, views,
comments and likes per day, each divided by its own maximum, events lettered, peaks named."""

from __future__ import annotations

from datetime import date
from typing import Any

from gettok.db import session_scope
from gettok.tasks.report.analyses import queries, tables
from gettok.tasks.report.analyses.drawing import caption, plt, save, timeline, titled
from gettok.tasks.report.analyses.section import AnalysisContext, Section

SERIES = ("videos", "shares", "views", "comments", "likes")
COLOURS = {
    "videos": "#1f78b4",
    "shares": "#756bb1",
    "views": "#e6550d",
    "comments": "#636363",
    "likes": "#31a354",
}


def normalised(daily: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Each series divided by its maximum (all zero stays zero)."""
    out = {}
    for name in SERIES:
        values = [row[name] for row in daily]
        top = max(values, default=0)
        out[name] = [v / top if top else 0.0 for v in values]
    return out


def peaks(daily: list[dict[str, Any]]) -> dict[str, tuple[date, int]]:
    """The day each series peaked, and its value there (the first such day on ties)."""
    out = {}
    for name in SERIES:
        if daily:
            row = max(daily, key=lambda r: (r[name], -r["day"].toordinal()))
            out[name] = (row["day"], row[name])
    return out


def peak_sentence(found: dict[str, tuple[date, int]]) -> str:
    """The peaks in words, days with several peaks together, as the paper names them."""
    by_day: dict[date, list[str]] = {}
    for name, (day, value) in found.items():
        by_day.setdefault(day, []).append(f"{name} {value:,}")
    parts = [f"{', '.join(v)} on {d.isoformat()}" for d, v in sorted(by_day.items())]
    return "Peaks: " + "; ".join(parts) + "." if parts else "No videos with a posting day yet."


def engagement_section(ctx: AnalysisContext) -> Section:
    with session_scope(ctx.url) as session:
        daily = queries.daily_engagement(session, ctx.campaign)
    path = ctx.out_dir / "engagement_normalised.png"
    draw(daily, ctx, path)
    header = ["day", *SERIES]
    rows = [[r["day"].isoformat(), *(r[s] for s in SERIES)] for r in daily]
    csv_path = tables.write_csv(ctx.out_dir / "engagement_daily.csv", header, rows)
    text = "\n\n".join(
        [
            "Videos posted per day and their engagement, each series divided by its own maximum "
            "(the Ecuador paper's Figure 1). " + peak_sentence(peaks(daily)),
            "![engagement over time, normalised](engagement_normalised.png)",
            f"Daily values: [engagement_daily.csv]({csv_path.name})",
        ]
    )
    return Section("engagement", "Engagement over time (normalised)", text, [path], [csv_path])


def draw(daily: list[dict[str, Any]], ctx: AnalysisContext, path):
    fig, ax = plt.subplots(figsize=(11, 4.6))
    days = [r["day"] for r in daily]
    n = sum(r["videos"] for r in daily)
    if daily:
        scaled = normalised(daily)
        for name in SERIES:
            ax.plot(days, scaled[name], label=name, color=COLOURS[name], linewidth=1.4)
        timeline(ax, days, ctx.events)
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_xlabel("posting day (UTC)")
    ax.set_ylabel("share of the series' maximum")
    titled(
        ax,
        "Videos and engagement per day, each normalised to its maximum",
        caption(n, min(days, default=None), max(days, default=None)),
    )
    return save(fig, path)
