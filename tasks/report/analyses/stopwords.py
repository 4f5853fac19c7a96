"""Whose stop words the text analyses remove: the campaign's language, and every other language
the text identifier found in enough of its captions and transcripts.

A Spanish campaign holds English videos too (the Ecuador study found English and Portuguese):
with Spanish stop words alone, "the", "was" and "after the" top its n-grams and topics.
"""

from __future__ import annotations

from functools import lru_cache

import stopwordsiso
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gettok.membership import campaign_videos
from gettok.models.schema import TextLanguage

MIN_SHARE = 0.05  # of the videos whose texts have an identified language
MIN_VIDEOS = 2  # one stray (often misidentified) text does not add a language


@lru_cache(maxsize=32)
def stop_words(language: str | None) -> frozenset[str]:
    """stopwords-iso's list for the language (English when none is set or it has none)."""
    code = (language or "en").lower()
    words = stopwordsiso.stopwords(code) or stopwordsiso.stopwords("en")
    return frozenset(w.casefold() for w in words)


def stop_words_of(languages: tuple[str, ...]) -> frozenset[str]:
    """The union of the languages' lists (English alone for none)."""
    if not languages:
        return stop_words(None)
    return frozenset().union(*(stop_words(code) for code in languages))


def text_language_videos(session: Session, campaign: str) -> dict[str, int]:
    """Per language the text identifier gave a caption or transcript: the campaign's videos with
    such a text; "" keys the number of videos with any identified text."""
    mine = TextLanguage.video_id.in_(campaign_videos(campaign))
    identified = TextLanguage.language.is_not(None)
    rows = session.execute(
        select(TextLanguage.language, func.count(func.distinct(TextLanguage.video_id)))
        .where(mine, identified)
        .group_by(TextLanguage.language)
    ).all()
    total = session.execute(
        select(func.count(func.distinct(TextLanguage.video_id))).where(mine, identified)
    ).scalar_one()
    return {str(lang): int(n) for lang, n in rows} | {"": int(total)}


def stop_languages(videos_by_language: dict[str, int], campaign_language: str | None) -> tuple:
    """The campaign's language first, then the others on at least `MIN_SHARE` of the identified
    videos and `MIN_VIDEOS` of them, most videos first; only those stopwords-iso has a list for."""
    total = videos_by_language.get("", 0)
    first = (campaign_language or "en").lower()
    others = sorted(
        (
            (n, lang.lower())
            for lang, n in videos_by_language.items()
            if lang and lang.lower() != first and n >= MIN_VIDEOS and n >= MIN_SHARE * total
        ),
        key=lambda x: (-x[0], x[1]),
    )
    return (first, *(lang for _, lang in others if stopwordsiso.has_lang(lang)))
