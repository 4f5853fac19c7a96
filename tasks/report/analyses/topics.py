"""Topics of transcripts (captions where a video has no speech): sizes, top words and topics over
time, from `topics_model` fitted on a seeded sample and applied to every video; the fit and each
video's topic are stored (`topic_store`), so a report assigns only what is new or changed."""

from __future__ import annotations

import logging
from collections import Counter

from gettok.db import session_scope
from gettok.tasks.report.analyses import queries, tables, topic_store
from gettok.tasks.report.analyses.drawing import caption, plt, save, timeline, titled
from gettok.tasks.report.analyses.ngrams import NOISE
from gettok.tasks.report.analyses.section import AnalysisContext, Section
from gettok.tasks.report.analyses.topics_model import NO_TOPIC, TopicModel, fit_topics

log = logging.getLogger(__name__)


def document(speech: str, caption_text: str) -> str:
    """What a video says: its transcript, else its caption without hashtags and mentions."""
    return speech.strip() or NOISE.sub(" ", caption_text).strip()


def topic_name(model: TopicModel, topic: int) -> str:
    if topic == NO_TOPIC:
        return "(no text)"
    return f"T{topic + 1}: " + ", ".join(model.words[topic][:4])


def fit_campaign_topics(ctx: AnalysisContext) -> TopicModel | None:
    """A model fitted on the seeded sample of `topic_fit_videos` videos with any text."""
    opts = ctx.options
    with session_scope(ctx.url) as session:
        sample = queries.seeded_sample(
            session,
            ctx.campaign,
            opts.topic_fit_videos,
            opts.seed,
            keep=lambda r: bool(document(r[2], r[3])),
        )
    texts = [document(s, c) for _, _, s, c in sample]
    return fit_topics(texts, opts.topics, opts.seed, ctx.stop_words(), opts.topic_model)


def topics_section(ctx: AnalysisContext) -> Section:
    fit = topic_store.current_fit(ctx, fit_campaign_topics)
    if fit is None:
        why = (
            "Too little text yet for a topic model (it needs two or more videos and two or more "
            "words left once stop words are removed)."
        )
        return Section("topics", "Topics", why)
    model = fit.model
    assigned = topic_store.assign_pending(ctx, fit, document)
    log.info(
        "topics: %s fit %d, %d videos assigned", "new" if fit.refitted else "kept", fit.id, assigned
    )
    sizes, per_day = topic_store.topic_counts(ctx, fit.id)
    days = sorted({d for d, _ in per_day})
    subtitle = caption(sum(sizes.values()), min(days, default=None), max(days, default=None))
    sizes_png = draw_sizes(model, sizes, subtitle, ctx.out_dir / "topics.png")
    time_png = draw_over_time(
        model, per_day, days, subtitle, ctx, ctx.out_dir / "topics_over_time.png"
    )
    rows, (csv_topics, csv_videos, csv_days) = write_tables(
        ctx, model, sizes, per_day, topic_store.assignments(ctx, fit.id)
    )
    prov = fit.provenance
    how = (
        f"scikit-learn NMF on TF-IDF, {prov['topics']} topics, seed {prov['seed']}"
        if model.nmf is not None
        else f"{prov['model']} embeddings clustered by k-means, {prov['topics']} topics, "
        f"seed {prov['seed']}"
    )
    fitted = (
        f"when the campaign had {prov['fitted_on_members']:,} videos; it is kept, and only new "
        "or changed videos are assigned, until the campaign doubles or these settings change"
    )
    text = "\n\n".join(
        [
            f"Topics of transcripts (the caption where a video has no speech): {how}, fitted on "
            f"{prov['fit_videos']:,} videos and applied to all; {fitted}.",
            tables.markdown(["topic", "videos", "top words"], rows),
            "![topic sizes](topics.png)",
            "![topics over time](topics_over_time.png)",
            f"Tables: [topics.csv]({csv_topics.name}), [topic_assignments.csv]({csv_videos.name}), "
            f"[topics_over_time.csv]({csv_days.name}). Provenance: `{prov}`",
        ]
    )
    return Section(
        "topics", "Topics", text, [sizes_png, time_png], [csv_topics, csv_videos, csv_days], prov
    )


def write_tables(ctx: AnalysisContext, model: TopicModel, sizes: Counter, per_day: Counter, rows):
    """The topics (size, top words), every video's topic (`rows`: video id, day, topic, in id
    order) and topics per day, as CSV."""
    order = sorted(sizes, key=lambda t: (t == NO_TOPIC, -sizes[t], t))
    table = [
        [
            t + 1 if t != NO_TOPIC else "",
            sizes[t],
            ", ".join(model.words[t]) if t != NO_TOPIC else "(no text)",
        ]
        for t in order
    ]
    out = ctx.out_dir
    csv_topics = tables.write_csv(out / "topics.csv", ["topic", "videos", "top_words"], table)
    csv_videos = tables.write_csv(
        out / "topic_assignments.csv",
        ["video_id", "day", "topic"],
        ([v, d.isoformat() if d else "", t + 1 if t != NO_TOPIC else ""] for v, d, t in rows),
    )
    csv_days = tables.write_csv(
        out / "topics_over_time.csv",
        ["day", "topic", "videos"],
        [
            [d.isoformat(), t + 1 if t != NO_TOPIC else "", n]
            for (d, t), n in sorted(per_day.items())
        ],
    )
    return table, (csv_topics, csv_videos, csv_days)


def draw_sizes(model: TopicModel, sizes: Counter, subtitle: str, path):
    fig, ax = plt.subplots(figsize=(10, 0.45 * max(4, len(sizes)) + 1.5))
    order = sorted(sizes, key=lambda t: (t == NO_TOPIC, -sizes[t], t))[::-1]
    ax.barh([topic_name(model, t) for t in order], [sizes[t] for t in order], color="#1f78b4")
    ax.set_xlabel("videos")
    ax.tick_params(axis="y", labelsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    titled(ax, "Topics of transcripts: size and top words", subtitle)
    return save(fig, path)


def draw_over_time(model: TopicModel, per_day: Counter, days, subtitle, ctx, path):
    fig, ax = plt.subplots(figsize=(11, 4.8))
    if days:
        topics = sorted({t for _, t in per_day}, key=lambda t: (t == NO_TOPIC, t))
        totals = {d: sum(n for (day, _), n in per_day.items() if day == d) for d in days}
        shares = [[per_day.get((d, t), 0) / totals[d] for d in days] for t in topics]
        ax.stackplot(days, shares, labels=[topic_name(model, t) for t in topics], alpha=0.85)
        ax.set_ylim(0, 1)
        timeline(ax, days, ctx.events)
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_xlabel("posting day (UTC)")
    ax.set_ylabel("share of the day's videos")
    titled(ax, "Topics over time", subtitle)
    return save(fig, path)
