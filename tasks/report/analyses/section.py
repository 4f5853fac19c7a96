"""What one analysis hands the report: a Markdown section and the files it wrote beside it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gettok.models.campaign import ReportOptions
from gettok.tasks.report.analyses.drawing import LetteredEvent


@dataclass(frozen=True)
class AnalysisContext:
    """Where and for what an analysis runs."""

    url: str
    campaign: str
    out_dir: Path
    options: ReportOptions
    events: list[LetteredEvent] = field(default_factory=list)
    language: str | None = None  # the campaign's language: its stop words are removed
    # Whose stop words are removed (analyses.stopwords.stop_languages); empty: `language`'s only.
    stop_languages: tuple[str, ...] = ()

    def stop_languages_used(self) -> tuple[str, ...]:
        return self.stop_languages or ((self.language or "en").lower(),)

    def stop_words(self) -> frozenset[str]:
        from gettok.tasks.report.analyses.stopwords import stop_words_of

        return stop_words_of(self.stop_languages_used())


@dataclass
class Section:
    key: str  # names its Prefect artifact
    title: str
    markdown: str
    figures: list[Path] = field(default_factory=list)
    tables: list[Path] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)  # models, seeds and settings that made it

    def text(self) -> str:
        return f"## {self.title}\n\n{self.markdown}"
