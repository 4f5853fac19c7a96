"""The report's charts (matplotlib, Agg backend: no display needed on a worker)."""

from __future__ import annotations

import math
import os
import uuid
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FuncFormatter,
    LogFormatter,
    MaxNLocator,
    PercentFormatter,
)

from gettok.tasks.report.compare_transcripts import TranscriptComparison  # noqa: E402

DPI = 120
# Fixed colours per label so a label keeps its colour across figures and reports.
LABEL_COLOURS = {
    "support": "#1b9e77",
    "positive": "#1b9e77",
    "no support": "#d95f02",
    "negative": "#d95f02",
    "neutral": "#7570b3",
    "(none)": "#d9d9d9",
}
OTHER_COLOURS = ["#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#1f78b4", "#b2df8a"]


def _humanise(x: float, _pos=None) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= size:
            return f"{x / size:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{x:.0f}"


class HumanLogFormatter(LogFormatter):
    """Log-axis labels as 2, 30, 1.5k, 2M instead of 2×10⁰ (matplotlib still picks which)."""

    def _num_to_string(self, x, vmin, vmax):
        return _humanise(x)


def human_log_axes(ax) -> None:
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(HumanLogFormatter())
        axis.set_minor_formatter(HumanLogFormatter(labelOnlyBase=False))


def _save(fig, path: Path) -> Path:
    try:
        _replace_whole(path, lambda tmp: fig.savefig(tmp, dpi=DPI, bbox_inches="tight"))
    finally:
        plt.close(fig)
    return path


def _replace_whole(path: Path, write) -> None:
    """Write `path` beside it under a unique name, then rename over it: a reader (or a report
    killed mid-write) never finds half a PNG, and an earlier figure stays whole until replaced."""
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


SYNTHETIC_BANNER = "SANDBOX DATA: synthetic, not TikTok"


def mark_synthetic(path: Path) -> Path:
    """Stamp a red banner across the top of a drawn figure: its data came from the sandbox."""
    from PIL import Image, ImageDraw, ImageFont

    figure = Image.open(path).convert("RGB")
    band = max(28, figure.height // 14)
    stamped = Image.new("RGB", (figure.width, figure.height + band), "#c00000")
    stamped.paste(figure, (0, band))
    font = ImageFont.load_default(size=int(band * 0.6))
    ImageDraw.Draw(stamped).text(
        (figure.width / 2, band / 2), SYNTHETIC_BANNER, fill="white", font=font, anchor="mm"
    )
    _replace_whole(path, lambda tmp: stamped.save(tmp, format="PNG"))
    return path


def _empty(ax, message: str = "no data yet") -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def _dates(ax, days: list[date]) -> None:
    """Whole days only, at most ~10 labels, a little room on both sides."""
    span = (max(days) - min(days)).days + 1
    ax.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, math.ceil(span / 10))))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b\n%Y"))
    ax.set_xlim(mdates.date2num(min(days)) - 0.6, mdates.date2num(max(days)) + 0.6)


def _events(ax, events, days: list[date], letters: bool = True) -> None:
    """The campaign's lettered events on a timeline (see the report's Events table)."""
    from gettok.tasks.report.analyses.drawing import mark_events

    mark_events(ax, list(events), days, letters)


def titled(ax, title: str, subtitle: str = "") -> None:
    """The title, and under it in grey what the figure shows: n and the data's days. Both sit
    at fixed points above the axes, clear of the event letters drawn just above them."""
    ax.set_title(title, fontsize=12, loc="left", pad=26 if subtitle else 14)
    if subtitle:
        ax.annotate(
            subtitle,
            xy=(0, 1),
            xycoords="axes fraction",
            xytext=(0, 13),
            textcoords="offset points",
            fontsize=8.5,
            color="#555555",
            va="bottom",
        )


DAY_LABEL = "posting day (UTC)"


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", alpha=0.3)


def hashtags_figure(
    by_count: list[tuple[str, int]],
    by_views: list[tuple[str, int]],
    path: Path,
    subtitle: str = "",
) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    for ax, data, title, colour in (
        (axes[0], by_count, "by number of videos", "#1f78b4"),
        (axes[1], by_views, "by views", "#e6550d"),
    ):
        if not data:
            _empty(ax)
        else:
            tags = [f"#{t}" for t, _ in data][::-1]
            values = [v for _, v in data][::-1]
            bars = ax.barh(tags, values, color=colour)
            ax.bar_label(bars, labels=[_humanise(v) for v in values], padding=3, fontsize=8)
            ax.xaxis.set_major_formatter(FuncFormatter(_humanise))
            ax.set_xlim(0, max(values) * 1.15)
            ax.spines[["top", "right"]].set_visible(False)
        ax.set_xlabel("videos" if data is by_count else "views of the videos carrying it")
        titled(ax, f"Top hashtags {title}", subtitle)
    fig.suptitle(
        "Generic hashtags (fyp, parati, foryou, viral, ...) excluded",
        fontsize=9,
        color="grey",
        y=0.02,
    )
    fig.tight_layout()
    return _save(fig, path)


