"""Faces for the watchlist: shipped portraits, "other photos" of them, and which videos show one.

The portraits (`portraits/`, public domain or CC0, see LICENCES.md there) are one photo per
person. `photo_variant` makes another picture of the same person from it: re-framed (crop,
scale, rotation), lit differently, maybe mirrored, pasted on a new background and re-compressed.
The sandbox shows a configured face photo in a share of its videos (`face_in`), from
`FACE_FROM_S` seconds on, so the chain collect → download → watch → alert is tested over HTTP.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from gettok.sandbox.config import SandboxConfig
    from gettok.sandbox.corpus import CorpusVideo

PORTRAITS = Path(__file__).parent / "portraits"
# Where dlib's detector finds each portrait's face: centre x, centre y, width (pixels).
FACE_BOXES = {
    "eileen_collins": (223, 127, 88),
    "grace_hopper": (269, 245, 216),
}
FACE_FROM_S = 1.0  # a sandbox video that shows a face shows it from this second to the end


def portrait(name: str) -> np.ndarray:
    """A shipped portrait as a BGR array (`eileen_collins`, `grace_hopper`, `cameraman`)."""
    image = cv2.imread(str(PORTRAITS / f"{name}.jpg"), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"no portrait {name!r} in {PORTRAITS}")
    return image


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A plain scene to put a photo on: a gradient with a few blurred shapes."""
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    img = (top * (1 - ramp) + bottom * ramp).astype(np.uint8).repeat(size, axis=1)
    for _ in range(6):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        centre = tuple(int(c) for c in rng.integers(0, size, 2))
        cv2.circle(img, centre, int(rng.integers(size // 20, size // 5)), colour, -1)
    return cv2.GaussianBlur(img, (0, 0), 3)


def photo_variant(name: str, seed: int, size: int = 320) -> np.ndarray:
    """Another picture of the portrait's person, different for every `seed` (BGR, size²)."""
    rng = np.random.default_rng(seed)
    photo = portrait(name)
    cx, cy, face_w = FACE_BOXES[name]
    # Crop around the face (head and shoulders or closer), clipped to the photo.
    half = int(face_w * rng.uniform(0.9, 1.5))
    x0, y0 = max(0, cx - half), max(0, cy - int(half * 0.9))
    crop = photo[y0 : cy + int(half * 1.2), x0 : cx + half]
    if rng.random() < 0.5:
        crop = cv2.flip(crop, 1)
    # Lighting: contrast and brightness.
    crop = cv2.convertScaleAbs(crop, alpha=rng.uniform(0.75, 1.25), beta=rng.uniform(-30, 30))
    # Scale the crop to cover 60-90 % of the picture, rotate a little, place it off-centre.
    scale = size * rng.uniform(0.6, 0.9) / max(crop.shape[:2])
    angle = rng.uniform(-10, 10)
    h, w = crop.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[:, 2] += np.array([size / 2, size / 2]) + rng.uniform(-0.08, 0.08, 2) * size
    m[:, 2] -= np.array([w / 2, h / 2])
    warped = cv2.warpAffine(crop, m, (size, size), flags=cv2.INTER_AREA)
    mask = cv2.warpAffine(np.full((h, w), 255, np.uint8), m, (size, size)) > 127
    out = background(rng, size)
    out[mask] = warped[mask]
    quality = int(rng.integers(60, 92))
    return cv2.imdecode(cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], 1)


def write_variants(name: str, folder: Path | str, seeds: range | list[int]) -> list[Path]:
    """Write `photo_variant(name, seed)` as `<folder>/<name>-<seed>.jpg` for each seed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        path = folder / f"{name}-{seed}.jpg"
        cv2.imwrite(str(path), photo_variant(name, seed), [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths


def face_in(video: CorpusVideo, config: SandboxConfig) -> Path | None:
    """The face photo this video shows (from `FACE_FROM_S` s on), or None.

    Each video draws one number from (seed, id); the configured faces take consecutive slices of
    [0, 1) by their share, so a video shows at most one and the choice is the same everywhere.
    """
    if not config.faces or video.web_state != "public":
        return None
    digest = hashlib.sha256(f"gettok-face:{config.seed}:{video.id}".encode()).digest()
    roll, start = int.from_bytes(digest[:8], "big") / 2**64, 0.0
    for placement in config.faces:
        if start <= roll < start + placement.share:
            return placement.image
        start += placement.share
    return None
