"""A campaign's topic model, fitted once and kept, and every video's topic under it.

The model is fitted on a seeded sample (`topic_fit_videos`) and stored, pickled, with the
fingerprint of the settings that decide it. A report reuses it while those settings are the
same, its sample was full and the campaign has not doubled since; so a daily report assigns only
the videos that are new or changed (seen again by a collection, or transcribed, since their
assignment), and a topic keeps its number from one report to the next. A refit replaces the
campaign's older fits and their assignments: refitting at every doubling costs, over a
campaign's life, about one more assignment of each video.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import sklearn
from sqlalchemy import delete, exists, func, select, text

from gettok.db import session_scope, upsert_rows, without_jit
from gettok.keyset import id_bounds
from gettok.membership import campaign_videos, member_ranges
from gettok.models.schema import TopicFit, Transcript, Video, VideoTopic, utcnow
from gettok.tasks.export.dataset import campaign_id
from gettok.tasks.report.analyses import queries
from gettok.tasks.report.analyses.section import AnalysisContext
from gettok.tasks.report.analyses.topics_model import MAX_FEATURES, TopicModel

VERSION = 1  # of how documents are made and topics assigned: a new one refits
ASSIGN_SPAN = 10_000  # members per assignment transaction


@dataclass
class StoredFit:
    id: int
    model: TopicModel
    provenance: dict
    refitted: bool  # fitted by this report (else an earlier report's)


def fit_settings(ctx: AnalysisContext) -> dict:
    """What decides the fitted model; any change refits."""
    opts = ctx.options
    return {
        "engine": opts.topic_model or "nmf-tfidf",
        "topics_asked": opts.topics,
        "seed": opts.seed,
        "sample_size": opts.topic_fit_videos,
        "stop_words": list(ctx.stop_languages_used()),
        "max_features": MAX_FEATURES,
        "scikit_learn": sklearn.__version__,
        "version": VERSION,
    }


def current_fit(ctx: AnalysisContext, fit_model) -> StoredFit | None:
    """The campaign's stored fit if it still holds, else a new one from `fit_model(ctx)` (None:
    too little text for a model)."""
    settings = fit_settings(ctx)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    with session_scope(ctx.url) as session:
        cid = campaign_id(session, ctx.campaign)
        members, _, _ = queries.campaign_extent(session, ctx.campaign)
        stored = session.scalars(
            select(TopicFit).where(TopicFit.campaign_id == cid).order_by(TopicFit.id.desc())
        ).first()
        if stored is not None and holds(stored, digest, members, ctx.options.topic_fit_videos):
            model = _unpickled(stored.model)
            if model is not None:
                return StoredFit(stored.id, model, stored.provenance, refitted=False)
    model = fit_model(ctx)
    if model is None:
        return None
    provenance = model.provenance() | settings | {"fitted_on_members": members}
    with session_scope(ctx.url) as session:
        session.execute(delete(TopicFit).where(TopicFit.campaign_id == cid))
        fit = TopicFit(
            campaign_id=cid,
            fingerprint=digest,
            provenance=provenance,
            members=members,
            model=_pickled(model),
            created_at=utcnow(),
        )
        session.add(fit)
        session.flush()
        return StoredFit(fit.id, model, provenance, refitted=True)


def holds(stored: TopicFit, digest: str, members: int, sample_size: int) -> bool:
    """Same settings, a full sample (a smaller campaign is refitted on all its texts, which
    transcripts still change) and fewer than twice the members it was fitted on."""
    full = stored.provenance.get("fit_videos", 0) >= sample_size
    return stored.fingerprint == digest and full and members <= 2 * stored.members


def _pickled(model: TopicModel) -> bytes:
    # The words the vectorizer dropped (too rare or too common) are kept by scikit-learn only
    # for inspection: thousands of them, and not needed to transform.
    if hasattr(model.vectorizer, "stop_words_"):
        del model.vectorizer.stop_words_
    return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)


def _unpickled(blob: bytes) -> TopicModel | None:
    """The stored model (written by this project into its own database), or None when it no
    longer loads (a scikit-learn upgrade changes the fingerprint too)."""
    try:
        model = pickle.loads(blob)  # noqa: S301 - our own rows, never a third party's
    except Exception:  # noqa: BLE001 - refitting is the answer to any unreadable model
        return None
    return model if isinstance(model, TopicModel) else None


def is_current(fit_id: int, after: int | None = None, until: int | None = None):
    """SQL: the video's assignment under the fit was made after it was last seen and after its
    newest transcript (a transcript or caption it was not made from).

    `after` and `until` bound the assignments read to a range of ids: unbounded, Postgres answered
    each range's NOT EXISTS by hashing the fit's every assignment (3.5 s a range at 1M videos)."""
    newer_transcript = exists().where(
        Transcript.video_id == VideoTopic.video_id, Transcript.created_at > VideoTopic.assigned_at
    )
    return exists().where(
        VideoTopic.fit_id == fit_id,
        VideoTopic.video_id == Video.id,
        *id_bounds(after, until, VideoTopic.video_id),
        VideoTopic.assigned_at >= Video.last_seen_at,
        ~newer_transcript,
    )


def assign_pending(ctx: AnalysisContext, fit: StoredFit, document) -> int:
    """Assign every video of the campaign without a current topic, `ASSIGN_SPAN` members per
    transaction (a killed report resumes where it stopped); returns how many were assigned."""
    assigned = 0
    with session_scope(ctx.url) as session:
        cid = campaign_id(session, ctx.campaign)
        for after, until in member_ranges(session, cid, ASSIGN_SPAN):
            started = utcnow()  # a transcript made while this range is read: assigned again
            without_jit(session)  # (for this range's transaction)
            # The range bounds `videos` itself too: read through a cursor without them, Postgres
            # walked the whole key of `videos` for each range (3.9 s a range at 1M, 0.15 s now).
            mine = Video.id.in_(campaign_videos(cid, after=after, until=until))
            bounds = id_bounds(after, until, Video.id)
            pending = ~is_current(fit.id, after, until)
            rows = list(queries.video_texts(session, None, mine, *bounds, pending))
            if not rows:
                continue
            topics = fit.model.assign([document(s, c) for _, _, s, c in rows])
            upsert_rows(
                session,
                VideoTopic.__table__,
                [
                    {"fit_id": fit.id, "video_id": vid, "topic": t, "assigned_at": started}
                    for (vid, _, _, _), t in zip(rows, topics, strict=True)
                ],
                conflict=["fit_id", "video_id"],
                update=["topic", "assigned_at"],
            )
            session.commit()
            assigned += len(rows)
        if assigned and session.get_bind().dialect.name == "postgresql":
            # Fresh statistics for the next report: a new fit's topics are rows Postgres has not
            # counted yet, and it planned a range's check against 80 of them, not 10,000 (a
            # nested loop: 1.8-3.4 s a range at 1M, before autovacuum comes round).
            session.execute(text("ANALYZE video_topics"))
    return assigned


def topic_counts(ctx: AnalysisContext, fit_id: int) -> tuple[Counter, Counter]:
    """Videos per topic, and per (UTC day, topic): one GROUP BY over the stored topics."""
    sizes: Counter = Counter()
    per_day: Counter = Counter()
    with session_scope(ctx.url) as session:
        day = queries.utc_day(session)
        rows = session.execute(
            select(day, VideoTopic.topic, func.count())
            .join(Video, Video.id == VideoTopic.video_id)
            .where(VideoTopic.fit_id == fit_id, queries.in_campaign(ctx.campaign))
            .group_by(day, VideoTopic.topic)
        ).all()
    for d, topic, n in rows:
        sizes[topic] += n
        if d is not None:
            per_day[(queries.as_date(d), topic)] += n
    return sizes, per_day


def assignments(ctx: AnalysisContext, fit_id: int) -> Iterator[tuple[int, date | None, int]]:
    """(video id, UTC day, topic) of every video, in id order, streamed."""
    with session_scope(ctx.url) as session:
        day = queries.utc_day(session)
        query = (
            select(VideoTopic.video_id, day, VideoTopic.topic)
            .join(Video, Video.id == VideoTopic.video_id)
            .where(VideoTopic.fit_id == fit_id, queries.in_campaign(ctx.campaign))
            .order_by(VideoTopic.video_id)
        )
        for vid, d, topic in queries.stream(session, query):
            yield vid, (queries.as_date(d) if d else None), topic