def daily_volume_figure(daily: pl.DataFrame, path: Path, events=(), subtitle: str = "") -> Path:
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 6), sharex=True, gridspec_kw={"height_ratios": [1, 1.2]}
    )
    if daily.height == 0:
        _empty(top)
        _empty(bottom)
        return _save(fig, path)
    days = daily["create_date"].to_list()
    top.bar(days, daily["videos"].to_list(), width=0.8, color="#1f78b4")
    top.set_ylabel("videos posted")
    top.yaxis.set_major_locator(MaxNLocator(integer=True))
    titled(top, "Daily volume and engagement", subtitle)
    _style(top)
    for column, colour in (
        ("views", "#e6550d"),
        ("likes", "#31a354"),
        ("shares", "#756bb1"),
        ("comments", "#636363"),
    ):
        values = [max(v or 0, 0) for v in daily[column].to_list()]
        bottom.plot(days, values, marker="o", markersize=3, label=column, color=colour)
    bottom.set_yscale("symlog", linthresh=10)
    bottom.yaxis.set_major_formatter(FuncFormatter(_humanise))
    bottom.set_ylabel("engagement (log scale)")
    bottom.set_xlabel(DAY_LABEL)
    bottom.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    _style(bottom)
    _dates(bottom, days)
    _events(top, events, days)
    _events(bottom, events, days, letters=False)
    fig.tight_layout()
    return _save(fig, path)


def coverage_figure(coverage: pl.DataFrame, path: Path, events=(), subtitle: str = "") -> Path:
    fig, ax = plt.subplots(figsize=(11, 4))
    if coverage.height == 0:
        _empty(ax)
        return _save(fig, path)
    days = coverage["create_date"].to_list()
    for column, label, colour in (
        ("whisper", "Whisper", "#1f78b4"),
        ("tiktok", "TikTok (voice_to_text)", "#e6550d"),
        ("both", "both", "#31a354"),
    ):
        ax.plot(
            days, coverage[column].to_list(), marker="o", markersize=3, label=label, color=colour
        )
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("share of the day's videos")
    ax.set_xlabel(DAY_LABEL)
    titled(ax, "Transcript coverage by source", subtitle)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    _style(ax)
    _dates(ax, days)
    _events(ax, events, days)
    fig.tight_layout()
    return _save(fig, path)


def bar_figure(
    data: list[tuple[str, int]],
    title: str,
    ylabel: str,
    path: Path,
    subtitle: str = "",
    xlabel: str = "",
) -> Path:
    fig, ax = plt.subplots(figsize=(7, 3.8))
    if not data:
        _empty(ax)
    else:
        names = [str(n) for n, _ in data]
        values = [v for _, v in data]
        bars = ax.bar(names, values, color="#1f78b4")
        ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=2, fontsize=8)
        ax.set_ylim(0, max(values) * 1.15)
        ax.set_ylabel(ylabel)
        ax.set_xlabel(xlabel)
        if max(len(n) for n in names) > 8:
            plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
        _style(ax)
    titled(ax, title, subtitle)
    fig.tight_layout()
    return _save(fig, path)


def languages_figure(languages: list[tuple[str, int, int]], path: Path, subtitle: str = "") -> Path:
    """Videos per language by the transcript's text (fastText) beside Whisper's detection from
    the audio, side by side, so a language found by one only still shows."""
    fig, ax = plt.subplots(figsize=(max(7, 0.9 * len(languages) + 2), 4))
    if not languages:
        _empty(ax, "no Whisper transcript with words yet")
    else:
        xs = list(range(len(languages)))
        for offset, index, label, colour in (
            (-0.2, 1, "text (fastText lid.176)", "#1f78b4"),
            (0.2, 2, "audio (Whisper)", "#a6cee3"),
        ):
            values = [row[index] for row in languages]
            bars = ax.bar([x + offset for x in xs], values, width=0.4, label=label, color=colour)
            ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=2, fontsize=8)
        ax.set_xticks(xs, [row[0] for row in languages])
        ax.set_ylim(0, max(max(r[1], r[2]) for r in languages) * 1.15)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("language")
        ax.set_ylabel("videos")
        ax.legend(fontsize=8, frameon=False, loc="upper right")
        _style(ax)
    titled(ax, "Transcript language: from the text and from the audio", subtitle)
    fig.tight_layout()
    return _save(fig, path)


