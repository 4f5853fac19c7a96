"""Which frames to keep, and how to get them out of a video without decoding all the rest.

The GET-Tok study kept 1 of every 300 frames by reading every frame with OpenCV. Here the frame
index comes from the demuxed packets (cheap: no decode), and each wanted frame is reached by
seeking to the keyframe before it and decoding forward from there, never converting a frame that is
not kept. Indices count frames in display order from 0, the same as counting OpenCV `read()` calls.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np


def frame_indices(frame_count: int, every: int, cap: int) -> list[int]:
    """0, every, 2*every, ... below `frame_count`; the first frame when it is shorter than `every`.

    When there are more than `cap`, keep `cap` of them spread evenly from first to last, so a long
    video is described from beginning to end rather than only its first minutes.
    """
    candidates = list(range(0, max(1, frame_count), max(1, every)))
    if len(candidates) <= cap:
        return candidates
    if cap == 1:
        return candidates[:1]
    step = (len(candidates) - 1) / (cap - 1)
    return [candidates[round(i * step)] for i in range(cap)]


def fit_within(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size with the longest side at most `max_side`, aspect kept, never enlarged."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _packet_index(path: Path) -> tuple[list[int], list[int]]:
    """Presentation times of every video frame (display order) and of the keyframes."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts, keys = [], []
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0:
                continue
            pts.append(packet.pts)
            if packet.is_keyframe:
                keys.append(packet.pts)
    return sorted(pts), sorted(keys)


def video_frame_count(path: Path | str) -> int:
    """The exact number of frames, from the packets (headers can be wrong or missing)."""
    return len(_packet_index(Path(path))[0])


def _to_bgr(frame: av.VideoFrame, max_side: int) -> np.ndarray:
    width, height = fit_within(frame.width, frame.height, max_side)
    if (width, height) == (frame.width, frame.height):
        image = frame.to_ndarray(format="bgr24")
    else:
        # Scale in YUV first (cheap), like INTER_AREA for downscaling; convert the small picture.
        image = frame.reformat(width=width, height=height, format="bgr24", interpolation="AREA")
        image = image.to_ndarray()
    rotation = getattr(frame, "rotation", 0) or 0
    if rotation % 360:  # phones record sideways and flag it; show the picture upright
        image = np.ascontiguousarray(np.rot90(image, k=(rotation // 90) % 4))
    return image


def sample_frames(
    path: Path | str, every: int, cap: int, max_side: int
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield (frame index, time in seconds, BGR image resized to fit `max_side`) for kept frames.

    A kept frame that does not decode (a damaged stretch) is left out and the next one is tried;
    the caller decides what too few frames means.
    """
    path = Path(path)
    pts, keys = _packet_index(path)
    if not pts:
        return
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        base = stream.start_time if stream.start_time is not None else pts[0]
        frames: Iterator[av.VideoFrame] | None = None
        last_pts: int | None = None
        for index in frame_indices(len(pts), every, cap):
            target = pts[index]
            at = bisect.bisect_right(keys, target) - 1
            key = keys[at] if at >= 0 else pts[0]
            # Seek only when the keyframe lies ahead of where the decoder already is.
            if frames is None or last_pts is None or key > last_pts:
                container.seek(key, stream=stream, backward=True)
                frames = container.decode(stream)
            found = None
            try:
                for frame in frames:
                    if frame.pts is None:
                        continue
                    last_pts = frame.pts
                    if frame.pts >= target:
                        found = frame if frame.pts == target else None
                        break
            except av.FFmpegError:
                frames = None  # start again from the next keyframe
            if found is not None:
                yield index, float((target - base) * stream.time_base), _to_bgr(found, max_side)


def naive_sample_frames(path: Path | str, every: int, cap: int) -> list[tuple[int, np.ndarray]]:
    """The original method, as the benchmark's baseline: `read()` every frame, keep 1 in `every`."""
    capture = cv2.VideoCapture(str(path))
    kept, index = [], 0
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            if index % every == 0:
                kept.append((index, image))
            index += 1
    finally:
        capture.release()
    wanted = set(frame_indices(index, every, cap))
    return [(i, image) for i, image in kept if i in wanted]


def read_image(path: Path | str, max_side: int) -> np.ndarray:
    """A still image (a slideshow photo), resized to fit `max_side`."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"not a readable image: {Path(path).name}")
    height, width = image.shape[:2]
    size = fit_within(width, height, max_side)
    if size != (width, height):
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image
