"""The language figure: transcripts' languages from their text (fastText lid.176, as the Ecuador
study used langdetect), beside Whisper's detection from the audio, and the clips where they
disagree (a misheard language, a voice-over in another language: worth a look)."""

from __future__ import annotations

from typing import Any

import polars as pl

UNKNOWN = "unknown"
SHOWN_DISAGREEMENTS = 20
NO_DISAGREEMENTS = pl.DataFrame(
    schema={"video_id": pl.Int64, "audio": pl.Utf8, "whisper_text_language": pl.Utf8}
)


def _with_words(df: pl.DataFrame) -> pl.DataFrame:
    """Videos with an ok, non-empty Whisper transcript."""
    return df.filter(
        (pl.col("whisper_status") == "ok") & ~pl.col("whisper_is_empty").fill_null(False)
    )


def language_counts(df: pl.DataFrame) -> pl.DataFrame:
    """Per language: videos by the text's language and by Whisper's audio detection (over videos
    with words); counts of pages add up."""
    spoken = _with_words(df).with_columns(audio=_audio_language())
    by_text = spoken.group_by(language=pl.col("whisper_text_language").fill_null(UNKNOWN))
    by_audio = spoken.group_by(language=pl.col("audio").fill_null(UNKNOWN))
    return (
        by_text.agg(text=pl.len().cast(pl.Int64))
        .join(by_audio.agg(audio=pl.len().cast(pl.Int64)), on="language", how="full", coalesce=True)
        .fill_null(0)
    )


def ranked_languages(counts: pl.DataFrame) -> list[tuple[str, int, int]]:
    """(language, videos by text, videos by audio), most videos by text first."""
    counts = counts.sort(["text", "language"], descending=[True, False])
    return [(r["language"], r["text"], r["audio"]) for r in counts.iter_rows(named=True)]


def language_distribution(df: pl.DataFrame) -> list[tuple[str, int, int]]:
    """(language, videos by the text's language, videos by Whisper's audio detection)."""
    return ranked_languages(language_counts(df))


def _audio_language() -> pl.Expr:
    """Whisper's detection; transcripts from before it was stored give their language."""
    return pl.col("whisper_detected_language").fill_null(pl.col("whisper_language"))


def disagreements(df: pl.DataFrame) -> pl.DataFrame:
    """Videos whose transcript's text language differs from Whisper's audio detection."""
    spoken = _with_words(df).with_columns(audio=_audio_language())
    spoken = spoken.drop_nulls(["whisper_text_language", "audio"])
    return spoken.filter(pl.col("whisper_text_language") != pl.col("audio")).select(
        "video_id", "audio", "whisper_text_language"
    )


def language_section(
    languages: list[tuple[str, int, int]], disagree: pl.DataFrame, table
) -> list[str]:
    """Markdown: the table, the figure, and the flagged clips."""
    if not languages:
        return ["No Whisper transcripts yet."]
    lines: list[Any] = [
        "Language of each Whisper transcript from its text (fastText lid.176), beside "
        "Whisper's detection from the audio.",
        table(["language", "videos (text)", "videos (audio)"], [list(x) for x in languages]),
        "![languages](languages.png)",
        f"Audio and text languages disagree on {disagree.height} videos"
        + (":" if disagree.height else "."),
    ]
    if disagree.height:
        shown = disagree.head(SHOWN_DISAGREEMENTS)
        lines.append(
            table(
                ["video", "audio (Whisper)", "text"],
                [[str(video), audio, text] for video, audio, text in shown.iter_rows()],
            )
        )
    return lines
