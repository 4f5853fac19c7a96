"""The sandbox's comments as the live API shapes them: consistent with each video's comment_count,
top-level comments under the video, replies under their comment, empty texts, deleted slots."""

from __future__ import annotations

from dataclasses import replace

from gettok.sandbox.comments import EMPTY_TEXT_SHARE, MAX_SERVED, comment_slots
from gettok.sandbox.config import SandboxConfig
from gettok.sandbox.corpus import Corpus
from tests.test_comments import DAY


def test_sandbox_comments_add_up_to_the_videos_comment_count():
    corpus = Corpus(SandboxConfig(videos_per_day=400))
    videos = [v for v in corpus.videos_on(DAY) if v.comment_count]
    for video in videos:
        slots = comment_slots(video, 2022)
        assert len(slots) == min(video.comment_count, MAX_SERVED)
        assert slots == comment_slots(video, 2022)  # deterministic
        tops = {c.id for c in slots if c.parent_comment_id == video.id}
        assert all(c.parent_comment_id in tops for c in slots if c.id not in tops)
        assert sum(c.reply_count for c in slots if c.id in tops) == len(slots) - len(tops) or (
            len(slots) == MAX_SERVED  # the last thread may be cut at the 1,000th slot
        )
    every = [c for v in videos for c in comment_slots(v, 2022)]
    empty = sum(1 for c in every if c.text == "") / len(every)
    assert abs(empty - EMPTY_TEXT_SHARE) < 0.05
    assert any(not c.visible for c in every)  # deleted comments make short pages
    huge = replace(videos[0], comment_count=5000)
    assert len(comment_slots(huge, 2022)) == MAX_SERVED
