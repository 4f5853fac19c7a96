"""The campaign's events as the legend table of the letters on every timeline."""

from __future__ import annotations

from gettok.tasks.report.analyses import tables
from gettok.tasks.report.analyses.section import AnalysisContext, Section

HEADER = ["letter", "date", "event", "description"]


def events_section(ctx: AnalysisContext) -> Section:
    rows = [[e.letter, e.date.isoformat(), e.label, e.description] for e in ctx.events]
    csv_path = tables.write_csv(ctx.out_dir / "events.csv", HEADER, rows)
    if not rows:
        text = "The campaign lists no `[[events]]`: the timelines carry no letters."
    else:
        text = (
            "The letters on every timeline of this report mark these events "
            f"(from the campaign file):\n\n{tables.markdown(HEADER, rows)}"
        )
    return Section("events", "Events", text, [], [csv_path])
