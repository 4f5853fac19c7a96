"""The pending-work queries read in keyset pages (`after` the last id, `limit` ids) give exactly
the list they give at once: no video skipped or repeated at page borders."""

from __future__ import annotations

from collections.abc import Callable

from bench.scale_data import add_downstream, add_videos, scale_campaign
from gettok import db
from gettok.settings import get_settings
from gettok.tasks.annotate import store as annotate_store
from gettok.tasks.annotate.annotator import plan_for
from gettok.tasks.frames import store as frames_store
from gettok.tasks.transcribe import store as transcribe_store
from gettok.tasks.transcribe.whisper import WhisperOptions

VIDEOS = 60


def _paged(fetch: Callable[[int | None, int], list[int]], size: int = 7) -> list[int]:
    ids: list[int] = []
    while page := fetch(ids[-1] if ids else None, size):
        assert len(page) <= size
        ids += page
    return ids


def test_pending_queries_in_pages_equal_the_whole_list(db_url):
    db.upgrade(db_url)
    campaign = scale_campaign()
    add_downstream(db_url, add_videos(db_url, campaign, VIDEOS), frames=False)
    options = WhisperOptions()

    whole = transcribe_store.pending_videos(db_url, options, "scale")
    assert len(whole) > 40
    assert (
        _paged(
            lambda after, n: transcribe_store.pending_videos(
                db_url, options, "scale", after=after, limit=n
            )
        )
        == whole
    )

    digest = "bench-digest"
    whole = [d.video_id for d in frames_store.pending_videos(db_url, digest, "scale", limit=None)]
    assert len(whole) > 40
    assert (
        _paged(
            lambda after, n: [
                d.video_id
                for d in frames_store.pending_videos(db_url, digest, "scale", limit=n, after=after)
            ]
        )
        == whole
    )

    plan = plan_for("summary", campaign, get_settings())
    with db.session_scope(db_url) as session:
        whole = annotate_store.pending_videos(session, "scale", plan)
        assert len(whole) > 40
        assert (
            _paged(
                lambda after, n: annotate_store.pending_videos(
                    session, "scale", plan, after=after, limit=n
                )
            )
            == whole
        )
