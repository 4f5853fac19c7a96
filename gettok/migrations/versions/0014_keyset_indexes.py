"""Indexes the stages' keyset pages need at scale (EXPLAIN ANALYZE on 100k and 500k videos).

A page asks "which of these videos have no transcript with these settings" (or no annotation of
this kind, model and prompt; no check for this watch target). The unique keys lead with
video_id, so Postgres answered by reading the whole index for rows of the settings, once per
page: 70-100 ms of a 136 ms page at 100k, and more with every video. Led by the settings, the
index finds the few rows at once. Download pages walk a campaign's members in the order they
were first seen, which had no index: each page sorted every member.

Revision ID: 0014_keyset
Revises: 0013_lang
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014_keyset"
down_revision: str | None = "0013_lang"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_transcripts_settings_video": (
        "transcripts",
        ["engine", "model", "settings_hash", "video_id"],
    ),
    "ix_annotations_plan_video": ("annotations", ["kind", "model", "prompt_hash", "video_id"]),
    "ix_campaign_videos_first_seen": (
        "campaign_videos",
        ["campaign_id", "first_seen_at", "video_id"],
    ),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, (table, _columns) in INDEXES.items():
        op.drop_index(name, table_name=table)
