"""Caption n-grams (the Ecuador paper's Figure 2): the most frequent bigrams and trigrams of
captions, with stopwords-iso's stop words of the campaign's language (and of the other languages
found in its texts: `analyses.stopwords`) removed.

Hashtags, mentions and links are dropped first (hashtags have their own figures); stop words are
removed and n-grams formed from the words that remain, as scikit-learn's CountVectorizer does.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from sqlalchemy import func, select

from gettok.db import session_scope
from gettok.models.schema import Video
from gettok.tasks.report.analyses import queries, tables
from gettok.tasks.report.analyses.drawing import caption, plt, save, titled
from gettok.tasks.report.analyses.section import AnalysisContext, Section
from gettok.tasks.report.analyses.stopwords import (  # noqa: F401 (stop_words importable here)
    MIN_SHARE,
    stop_words,
)

NOISE = re.compile(r"https?://\S+|www\.\S+|[#@＠＃][\w.]+", re.UNICODE)
WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
TOP = 20
# Past this many distinct n-grams, those seen once are dropped (counts stay exact for any n-gram
# frequent enough to rank; memory stays bounded on a million captions).
MAX_DISTINCT = 500_000


def caption_words(text: str, stop: frozenset[str]) -> list[str]:
    text = NOISE.sub(" ", text.casefold())
    return [w for w in WORD.findall(text) if len(w) > 1 and w not in stop]


def count_ngrams(captions: Iterable[str], stop: frozenset[str]) -> dict[int, Counter]:
    """Bigram and trigram counts over the captions (each occurrence counts)."""
    counts = {2: Counter(), 3: Counter()}
    for text in captions:
        words = caption_words(text, stop)
        for n, counter in counts.items():
            counter.update(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
            if len(counter) > MAX_DISTINCT:
                for gram in [g for g, c in counter.items() if c == 1]:
                    del counter[gram]
    return counts


def top(counter: Counter, n: int = TOP) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def ngrams_section(ctx: AnalysisContext) -> Section:
    stop = ctx.stop_words()
    with session_scope(ctx.url) as session:
        query = select(func.coalesce(Video.video_description, "")).where(
            queries.in_campaign(ctx.campaign)
        )
        captions = (row[0] for row in queries.stream(session, query))
        counts = count_ngrams(captions, stop)
        n, first, last = queries.campaign_extent(session, ctx.campaign)
    bigrams, trigrams = top(counts[2]), top(counts[3])
    path = ctx.out_dir / "caption_ngrams.png"
    draw(bigrams, trigrams, caption(n, first, last, "captions"), path)
    rows = [["bigram", g, c] for g, c in bigrams] + [["trigram", g, c] for g, c in trigrams]
    csv_path = tables.write_csv(ctx.out_dir / "caption_ngrams.csv", ["n", "ngram", "count"], rows)
    language = ", ".join(ctx.stop_languages_used())
    text = "\n\n".join(
        [
            f"The {TOP} most frequent bigrams and trigrams of captions, without hashtags, "
            f"mentions, links and the {len(stop):,} stop words of stopwords-iso ({language}: "
            "the campaign's language, and any other the text identifier found in at least "
            f"{MIN_SHARE:.0%} of its videos).",
            "![caption n-grams](caption_ngrams.png)",
            tables.markdown(["n", "n-gram", "captions"], rows),
            f"Table: [caption_ngrams.csv]({csv_path.name})",
        ]
    )
    provenance = {"stop_words": f"stopwords-iso {language}", "stop_word_count": len(stop)}
    return Section("ngrams", "Caption n-grams", text, [path], [csv_path], provenance)


def draw(bigrams, trigrams, subtitle: str, path):
    fig, axes = plt.subplots(1, 2, figsize=(11, 6))
    for ax, data, name, colour in (
        (axes[0], bigrams, "bigrams", "#1f78b4"),
        (axes[1], trigrams, "trigrams", "#e6550d"),
    ):
        if data:
            ax.barh([g for g, _ in data][::-1], [c for _, c in data][::-1], color=colour)
            ax.spines[["top", "right"]].set_visible(False)
        else:
            ax.text(0.5, 0.5, "no captions yet", ha="center", transform=ax.transAxes)
        ax.set_xlabel("occurrences in captions")
        ax.tick_params(axis="y", labelsize=8)
        titled(ax, f"Most frequent caption {name}", subtitle)
    return save(fig, path)
