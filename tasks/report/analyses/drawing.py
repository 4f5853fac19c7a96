"""What every analysis figure shares: event letters on timelines, the n and date range under the
title, and the atomic save of the report's other figures."""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from gettok.models.campaign import Event
from gettok.tasks.report.figures import (  # noqa: F401
    _dates,
    _save,
    plt,
    titled,
)

EVENT_COLOUR = "#b2182b"


@dataclass(frozen=True)
class LetteredEvent:
    letter: str
    date: date
    label: str
    description: str


def lettered(events: list[Event]) -> list[LetteredEvent]:
    """Events in date order, lettered A, B, ... (AA, AB, ... past Z) as the Ecuador paper does."""
    letters = list(string.ascii_uppercase)
    letters += [a + b for a in string.ascii_uppercase for b in string.ascii_uppercase]
    ordered = sorted(events, key=lambda e: (e.date, e.label))
    return [
        LetteredEvent(letter, e.date, e.label, e.description)
        for letter, e in zip(letters, ordered, strict=False)
    ]


def mark_events(
    ax, events: list[LetteredEvent], days: list[date], letters: bool = True
) -> list[LetteredEvent]:
    """A dashed line and its letter at each event inside the plotted days; returns those drawn."""
    if not days:
        return []
    first, last = min(days), max(days)
    drawn = [e for e in events if first <= e.date <= last]
    for e in drawn:
        ax.axvline(e.date, color=EVENT_COLOUR, linestyle="--", linewidth=0.9, alpha=0.8)
        if not letters:
            continue
        ax.annotate(
            e.letter,
            xy=(e.date, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=9,
            fontweight="bold",
            color=EVENT_COLOUR,
        )
    return drawn


def caption(n: int, first: date | None, last: date | None, unit: str = "videos") -> str:
    """The line under a title: how many, and the days the data covers."""
    span = f", posted {first.isoformat()} to {last.isoformat()} (UTC)" if first and last else ""
    return f"n = {n:,} {unit}{span}"


def timeline(ax, days: list[date], events: list[LetteredEvent]) -> list[LetteredEvent]:
    """Date ticks as the report's other timelines, plus the event letters."""
    _dates(ax, days)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", alpha=0.3)
    return mark_events(ax, events, days)


def save(fig, path: Path) -> Path:
    """The figure, laid out, saved whole (the report stamps sandbox figures afterwards)."""
    fig.tight_layout()
    _save(fig, path)
    return path
