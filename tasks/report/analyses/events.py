"""The campaign's events as the legend table of the letters on every timeline."""

from __future__ import annotations

from datetime import date

from gettok.db import session_scope
from gettok.tasks.report.analyses import queries, tables
from gettok.tasks.report.analyses.drawing import LetteredEvent
from gettok.tasks.report.analyses.section import AnalysisContext, Section

HEADER = ["letter", "date", "event", "description", "on_timelines"]


def event_rows(
    events: list[LetteredEvent], first: date | None, last: date | None
) -> list[list[str]]:
    """One row per event; whether the timelines draw it (only days the videos cover are drawn)."""
    return [
        [
            e.letter,
            e.date.isoformat(),
            e.label,
            e.description,
            "yes" if first and last and first <= e.date <= last else "no: outside the videos' days",
        ]
        for e in events
    ]


def events_section(ctx: AnalysisContext) -> Section:
    with session_scope(ctx.url) as session:
        _, first, last = queries.campaign_extent(session, ctx.campaign)
    rows = event_rows(ctx.events, first, last)
    csv_path = tables.write_csv(ctx.out_dir / "events.csv", HEADER, rows)
    if not rows:
        text = (
            "The campaign lists no `[[events]]`: the timelines carry no letters "
            f"([{csv_path.name}]({csv_path.name}) holds the header only)."
        )
    else:
        span = f"{first.isoformat()} to {last.isoformat()}" if first and last else "none yet"
        text = (
            "The letters on every timeline of this report mark these events (from the campaign "
            f"file); a timeline draws those within the videos' days ({span}).\n\n"
            + tables.markdown(["letter", "date", "event", "description", "on the timelines"], rows)
            + f"\n\nTable: [events.csv]({csv_path.name})"
        )
    return Section("events", "Events", text, [], [csv_path])
