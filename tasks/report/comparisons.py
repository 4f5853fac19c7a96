"""Whisper against TikTok, compared once per pair of transcript versions and stored.

A pair is the video's current Whisper transcript and TikTok's, both with words. A row is keyed by
both transcripts, both text hashes and the embedding model, so a re-transcription or an edited
TikTok transcript is compared anew while unchanged pairs are never recomputed; the report reads
sums of the rows (`campaign_comparison`), not the texts.
"""

from __future__ import annotations

from sqlalchemy import Float, and_, cast, exists, func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from gettok import db
from gettok.membership import campaign_videos
from gettok.models.schema import Transcript, TranscriptComparison, utcnow
from gettok.tasks.report import compare_transcripts as compare
from gettok.tasks.report import embeddings

BATCH = 500  # pairs per embedding batch and transaction
DIFFERENCES = tuple(compare.PairDifferences.model_fields)


def _usable(t, nonempty: bool = True):
    """With words; Whisper's near-empty ones (music heard as "Thank you.") are left out, as the
    study compared only videos with speech; TikTok's are kept as TikTok wrote them."""
    flagged = [t.is_empty.is_(False)] if nonempty else []
    return [t.status == "ok", *flagged, t.text.is_not(None), t.text != ""]


def _pending_pairs(campaign_name: str, model: str):
    w, k = aliased(Transcript), aliased(Transcript)
    done = exists().where(
        TranscriptComparison.whisper_transcript_id == w.id,
        TranscriptComparison.tiktok_transcript_id == k.id,
        TranscriptComparison.whisper_sha256 == w.text_sha256,
        TranscriptComparison.tiktok_sha256 == k.text_sha256,
        TranscriptComparison.embedding_model == model,
    )
    return (
        select(w.video_id, w.id, w.text, w.text_sha256, k.id, k.text, k.text_sha256)
        .join(k, and_(k.video_id == w.video_id, k.engine == "tiktok", *_usable(k, False)))
        .where(
            w.engine == "faster-whisper",
            w.is_current.is_(True),
            *_usable(w),
            w.video_id.in_(campaign_videos(campaign_name)),
            ~done,
        )
        .order_by(w.id, k.id)
    )


def effective_model(name: str) -> str:
    """The model rows are recorded under: `none` when sentence-transformers is not installed."""
    return name if embeddings.available() else embeddings.NONE


def compare_campaign(url: str, campaign_name: str, embedding_model: str) -> int:
    """Compare every pair of the campaign not compared yet; returns the rows written. TikTok's
    transcripts are copied from `voice_to_text` first (a no-op once the transcribe stage ran)."""
    from gettok.tasks.transcribe.store import record_tiktok_transcripts

    record_tiktok_transcripts(url, campaign_name)
    model = effective_model(embedding_model)
    written, after, conflicted = 0, None, False
    while True:
        # Keyset on the pair's transcript ids: each page starts where the last one ended, so
        # the pairs compared earlier are not scanned again for every page (quadratic otherwise).
        pending = _pending_pairs(campaign_name, model)
        if after is not None:
            w_id, k_id = pending.selected_columns[1], pending.selected_columns[4]
            # The plain bound lets the index on transcripts.id start the scan at the page.
            pending = pending.where(w_id >= after[0], tuple_(w_id, k_id) > tuple_(*after))
        with db.session_scope(url) as session:
            rows = session.execute(pending.limit(BATCH)).all()
        if not rows:
            return written
        texts = [(r[2], r[5]) for r in rows]
        cosines = embeddings.cosines(model, texts) if model != embeddings.NONE else []
        added = _record(url, rows, cosines, model)
        written += added
        if added or conflicted:
            after, conflicted = (rows[-1][1], rows[-1][4]), False
        else:  # another run stored some of this page first: read the page once more without them
            conflicted = True


def _record(url: str, rows, cosines: list[float], model: str) -> int:
    settings = {"embedding_model": model, "pooling": "normalised mean, cosine",
                "spelling_ratio": compare.SPELLING_RATIO, "words": "whitespace-split"}  # fmt: skip
    try:
        with db.session_scope(url) as session:
            for i, (video_id, w_id, w_text, w_sha, k_id, k_text, k_sha) in enumerate(rows):
                session.add(
                    TranscriptComparison(
                        video_id=video_id,
                        whisper_transcript_id=w_id,
                        tiktok_transcript_id=k_id,
                        whisper_sha256=w_sha,
                        tiktok_sha256=k_sha,
                        embedding_model=model,
                        cosine=cosines[i] if cosines else None,
                        jaccard=compare.jaccard(w_text, k_text),
                        whisper_words=len(compare.words(w_text)),
                        tiktok_words=len(compare.words(k_text)),
                        **compare.differences(w_text, k_text).model_dump(),
                        settings=settings,
                        created_at=utcnow(),
                    )
                )
    except IntegrityError:
        return 0
    return len(rows)


def _current_pairs(query, campaign_name: str, model: str):
    """`query` over the stored rows of the campaign's current pairs (this embedding model, the
    current Whisper transcript, both texts as they are now)."""
    c, w, k = TranscriptComparison, aliased(Transcript), aliased(Transcript)
    return (
        query.join(w, and_(w.id == c.whisper_transcript_id, w.text_sha256 == c.whisper_sha256))
        .join(k, and_(k.id == c.tiktok_transcript_id, k.text_sha256 == c.tiktok_sha256))
        .where(
            c.embedding_model == model,
            w.is_current.is_(True),
            c.video_id.in_(campaign_videos(campaign_name)),
        )
    )


def campaign_comparison(
    url: str, campaign_name: str, embedding_model: str
) -> compare.TranscriptComparison:
    """The study's figures over the campaign's current pairs, from the stored rows' sums."""
    model = effective_model(embedding_model)
    c = TranscriptComparison
    x, y = cast(c.whisper_words, Float), cast(c.tiktok_words, Float)
    sums = [
        func.count(),
        func.sum(x),
        func.sum(y),
        func.sum(x * x),
        func.sum(y * y),
        func.sum(x * y),
        func.sum(c.jaccard),
        func.count(c.cosine),
        func.sum(c.cosine),
        *(func.sum(getattr(c, name)) for name in DIFFERENCES),
    ]
    query = _current_pairs(select(*sums).select_from(c), campaign_name, model)
    with db.session_scope(url) as session:
        row = [v or 0 for v in session.execute(query).one()]
    totals = compare.Totals(
        n=row[0], sum_x=row[1], sum_y=row[2], sum_xx=row[3], sum_yy=row[4], sum_xy=row[5],
        sum_jaccard=row[6], n_cosine=row[7], sum_cosine=row[8],
    )  # fmt: skip
    differences = compare.PairDifferences(**dict(zip(DIFFERENCES, row[9:], strict=True)))
    return compare.from_totals(totals, differences, None if model == embeddings.NONE else model)


def word_count_points(
    url: str, campaign_name: str, embedding_model: str
) -> list[tuple[int, int, int]]:
    """(Whisper words, TikTok words, pairs): the word-count figure's points, one per distinct
    pair of counts, from the same stored rows as `campaign_comparison` (its n is their sum)."""
    model = effective_model(embedding_model)
    c = TranscriptComparison
    counts = (c.whisper_words, c.tiktok_words)
    query = _current_pairs(select(*counts, func.count()).select_from(c), campaign_name, model)
    with db.session_scope(url) as session:
        rows = session.execute(query.group_by(*counts).order_by(*counts))
        return [(int(x), int(y), int(n)) for x, y, n in rows]
