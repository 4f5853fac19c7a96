"""The pictures of sandbox clips and slideshows: a moving scene (gradient, bouncing shapes) with
the frame number printed on it, so a test can read which frame it got, and a caption."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import cv2
import numpy as np


def default_caption(seed: int, text: str | None) -> str:
    """On-screen text for even seeds ("" for odd ones): the first words of the speech, or a tag."""
    if seed % 2:
        return ""
    words = (text or "").split()[:4]
    return " ".join(words) if words else f"#sandbox {seed}"


def ascii_text(text: str) -> str:
    """OpenCV's fonts draw ASCII only: drop accents (é -> e) and anything else."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _wrap(text: str, width_chars: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width_chars:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])


def load_image(image: Path | str | np.ndarray) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image
    loaded = cv2.imread(str(image), cv2.IMREAD_COLOR)
    if loaded is None:
        raise ValueError(f"cannot read image {image}")
    return loaded


class Scene:
    """A moving picture: gradient background, bouncing shapes, a frame counter, a caption."""

    def __init__(
        self, width: int, height: int, seed: int, caption: str, overlay: np.ndarray | None
    ):
        rng = np.random.default_rng(seed)
        top, bottom = rng.integers(20, 200, size=3), rng.integers(20, 200, size=3)
        ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
        self.background = (top * (1 - ramp) + bottom * ramp).astype(np.uint8).repeat(width, axis=1)
        self.width, self.height = width, height
        self.shapes = [
            (
                rng.uniform(0, 1, 2),
                rng.uniform(-0.4, 0.4, 2),
                tuple(int(c) for c in rng.integers(0, 256, 3)),
            )
            for _ in range(3)
        ]
        self.caption_lines = _wrap(ascii_text(caption), max(8, width // 18))
        self.overlay = None
        if overlay is not None:
            scale = min(0.8 * width / overlay.shape[1], 0.6 * height / overlay.shape[0])
            size = (max(1, int(overlay.shape[1] * scale)), max(1, int(overlay.shape[0] * scale)))
            self.overlay = cv2.resize(overlay, size, interpolation=cv2.INTER_AREA)

    def draw(self, index: int, t: float, show_overlay: bool) -> np.ndarray:
        img = self.background.copy()
        w, h = self.width, self.height
        r = max(6, min(w, h) // 10)
        for n, (start, speed, colour) in enumerate(self.shapes):
            x, y = np.abs(((start + speed * t) % 2.0) - 1.0)  # bounce between the edges
            centre = (int(r + x * (w - 2 * r)), int(r + y * (h - 2 * r)))
            if n % 2:
                cv2.rectangle(
                    img, (centre[0] - r, centre[1] - r), (centre[0] + r, centre[1] + r), colour, -1
                )
            else:
                cv2.circle(img, centre, r, colour, -1)
        if show_overlay and self.overlay is not None:
            oh, ow = self.overlay.shape[:2]
            y0, x0 = (h - oh) // 2, (w - ow) // 2
            img[y0 : y0 + oh, x0 : x0 + ow] = self.overlay
        scale = w / 360
        origin, thickness = (int(10 * scale), int(40 * scale)), max(1, int(2 * scale))
        cv2.putText(img, f"frame {index}", origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                    thickness, cv2.LINE_AA)  # fmt: skip
        for n, line in enumerate(self.caption_lines):
            y = int(h - (len(self.caption_lines) - n) * 34 * scale - 20 * scale)
            (tw, th), _ = cv2.getTextSize(line, cv2.FONT_HERSHEY_DUPLEX, 0.8 * scale, 2)
            x = max(0, (w - tw) // 2)
            cv2.rectangle(img, (x - 6, y - th - 8), (x + tw + 6, y + 8), (0, 0, 0), -1)
            cv2.putText(
                img,
                line,
                (x, y),
                cv2.FONT_HERSHEY_DUPLEX,
                0.8 * scale,
                (255, 255, 255),
                2,
                cv2.LINE_AA,
            )
        return img


def write_jpeg(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90]):
        raise OSError(f"cannot write {path}")
