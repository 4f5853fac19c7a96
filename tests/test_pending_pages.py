"""The pending-work queries read in keyset pages (`after` the last id, `limit` ids) give exactly
the list they give at once: no video skipped or repeated at page borders."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench.scale_data import add_downstream, add_videos, scale_campaign
from gettok import db
from gettok.keyset import KeysetPages, in_id_ranges
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


@pytest.mark.parametrize("span", [1, 3, 7, 10, 100])
@pytest.mark.parametrize("size", [1, 4, 7])
def test_id_ranges_give_every_pending_id_once_in_order(span, size):
    """`in_id_ranges` over candidates 1..60 where some stretches hold nothing pending (longer
    than a range) and others everything: the pages are the pending ids in order, each query
    looks at most `span` candidates, and a short page means nothing is left."""
    candidates = list(range(1, 61))
    pending = [i for i in candidates if i % 3 == 0 and not 20 < i <= 41 or 50 < i <= 55]
    looked: list[tuple[int | None, int]] = []

    def fetch(after: int | None, until: int, n: int) -> list[int]:
        looked.append((after, until))
        return [i for i in pending if (after is None or i > after) and i <= until][:n]

    def range_end(after: int | None, count: int) -> int | None:
        past = [i for i in candidates if after is None or i > after][:count]
        return past[-1] if past else None

    pages = list(KeysetPages(in_id_ranges(fetch, range_end, span=span), size))
    assert [i for page in pages for i in page] == pending
    assert all(len(page) == size for page in pages[:-1])
    for after, until in looked:
        assert len([i for i in candidates if (after is None or i > after) and i <= until]) <= span
