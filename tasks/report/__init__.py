"""Report: the campaign's dataset described (volumes, hashtags, languages, labels over time, the
two transcripts compared, LLM costs) in `report.md` with PNG figures beside it.

Records nothing in the database; a rerun that would write the same files counts as skipped.
"""

from gettok.tasks.report.build import ReportResult, build_report
from gettok.tasks.report.compare_transcripts import TranscriptComparison, compare_transcripts

__all__ = ["ReportResult", "TranscriptComparison", "build_report", "compare_transcripts"]
