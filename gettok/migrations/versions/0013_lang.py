"""Language as a hint, text language identification, transcript comparisons, provenance chain.

transcripts: Whisper's detected language and what decided the language, the text's SHA-256 and
`is_current` (the transcript of its engine that annotations read; older ones are history).
text_languages: a text identifier's language for captions and transcripts.
transcript_comparisons: Whisper against TikTok per transcript pair (embedding cosine, Jaccard).
annotations: the transcript (id, hash) and first frame each was made from, and `inputs_key` in
the unique key, so an annotation redone from new inputs is a new row beside the stale one.

Backfill: each video's newest ok transcript per engine is current; text hashes are computed;
existing annotations take their inputs from their recorded provenance (settings.inputs).

Revision ID: 0013_lang
Revises: 0009
Create Date: 2026-11-30
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013_lang"
down_revision: str | None = "0013_compliance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
CHUNK = 5000


def upgrade() -> None:
    with op.batch_alter_table("transcripts") as batch:
        batch.add_column(sa.Column("detected_language", sa.String(8), nullable=True))
        batch.add_column(sa.Column("language_source", sa.String(16), nullable=True))
        batch.add_column(sa.Column("text_sha256", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("is_current", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("annotations") as batch:
        batch.add_column(sa.Column("transcript_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("transcript_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("first_frame_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("inputs_key", sa.String(64), server_default="", nullable=False))
        batch.drop_constraint("uq_annotations_video_id", type_="unique")
        batch.create_unique_constraint(
            "uq_annotations_video_id", ["video_id", "kind", "model", "prompt_hash", "inputs_key"]
        )
    _create_text_languages()
    _create_transcript_comparisons()
    _backfill_transcripts()
    _backfill_annotations()


def _create_text_languages() -> None:
    op.create_table(
        "text_languages",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("video_id", BIG_ID, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("text_sha256", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["videos.id"],
            name="fk_text_languages_video_id_videos",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_text_languages"),
        sa.UniqueConstraint(
            "video_id", "source", "text_sha256", "model", name="uq_text_languages_video_id"
        ),
    )
    op.create_index("ix_text_languages_video_id", "text_languages", ["video_id"])


def _create_transcript_comparisons() -> None:
    op.create_table(
        "transcript_comparisons",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("video_id", BIG_ID, nullable=False),
        sa.Column("whisper_transcript_id", BIG_ID, nullable=False),
        sa.Column("tiktok_transcript_id", BIG_ID, nullable=False),
        sa.Column("whisper_sha256", sa.String(64), nullable=False),
        sa.Column("tiktok_sha256", sa.String(64), nullable=False),
        sa.Column("embedding_model", sa.String(256), nullable=False),
        sa.Column("cosine", sa.Float(), nullable=True),
        sa.Column("jaccard", sa.Float(), nullable=False),
        sa.Column("whisper_words", sa.Integer(), nullable=False),
        sa.Column("tiktok_words", sa.Integer(), nullable=False),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in (
                "capitalisation",
                "punctuation",
                "spelling",
                "substituted",
                "only_in_whisper",
                "only_in_tiktok",
            )
        ),
        sa.Column("settings", JSON_TYPE, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *(
            sa.ForeignKeyConstraint(
                [column],
                ["transcripts.id"],
                name=f"fk_transcript_comparisons_{column}_transcripts",
                ondelete="CASCADE",
            )
            for column in ("whisper_transcript_id", "tiktok_transcript_id")
        ),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["videos.id"],
            name="fk_transcript_comparisons_video_id_videos",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_transcript_comparisons"),
        sa.UniqueConstraint(
            "whisper_transcript_id",
            "tiktok_transcript_id",
            "whisper_sha256",
            "tiktok_sha256",
            "embedding_model",
            name="uq_transcript_comparisons_whisper_transcript_id",
        ),
    )
    for column in ("video_id", "whisper_transcript_id", "tiktok_transcript_id"):
        op.create_index(f"ix_transcript_comparisons_{column}", "transcript_comparisons", [column])


def _sha256(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def _backfill_transcripts() -> None:
    conn = op.get_bind()
    t = sa.table(
        "transcripts",
        sa.column("id"),
        sa.column("video_id"),
        sa.column("engine"),
        sa.column("status"),
        sa.column("text"),
        sa.column("text_sha256"),
        sa.column("is_current"),
    )
    after = 0
    while True:
        rows = conn.execute(
            sa.select(t.c.id, t.c.text).where(t.c.id > after).order_by(t.c.id).limit(CHUNK)
        ).all()
        if not rows:
            break
        for row_id, text in rows:
            if text is not None:
                conn.execute(t.update().where(t.c.id == row_id).values(text_sha256=_sha256(text)))
        after = rows[-1][0]
    newest = (
        sa.select(sa.func.max(t.c.id))
        .where(t.c.status == "ok")
        .group_by(t.c.video_id, t.c.engine)
        .scalar_subquery()
    )
    conn.execute(t.update().where(t.c.id.in_(newest)).values(is_current=True))


def _backfill_annotations() -> None:
    conn = op.get_bind()
    a = sa.table(
        "annotations",
        sa.column("id"),
        sa.column("settings", sa.JSON()),
        sa.column("transcript_id"),
        sa.column("transcript_sha256"),
        sa.column("first_frame_id"),
    )
    t = sa.table("transcripts", sa.column("id"), sa.column("text_sha256"))
    after = 0
    while True:
        rows = conn.execute(
            sa.select(a.c.id, a.c.settings).where(a.c.id > after).order_by(a.c.id).limit(CHUNK)
        ).all()
        if not rows:
            break
        for row_id, settings in rows:
            inputs = (settings or {}).get("inputs") or {}
            transcript_id = inputs.get("transcript_id")
            frame_ids = inputs.get("frame_ids") or []
            if transcript_id is None and not frame_ids:
                continue
            sha = None
            if transcript_id is not None:
                sha = conn.scalar(sa.select(t.c.text_sha256).where(t.c.id == transcript_id))
            conn.execute(
                a.update()
                .where(a.c.id == row_id)
                .values(
                    transcript_id=transcript_id,
                    transcript_sha256=sha,
                    first_frame_id=min(frame_ids) if frame_ids else None,
                )
            )
        after = rows[-1][0]


def downgrade() -> None:
    op.drop_table("transcript_comparisons")
    op.drop_table("text_languages")
    with op.batch_alter_table("annotations") as batch:
        batch.drop_constraint("uq_annotations_video_id", type_="unique")
        batch.create_unique_constraint(
            "uq_annotations_video_id", ["video_id", "kind", "model", "prompt_hash"]
        )
        for column in ("inputs_key", "first_frame_id", "transcript_sha256", "transcript_id"):
            batch.drop_column(column)
    with op.batch_alter_table("transcripts") as batch:
        for column in ("is_current", "text_sha256", "language_source", "detected_language"):
            batch.drop_column(column)
