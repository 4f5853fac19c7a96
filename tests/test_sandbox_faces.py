"""The sandbox's faces: which videos show a configured photo, the same in every process."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from gettok.sandbox.config import FacePlacement, SandboxConfig
from gettok.sandbox.corpus import Corpus
from gettok.sandbox.faces import face_in, photo_variant


def test_faces_take_their_share_of_public_videos_and_no_others(tmp_path):
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    config = SandboxConfig(
        videos_per_day=200,
        faces=[FacePlacement(image=a, share=0.3), FacePlacement(image=b, share=0.2)],
    )
    videos = Corpus(config).videos_on(date(2022, 12, 7))
    shown = [face_in(v, config) for v in videos]
    public = [v.web_state == "public" for v in videos]
    assert all(s is None for s, p in zip(shown, public, strict=True) if not p)
    n_public = sum(public)
    assert 0.2 < shown.count(a) / n_public < 0.4 and 0.1 < shown.count(b) / n_public < 0.3
    again = Corpus(SandboxConfig(**config.model_dump()))  # another process, the same answer
    assert [face_in(v, config) for v in again.videos_on(date(2022, 12, 7))] == shown
    assert all(face_in(v, SandboxConfig()) is None for v in videos)


def test_face_shares_cannot_exceed_one():
    with pytest.raises(ValidationError, match="add up to more than 1"):
        SandboxConfig(faces=[FacePlacement(image=Path("a"), share=0.7)] * 2)


def test_photo_variants_differ_but_keep_the_size():
    one, two = photo_variant("eileen_collins", 1), photo_variant("eileen_collins", 2)
    assert one.shape == two.shape == (320, 320, 3)
    assert (one.astype(int) - two.astype(int)).__abs__().mean() > 10
    assert (photo_variant("eileen_collins", 1) == one).all()  # a seed is one picture
