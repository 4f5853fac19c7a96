"""Is a reference image in a frame? ORB features, Lowe's ratio test and a RANSAC homography.

No model weights: a match is a set of feature correspondences that one plane-to-plane mapping
explains (the inliers), and whose mapping keeps the reference a sensible, non-degenerate shape
in the frame. Robust to scale, rotation, moderate perspective and video compression.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

RATIO = 0.75  # Lowe's ratio test
MIN_INLIERS = 15
MIN_INLIER_SHARE = 0.3  # of the matches that passed the ratio test
MAX_SIDE = 960  # larger images are shrunk first: ORB's cost grows with pixels
# The frame's region, mapped back onto the reference, must correlate with it: shapes alone match
# look-alikes (same layout, other colours or words).
MIN_CORRELATION = 0.8
CHECK_SIDE = 96


@dataclass(frozen=True)
class MatchSettings:
    ratio: float = RATIO
    min_inliers: int = MIN_INLIERS
    min_inlier_share: float = MIN_INLIER_SHARE
    features: int = 2000
    min_correlation: float = MIN_CORRELATION

    def as_dict(self) -> dict:
        return {
            "method": "orb+ratio+ransac-homography",
            "ratio": self.ratio,
            "min_inliers": self.min_inliers,
            "min_inlier_share": self.min_inlier_share,
            "features": self.features,
            "min_correlation": self.min_correlation,
            "opencv": cv2.__version__,
        }


@dataclass(frozen=True)
class ReferenceImage:
    name: str
    sha256: str
    size: tuple[int, int]  # width, height after shrinking
    keypoints: tuple
    descriptors: np.ndarray | None
    image: np.ndarray  # BGR, at `size`


@dataclass(frozen=True)
class ImageMatch:
    matched: bool
    good: int  # correspondences that passed the ratio test
    inliers: int  # of those, explained by the homography
    correlation: float | None = None  # of the mapped-back region with the reference
    corners: list[list[float]] | None = None  # the reference's outline in the frame


def fit_within(image: np.ndarray, max_side: int) -> np.ndarray:
    """`image` as 3-channel BGR with its longest side at most `max_side` (never enlarged): the
    face and picture matchers' cost grows with pixels."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (round(width * scale), round(height * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image


def _correlation(reference: np.ndarray, frame: np.ndarray, homography: np.ndarray) -> float:
    """Mean per-channel correlation of the reference with the frame region mapped back onto it."""
    h, w = reference.shape[:2]
    back = cv2.warpPerspective(frame, np.linalg.inv(homography), (w, h))
    size = (CHECK_SIDE, max(1, round(CHECK_SIDE * h / w)))
    a = cv2.resize(reference, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    b = cv2.resize(back, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    values = []
    for c in range(3):
        x, y = a[..., c].ravel(), b[..., c].ravel()
        if x.std() > 1 and y.std() > 1:
            values.append(float(np.corrcoef(x, y)[0, 1]))
    return sum(values) / len(values) if values else 0.0


def _features(gray: np.ndarray, settings: MatchSettings):
    orb = cv2.ORB_create(nfeatures=settings.features)
    return orb.detectAndCompute(gray, None)


def load_reference(path: Path | str, settings: MatchSettings = MatchSettings()) -> ReferenceImage:
    """Read a reference image and compute its features once for every frame it is matched to."""
    path = Path(path)
    data = path.read_bytes()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    image = fit_within(image, MAX_SIDE)
    keypoints, descriptors = _features(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), settings)
    return ReferenceImage(
        name=path.name,
        sha256=hashlib.sha256(data).hexdigest(),
        size=(image.shape[1], image.shape[0]),
        keypoints=tuple(keypoints),
        descriptors=descriptors,
        image=image,
    )


def _plausible(corners: np.ndarray, frame_shape: tuple[int, ...]) -> bool:
    """A convex outline of some size: a degenerate homography fits noise, not a picture."""
    quad = corners.reshape(4, 2).astype(np.float32)
    if not cv2.isContourConvex(quad):
        return False
    area = cv2.contourArea(quad)
    frame_area = frame_shape[0] * frame_shape[1]
    return 0.002 * frame_area < area < 4 * frame_area


def match_reference(
    reference: ReferenceImage, frame: np.ndarray, settings: MatchSettings = MatchSettings()
) -> ImageMatch:
    """Whether `reference` appears in `frame` (a BGR or grey image)."""
    if reference.descriptors is None or len(reference.keypoints) < 4:
        return ImageMatch(matched=False, good=0, inliers=0)
    frame = fit_within(frame, MAX_SIDE)
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    keypoints, descriptors = _features(gray, settings)
    if descriptors is None or len(keypoints) < 4:
        return ImageMatch(matched=False, good=0, inliers=0)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = matcher.knnMatch(reference.descriptors, descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < settings.ratio * p[1].distance]
    if len(good) < max(4, settings.min_inliers):
        return ImageMatch(matched=False, good=len(good), inliers=0)
    src = np.float32([reference.keypoints[m.queryIdx].pt for m in good]).reshape(-1, 1, 2)
    dst = np.float32([keypoints[m.trainIdx].pt for m in good]).reshape(-1, 1, 2)
    homography, mask = cv2.findHomography(src, dst, cv2.RANSAC, 5.0)
    if homography is None or mask is None:
        return ImageMatch(matched=False, good=len(good), inliers=0)
    inliers = int(mask.sum())
    w, h = reference.size
    outline = cv2.perspectiveTransform(
        np.float32([[0, 0], [w, 0], [w, h], [0, h]]).reshape(-1, 1, 2), homography
    )
    if not (
        inliers >= settings.min_inliers
        and inliers >= settings.min_inlier_share * len(good)
        and _plausible(outline, gray.shape)
    ):
        return ImageMatch(matched=False, good=len(good), inliers=inliers)
    correlation = _correlation(reference.image, frame, homography)
    return ImageMatch(
        matched=correlation >= settings.min_correlation,
        good=len(good),
        inliers=inliers,
        correlation=round(correlation, 4),
        corners=outline.reshape(4, 2).round(1).tolist(),
    )
