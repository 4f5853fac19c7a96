"""The Research API's own field names: `favorites_count` (was `favourites_count`), and columns for
`sticker_info_list`, `effect_info_list` and `video_tag`. The rename keeps the data.

Plain ALTER TABLE statements (SQLite >= 3.35 has RENAME/ADD/DROP COLUMN): a batch migration
would rebuild `videos` on SQLite, and dropping the old table cascades deletes into every table
that references it (snapshots, downloads, transcripts...).

Revision ID: 0011
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
NEW_JSON_COLUMNS = ("sticker_info_list", "effect_info_list", "video_tag")
RENAMED = ("videos", "engagement_snapshots")


def upgrade() -> None:
    for table in RENAMED:
        op.execute(f"ALTER TABLE {table} RENAME COLUMN favourites_count TO favorites_count")
    for name in NEW_JSON_COLUMNS:
        op.add_column("videos", sa.Column(name, JSON, nullable=True))


def downgrade() -> None:
    for name in NEW_JSON_COLUMNS:
        op.execute(f"ALTER TABLE videos DROP COLUMN {name}")
    for table in RENAMED:
        op.execute(f"ALTER TABLE {table} RENAME COLUMN favorites_count TO favourites_count")
