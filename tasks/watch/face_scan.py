"""Look for a watched face in a video at about one frame a second, decoded on the fly.

The monitoring study looked at one frame per second. Frames are decoded straight from the
downloaded file (no stored frame files: the 1-in-300 description frames are far too sparse) and
shrunk before detection. A face that stays where it was one second before and looks the same
keeps its distance instead of being embedded again (the embedding costs most of the time); it is
re-embedded at least every `REEMBED_EVERY` frames. The scan stops at the first match.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from gettok.tasks.frames.sampling import read_image, sample_frames
from gettok.tasks.watch.face_target import FaceTarget
from gettok.tasks.watch.faces import Face, FaceSettings, embed, find_faces

SAME_PLACE_IOU = 0.5
SAME_LOOK = 0.9  # correlation of the two faces' small grey crops
REEMBED_EVERY = 5


@dataclass
class Sighting:
    frame_index: int
    timestamp_s: float | None
    distance: float
    box: tuple[int, int, int, int]
    image: np.ndarray  # the frame (BGR, as scanned)


@dataclass
class VideoScan:
    frames_checked: int = 0
    faces_seen: int = 0
    faces_embedded: int = 0
    best_distance: float | None = None
    sighting: Sighting | None = None
    seconds: list[float] = field(default_factory=list)  # times of the frames looked at


@dataclass
class _Seen:
    box: tuple[int, int, int, int]
    crop: np.ndarray
    distance: float
    age: int  # frames since it was embedded


def watch_frames(
    path: Path, per_second: float, max_side: int
) -> Iterator[tuple[int, float, np.ndarray]]:
    """(frame index, seconds, BGR frame) at about `per_second` frames a second."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 30)
    every = max(1, round(rate / per_second))
    yield from sample_frames(path, every, 10**7, max_side)


def _iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return w * h / (area - w * h)


def _crop(gray: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    left, top = max(0, box[0]), max(0, box[1])
    patch = gray[top : max(top + 1, box[3]), left : max(left + 1, box[2])]
    small = cv2.resize(patch, (24, 24), interpolation=cv2.INTER_AREA).astype(np.float32)
    return (small - small.mean()) / (small.std() + 1e-6)


def _remembered(seen: list[_Seen], box: tuple, crop: np.ndarray) -> _Seen | None:
    for s in seen:
        if (
            s.age < REEMBED_EVERY
            and _iou(s.box, box) >= SAME_PLACE_IOU
            and float((s.crop * crop).mean()) >= SAME_LOOK
        ):
            return s
    return None


def _frame_faces(
    image: np.ndarray,
    target: FaceTarget,
    settings: FaceSettings,
    seen: list[_Seen],
    scan: VideoScan,
) -> tuple[list[_Seen], tuple[float, Face] | None]:
    """Distances of the frame's faces (remembered or embedded); the first that matches."""
    rgb = np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    now: list[_Seen] = []
    for face in find_faces(rgb, settings):
        scan.faces_seen += 1
        crop = _crop(gray, face.box)
        known = _remembered(seen, face.box, crop)
        if known is not None:
            now.append(_Seen(face.box, crop, known.distance, known.age + 1))
            continue
        scan.faces_embedded += 1
        distance = target.distance(embed(rgb, face))
        now.append(_Seen(face.box, crop, distance, 0))
        if scan.best_distance is None or distance < scan.best_distance:
            scan.best_distance = round(distance, 4)
        if distance <= target.threshold:
            return now, (distance, face)
    return now, None


def scan_frames(
    frames: Iterator[tuple[int, float | None, np.ndarray]],
    target: FaceTarget,
    settings: FaceSettings,
) -> VideoScan:
    """Look at each frame in turn until the target's face is found."""
    scan, seen = VideoScan(), []
    for index, seconds, image in frames:
        scan.frames_checked += 1
        if seconds is not None:
            scan.seconds.append(seconds)
        seen, hit = _frame_faces(image, target, settings, seen, scan)
        if hit is not None:
            distance, face = hit
            scan.sighting = Sighting(index, seconds, round(distance, 4), face.box, image)
            break
    return scan


def scan_video(
    path: Path, target: FaceTarget, settings: FaceSettings, per_second: float = 1.0
) -> VideoScan:
    return scan_frames(watch_frames(path, per_second, settings.max_side), target, settings)


def scan_pictures(paths: list[Path], target: FaceTarget, settings: FaceSettings) -> VideoScan:
    """A photo post: each of its pictures is a frame (no time in the video)."""
    frames = ((n, None, read_image(p, settings.max_side)) for n, p in enumerate(paths))
    return scan_frames(frames, target, settings)