def labels_figure(
    per_day: pl.DataFrame, title: str, path: Path, events=(), subtitle: str = ""
) -> Path:
    """Stacked shares of each label per day; unlabelled videos in grey on top."""
    fig, ax = plt.subplots(figsize=(11, 4))
    if per_day.height == 0:
        _empty(ax)
        titled(ax, title, subtitle)
        return _save(fig, path)
    wide = (
        per_day.pivot(on="label", index="create_date", values="videos")
        .fill_null(0)
        .sort("create_date")
    )
    labels = sorted(
        (c for c in wide.columns if c not in ("create_date", "(none)")),
        key=lambda s: (s not in LABEL_COLOURS, s),
    )
    if "(none)" in wide.columns:
        labels.append("(none)")
    totals = wide.select(pl.sum_horizontal(labels)).to_series().to_list()
    days = wide["create_date"].to_list()
    bottom = [0.0] * len(days)
    extra = iter(OTHER_COLOURS * 4)
    for label in labels:
        shares = [c / t if t else 0.0 for c, t in zip(wide[label].to_list(), totals, strict=True)]
        ax.bar(
            days,
            shares,
            bottom=bottom,
            width=0.85,
            label="not labelled" if label == "(none)" else label,
            color=LABEL_COLOURS.get(label) or next(extra),
        )
        bottom = [b + s for b, s in zip(bottom, shares, strict=True)]
    top = 1.0
    if len(days) <= 14:  # more would overlap; the daily volume figure has the counts
        top = 1.08  # the day's n inside the axes, under the event letters above them
        for day, total in zip(days, totals, strict=True):
            ax.text(day, 1.01, f"n={total}", ha="center", va="bottom", fontsize=7, color="grey")
    ax.set_ylim(0, top)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("share of the day's videos")
    ax.set_xlabel(DAY_LABEL)
    titled(ax, title, subtitle)
    handles, names = ax.get_legend_handles_labels()
    ax.legend(
        handles[::-1],
        names[::-1],
        fontsize=8,
        frameon=False,
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
    )
    ax.spines[["top", "right"]].set_visible(False)
    _dates(ax, days)
    _events(ax, events, days)
    fig.tight_layout()
    return _save(fig, path)


def word_counts_figure(
    points: list[tuple[int, int, int]],
    comparison: TranscriptComparison,
    path: Path,
    subtitle: str = "",
) -> Path:
    """One dot per video at (Whisper's words, TikTok's words). `points` gives each distinct
    pair of counts once with its number of videos n, drawn as n dots of alpha 0.7 stack
    (alpha 1 - 0.3^n), so the figure holds the distinct counts, not every video."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    if not points:
        _empty(ax, "no video has both transcripts yet")
    else:
        top = max(max(x, y) for x, y, _ in points) * 1.05 or 1
        ax.plot([0, top], [0, top], color="grey", linewidth=1, linestyle="--", label="same count")
        by_videos: dict[int, list[tuple[int, int]]] = {}
        for x, y, n in points:
            by_videos.setdefault(n, []).append((x, y))
        for n, dots in sorted(by_videos.items()):  # one alpha per call: Agg's marker path
            xs, ys = zip(*dots, strict=True)
            ax.scatter(xs, ys, s=14, alpha=1 - (1 - 0.7) ** n, color="#1f78b4")
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_xlabel("words in Whisper's transcript")
        ax.set_ylabel("words in TikTok's transcript")
        r = comparison.pearson_r
        stats = (
            f"n = {comparison.videos}\nPearson r = {r:.3f}, R² = {comparison.r_squared:.3f}"
            if r is not None
            else f"n = {comparison.videos}\nPearson r undefined"
        )
        stats += f"\nmean Jaccard = {comparison.mean_jaccard:.3f}"
        ax.text(0.03, 0.97, stats, transform=ax.transAxes, va="top", fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
    titled(ax, "Word counts per video: Whisper vs TikTok", subtitle)
    fig.tight_layout()
    return _save(fig, path)
