"""Is the watched person in a picture? dlib's face detector and its ResNet face embedding.

Each face becomes 128 numbers (dlib's ResNet, 99.38 % on LFW); two faces are the same person when
their embeddings lie within a distance threshold (0.6: dlib's calibration on LFW). A target is
enrolled from example photos (the journalist's "training"), and its threshold is tuned on those
examples and on look-alike negatives when there are some (`choose_threshold`). Weights come from
the `face-recognition-models` wheel: nothing is fetched at run time.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import dlib
import numpy as np

from gettok.tasks.watch.image_match import fit_within

DEFAULT_THRESHOLD = 0.6  # euclidean; dlib's threshold for "same person" on LFW
# A tuned threshold stays in this range: a far-off example must not make a blunt matcher (many
# different people lie at 0.6-0.8), nor one close look-alike a matcher that finds no one.
THRESHOLD_RANGE = (0.3, 0.7)
MODEL = "dlib-resnet-v1"
Detector = Literal["hog", "cnn"]


@dataclass(frozen=True)
class FaceSettings:
    """How faces are found: the detector, its upsampling, and the size pictures are shrunk to."""

    detector: Detector = "hog"  # "cnn" (dlib's MMOD) finds more faces, ~10x slower on CPU
    upsample: int = 0  # 1 finds faces down to ~40 px, at ~4x the cost
    max_side: int = 640  # pictures are shrunk first: the detector's cost grows with pixels

    def as_dict(self) -> dict:
        return {
            "method": "dlib face detector + resnet embedding (face-recognition-models)",
            "detector": self.detector,
            "upsample": self.upsample,
            "max_side": self.max_side,
            "dlib": dlib.__version__,
        }


# Example photos are few and may show a small face: look harder than in video frames.
ENROL_SETTINGS = FaceSettings(upsample=1, max_side=1024)


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # left, top, right, bottom in the shrunk picture
    landmarks: dlib.full_object_detection


class FaceModels:
    """The three dlib models, loaded once per process (about 100 MB)."""

    def __init__(self, detector: Detector):
        folder = Path(
            importlib.util.find_spec("face_recognition_models").submodule_search_locations[0]
        )
        models = folder / "models"
        # face_recognition_models' own __init__ imports pkg_resources: read its files directly.
        if detector == "cnn":
            cnn = dlib.cnn_face_detection_model_v1(str(models / "mmod_human_face_detector.dat"))
            self.detect = lambda rgb, up: [d.rect for d in cnn(rgb, up)]
        else:
            hog = dlib.get_frontal_face_detector()
            self.detect = lambda rgb, up: list(hog(rgb, up))
        self.landmarks = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self.encoder = dlib.face_recognition_model_v1(
            str(models / "dlib_face_recognition_resnet_model_v1.dat")
        )


@functools.cache
def face_models(detector: Detector = "hog") -> FaceModels:
    return FaceModels(detector)


def shrink(image: np.ndarray, max_side: int) -> np.ndarray:
    """`image` (BGR or grey) as RGB with its longest side at most `max_side`."""
    return np.ascontiguousarray(cv2.cvtColor(fit_within(image, max_side), cv2.COLOR_BGR2RGB))


def find_faces(rgb: np.ndarray, settings: FaceSettings) -> list[Face]:
    """The faces in an RGB picture (already shrunk), largest first."""
    models = face_models(settings.detector)
    rects = sorted(models.detect(rgb, settings.upsample), key=lambda r: -r.area())
    return [
        Face((r.left(), r.top(), r.right(), r.bottom()), models.landmarks(rgb, r)) for r in rects
    ]


def embed(rgb: np.ndarray, face: Face) -> np.ndarray:
    """The face's 128-d embedding (aligned on its 5 landmarks)."""
    encoder = face_models("hog").encoder  # the same whichever detector found the face
    return np.asarray(encoder.compute_face_descriptor(rgb, face.landmarks), dtype=np.float64)


def distances(embedding: np.ndarray, enrolled: np.ndarray) -> np.ndarray:
    return np.linalg.norm(enrolled - embedding, axis=1)


def choose_threshold(
    positives: list[float], negatives: list[float], default: float = DEFAULT_THRESHOLD
) -> float:
    """The distance threshold with the best F1 on these distances (within THRESHOLD_RANGE); of
    equals, the one nearest `default`. Without negatives nothing says how far to go: `default`."""
    pos = [d for d in positives if np.isfinite(d)]
    neg = [d for d in negatives if np.isfinite(d)]
    if not neg or not positives:
        return default
    values = sorted(set(pos + neg))
    candidates = [default] + [(a + b) / 2 for a, b in zip(values, values[1:], strict=False)]
    candidates += [values[0] - 1e-3, values[-1] + 1e-3]

    def f1(threshold: float) -> float:
        tp = sum(d <= threshold for d in pos)
        fp = sum(d <= threshold for d in neg)
        fn = len(positives) - tp
        return 2 * tp / (2 * tp + fp + fn) if tp else 0.0

    low, high = THRESHOLD_RANGE
    candidates = [min(high, max(low, t)) for t in candidates]
    best = max(f1(t) for t in candidates)
    return round(min((t for t in candidates if f1(t) == best), key=lambda t: abs(t - default)), 4)
