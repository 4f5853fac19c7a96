"""A watched person, enrolled from example photos: their face embeddings and a threshold.

Enrolling several photos of one person is the "training" a journalist does; photos of look-alikes
(negatives) set how strict the match must be. A folder or photo that cannot be used (missing,
unreadable, no detectable face) is an error at load naming the file, never a silent gap.
`evaluate_face_target` measures precision and recall on photos the target was not enrolled with.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from gettok.models.campaign import WatchTarget
from gettok.tasks.watch.faces import (
    DEFAULT_THRESHOLD,
    ENROL_SETTINGS,
    FaceSettings,
    choose_threshold,
    distances,
    embed,
    find_faces,
    shrink,
)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


class TargetError(ValueError):
    """A watch target that cannot be used; the message names the target and the file."""


@dataclass(frozen=True)
class FaceTarget:
    name: str
    embeddings: np.ndarray  # (examples, 128)
    threshold: float
    threshold_from: str  # how the threshold was set, for provenance
    examples: tuple[str, ...]  # file names
    negatives: int
    fingerprint: str  # examples, negatives and threshold: a new one re-checks every video

    def distance(self, embedding: np.ndarray) -> float:
        """Distance to the nearest enrolled example."""
        return float(distances(embedding, self.embeddings).min())

    def provenance(self) -> dict:
        return {
            "threshold": self.threshold,
            "threshold_from": self.threshold_from,
            "examples": list(self.examples),
            "negatives": self.negatives,
            "fingerprint": self.fingerprint,
        }


def image_files(paths: list[Path], target: str, what: str = "examples") -> list[Path]:
    """The picture files among `paths` (folders expanded, sorted); an error for none or missing."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise TargetError(f"target {target!r}: no pictures in {what} folder {path}")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise TargetError(f"target {target!r}: {what} {path} not found")
    return files


def largest_face_embedding(path: Path, settings: FaceSettings = ENROL_SETTINGS) -> np.ndarray:
    """The embedding of the largest face in a photo; TargetError when unreadable or faceless."""
    data = np.frombuffer(path.read_bytes(), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise TargetError(f"{path}: not a readable picture")
    rgb = shrink(image, settings.max_side)
    # Most photos show a face big enough at once; look harder (upsampled) only when not.
    faces = find_faces(rgb, FaceSettings(upsample=0)) or find_faces(rgb, settings)
    if not faces:
        raise TargetError(f"{path}: no detectable face")
    return embed(rgb, faces[0])


def _embeddings(files: list[Path], target: str) -> np.ndarray:
    try:
        return np.stack([largest_face_embedding(f) for f in files])
    except TargetError as exc:
        raise TargetError(f"target {target!r}: {exc}") from None


def enrol_face_target(
    name: str, examples: list[Path], negatives: list[Path] = (), threshold: float | None = None
) -> FaceTarget:
    """Embed the examples' faces; the threshold as set, else tuned on the examples' distances
    to each other (leave one out) against the negatives' distances to the examples."""
    files = image_files(list(examples), name)
    negative_files = image_files(list(negatives), name, "negatives") if negatives else []
    enrolled = _embeddings(files, name)
    if threshold is not None:
        source = "set in the campaign"
    elif negative_files and len(files) >= 2:
        others = _embeddings(negative_files, name)
        loo = [
            float(distances(e, np.delete(enrolled, i, axis=0)).min())
            for i, e in enumerate(enrolled)
        ]
        neg = [float(distances(e, enrolled).min()) for e in others]
        threshold = choose_threshold(loo, neg)
        source = f"tuned on {len(files)} examples and {len(negative_files)} negatives"
    else:
        threshold = DEFAULT_THRESHOLD
        source = "default (dlib's LFW calibration); add negatives to tune it"
    digest = hashlib.sha256()
    for f in (*files, *negative_files):
        digest.update(hashlib.sha256(f.read_bytes()).digest())
    digest.update(f"{threshold:.4f}".encode())
    return FaceTarget(
        name=name,
        embeddings=enrolled,
        threshold=float(threshold),
        threshold_from=source,
        examples=tuple(f.name for f in files),
        negatives=len(negative_files),
        fingerprint=digest.hexdigest()[:16],
    )


_enrolled: dict[tuple, FaceTarget] = {}


def load_face_target(target: WatchTarget) -> FaceTarget:
    """`enrol_face_target` for a campaign's target, once per process while its files are unchanged
    (the command checks the targets before the flow runs them)."""
    files = image_files(target.examples, target.name)
    if target.negatives:
        files += image_files(target.negatives, target.name, "negatives")
    stats = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    key = (target.name, target.threshold, len(target.examples), stats)
    if key not in _enrolled:
        _enrolled[key] = enrol_face_target(
            target.name, target.examples, target.negatives, target.threshold
        )
    return _enrolled[key]


def nearest_distance(path: Path, target: FaceTarget) -> float:
    """The distance of the photo's closest face to the target; infinity when it shows none."""
    image = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise TargetError(f"{path}: not a readable picture")
    rgb = shrink(image, ENROL_SETTINGS.max_side)
    faces = find_faces(rgb, FaceSettings(upsample=0)) or find_faces(rgb, ENROL_SETTINGS)
    found = [target.distance(embed(rgb, f)) for f in faces]
    return min(found, default=math.inf)


def evaluate_face_target(target: FaceTarget, positives: list[Path], negatives: list[Path]) -> dict:
    """Precision, recall and F1 at the target's threshold on held-out photos, and the threshold
    these photos would choose. A photo with no detectable face counts as "not matched"."""
    pos_files = image_files(positives, target.name, "positives")
    neg_files = image_files(negatives, target.name, "negatives")
    pos = [nearest_distance(f, target) for f in pos_files]
    neg = [nearest_distance(f, target) for f in neg_files]
    tp = sum(d <= target.threshold for d in pos)
    fp = sum(d <= target.threshold for d in neg)
    fn = len(pos) - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / len(pos) if pos else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    def shown(d: float) -> float | None:
        return round(d, 4) if math.isfinite(d) else None

    return {
        "target": target.name,
        "threshold": target.threshold,
        "threshold_from": target.threshold_from,
        "positives": len(pos),
        "negatives": len(neg),
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
        "no_face": sum(not math.isfinite(d) for d in pos + neg),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "chosen_threshold": choose_threshold(pos, neg, target.threshold),
        "distances": {
            "positives": {f.name: shown(d) for f, d in zip(pos_files, pos, strict=True)},
            "negatives": {f.name: shown(d) for f, d in zip(neg_files, neg, strict=True)},
        },
    }
