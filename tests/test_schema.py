"""The schema migrates on both databases and stores recorded API pages exactly."""

import json

from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from gettok import db
from gettok.clients.research_api import parse_video_page
from gettok.models.api import MAX_BIGINT, ResearchVideo
from gettok.models.schema import (
    Base,
    Download,
    DownloadStatus,
    FrameExtraction,
    FrameStatus,
    Video,
    utcnow,
)
from tests.conftest import FIXTURES

PAGES = sorted((FIXTURES / "tiktok-research-api").glob("api_videos_response_page_*.json"))


def store(url: str, raw_videos: list[dict]) -> None:
    """Store raw records with the plain ORM (the collector's fast upsert is tested elsewhere)."""
    with db.session_scope(url) as session:
        for raw in raw_videos:
            record = ResearchVideo.model_validate(raw)
            session.merge(
                Video(**record.columns(), raw=raw, first_seen_at=utcnow(), last_seen_at=utcnow())
            )


def head_revision() -> str:

    return ScriptDirectory.from_config(db.alembic_config("sqlite://")).get_current_head()


def test_migration_creates_every_table(db_url):
    tables = set(inspect(db.get_engine(db_url)).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert db.current_revision(db_url) == head_revision()
    db.upgrade(db_url)  # idempotent
    assert db.current_revision(db_url) == head_revision()


def test_recorded_pages_round_trip_with_big_ids_intact(db_url):
    expected, rejected = {}, []
    for path in PAGES:
        page = parse_video_page(json.loads(path.read_bytes()))
        assert len(page.videos) + len(page.rejected) == 27
        store(db_url, page.raw)
        expected.update({raw["id"]: raw for raw in page.raw})
        rejected += list(zip(page.rejected, page.invalid, strict=True))
    # The recorded page 2 holds one id with 20 digits, beyond any 64-bit id: it is rejected
    # with its reason (the collector stores it in rejected_records), not silently dropped.
    assert [raw["id"] for raw, _ in rejected] == [73207681965695992750]
    assert "does not fit a signed 64-bit integer" in rejected[0][1]
    # The recorded page 2 repeats page 1's other 26 videos: duplicates across pages are real.
    assert len(expected) == 27
    # Ids in the fixtures are above 2^53: a float would have lost their last digits.
    assert all(i > 2**53 for i in expected)
    with db.session_scope(db_url) as session:
        rows = {v.id: v for v in session.scalars(select(Video))}
    assert rows.keys() == expected.keys()
    for video_id, raw in expected.items():
        row = rows[video_id]
        assert row.raw == raw
        assert row.music_id == raw.get("music_id")
        assert row.username == raw.get("username")
        assert row.hashtag_names == raw.get("hashtag_names", [])
        assert row.created_at.timestamp() == raw["create_time"]


def test_nul_bytes_are_stripped_from_columns_and_kept_in_the_raw_payload(db_url):
    raw = {
        "id": MAX_BIGINT,
        "username": "ju\x00an",
        "video_description": "golpe\x00 de estado",
        "hashtag_names": ["peru\x00"],
        "create_time": 1670457600,
        "music_id": 2**60 + 1,
        "brand_new_field": {"x": "y\x00"},
    }
    store(db_url, [raw])
    with db.session_scope(db_url) as session:
        row = session.get(Video, MAX_BIGINT)
        assert row.username == "juan"
        assert row.video_description == "golpe de estado"
        assert row.hashtag_names == ["peru"]
        assert row.music_id == 2**60 + 1
        assert row.extra_fields == {"brand_new_field": {"x": "y"}}
        assert row.raw == raw  # exactly as sent, NUL included (JSON keeps it escaped)


def test_emoji_and_right_to_left_text_round_trip(db_url):
    raw = {
        "id": 7320768196569599275,
        "video_description": "مرحبا 🇵🇪 #perú ‏שלום",
        "username": "ñandú_🦙",
    }
    store(db_url, [raw])
    with db.session_scope(db_url) as session:
        row = session.get(Video, raw["id"])
        assert (row.video_description, row.username) == (raw["video_description"], raw["username"])


def test_status_vocabulary_is_enforced_in_python(db_url):
    store(db_url, [{"id": 1}])
    with db.session_scope(db_url) as session:
        session.add(Download(video_id=1, status=DownloadStatus.private, attempts=1))
    with db.session_scope(db_url) as session:
        assert session.get(Download, 1).status is DownloadStatus.private
    assert json.dumps([s.value for s in DownloadStatus]) == json.dumps(
        ["ok", "private", "removed", "slideshow", "invalid", "transient", "blocked"]
        + ["age_restricted", "unreachable", "unavailable"]
    )


def test_migration_is_in_step_with_the_models(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with db.get_engine(db_url).connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_each_database_has_its_own_identity(tmp_path):
    first, second = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    db.upgrade(first)
    db.upgrade(second)
    assert db.database_identity(first) != db.database_identity(second)
    assert db.database_identity(first) == db.database_identity(first)  # stable across reads


def test_0002_moves_frame_failures_out_of_the_downloads(db_url):
    from alembic import command

    command.downgrade(db.alembic_config(db_url), "0001")
    # Rows as the 0001 schema holds them (the models describe the head, not 0001).
    now = "2024-01-05 00:00:00"
    with db.get_engine(db_url).begin() as conn:
        for vid, status, error in ((1, "invalid", "frames: x: y"), (2, "transient", "timeout")):
            conn.execute(
                text(
                    "INSERT INTO videos (id, raw, first_seen_at, last_seen_at) "
                    "VALUES (:vid, '{}', :now, :now)"
                ),
                {"vid": vid, "now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO downloads (video_id, status, is_slideshow, attempts, last_error,"
                    " updated_at) VALUES (:vid, :status, false, 1, :error, :now)"
                ),
                {"vid": vid, "status": status, "error": error, "now": now},
            )
    db.upgrade(db_url, "0002")
    assert db.current_revision(db_url) == "0002"
    db.upgrade(db_url)  # to the head, which the models describe
    with db.session_scope(db_url) as session:
        moved = session.scalars(select(FrameExtraction)).all()
        errors = {d.video_id: d.last_error for d in session.scalars(select(Download))}
    assert [(m.video_id, m.status, m.detail, m.settings_hash) for m in moved] == [
        (1, FrameStatus.failed, "x: y", "unknown")  # unknown settings: tried once more
    ]
    assert errors == {1: None, 2: "timeout"}
