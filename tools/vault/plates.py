"""Licence plates in a training clip: boxes the chief draws, followed across frames.

No detector of plates ships inside a package without torch or a download at run time
(checked: egoblur, fast-alpr, open-image-models, OpenCV's cascades of Russian plates), so
the chief marks each plate once, where it first shows: ``--plate T,X,Y,W,H`` (seconds
from the clip's start, the box in the frame's pixels), repeated, or a boxes file (a JSON
list of ``{"t": T, "box": [X, Y, W, H]}``). From that frame on the box is followed by
template matching on small grey copies (``tools/vault/track.py``); where the match is
lost it is held where it was last seen for ``HOLD_S``. The contact sheet the chief signs
off (``tools/vault/contact_sheet.py``) shows what was blurred: a plate missed gets one
more box and the extraction is run again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recorder.errors import VaultError
from recorder.inputs import InputError, expect_object, load_json_file
from tools.vault.track import FOLLOW_MIN_SCORE, FOLLOW_SCALE, Box, small_grey, step

HOLD_S = 1.0        # a plate lost by the matcher stays blurred where it was this long
MAX_MARKS = 500
_NUMBER = r"\d+(?:\.\d+)?"
_MARK = re.compile(rf"\s*({_NUMBER})\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*")


@dataclass(frozen=True)
class PlateMark:
    t: float     # seconds from the clip's start
    box: Box     # x, y, width, height in frame pixels
    origin: str  # how the chief gave it, for error messages

    def check(self, width: int, height: int, duration: float | None) -> None:
        x, y, w, h = self.box
        if w < 4 or h < 4:
            raise VaultError(f"{self.origin}: box {w}x{h} px: at least 4x4 px")
        if x + w > width or y + h > height:
            raise VaultError(f"{self.origin}: box ({x},{y},{w},{h}) goes outside the {width}x{height} frame")
        if duration and self.t > duration:
            raise VaultError(f"{self.origin}: {self.t} s is after the clip's end ({duration:.1f} s)")


def parse_plate(text: str) -> PlateMark:
    """``--plate T,X,Y,W,H``."""
    m = _MARK.fullmatch(text or "")
    if m is None:
        raise VaultError(f"--plate {text!r}: expected T,X,Y,W,H (seconds from the clip's start, then the "
                         "box's left, top, width and height in pixels), e.g. --plate 3.5,640,400,120,40")
    t, *box = m.groups()
    return PlateMark(float(t), tuple(int(v) for v in box), f"--plate {text}")  # type: ignore[arg-type]


def load_plate_file(path: str | Path) -> list[PlateMark]:
    """A boxes file: ``[{"t": 3.5, "box": [640, 400, 120, 40]}, ...]``."""
    what = f"--plates-file {path}"
    try:
        data = load_json_file(path, "config", what=what)
    except InputError as exc:
        raise VaultError(str(exc)) from None
    if not isinstance(data, list) or len(data) > MAX_MARKS:
        raise VaultError(f"{what}: expected a JSON list of at most {MAX_MARKS} {{\"t\": T, \"box\": [X, Y, W, H]}}")
    marks = []
    for i, item in enumerate(data):
        where = f"{what}, item {i + 1}"
        try:
            item = expect_object(item, where)
        except InputError as exc:
            raise VaultError(str(exc)) from None
        t, box = item.get("t"), item.get("box")
        if (isinstance(t, bool) or not isinstance(t, int | float) or not 0 <= t < 7 * 86400
                or not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 100_000 for v in box)):
            raise VaultError(f"{where}: expected {{\"t\": seconds from the clip's start, "
                             "\"box\": [X, Y, W, H] in whole pixels}")
        marks.append(PlateMark(float(t), tuple(box), where))  # type: ignore[arg-type]
    return marks


class PlateFollower:
    """``boxes(t, bgr)`` for each frame in order: the plates to blur in it."""

    def __init__(self, marks: list[PlateMark]):
        if len(marks) > MAX_MARKS:
            raise VaultError(f"{len(marks)} plate boxes: at most {MAX_MARKS}")
        self.waiting = sorted(marks, key=lambda m: m.t)
        self.active: list[list] = []   # [small box, frame box size, last time matched]
        self.prev: np.ndarray | None = None
        self.marked = len(marks)

    def check(self, width: int, height: int, duration: float | None) -> None:
        for mark in self.waiting:
            mark.check(width, height, duration)

    def boxes(self, t: float, bgr: np.ndarray) -> list[Box]:
        grey = small_grey(bgr)
        k = FOLLOW_SCALE
        kept = []
        for small, size, seen in self.active:
            found = step(self.prev, grey, small, small[2]) if self.prev is not None else None
            if found is not None and found[1] >= FOLLOW_MIN_SCORE:
                kept.append([found[0], size, t])
            elif t - seen <= HOLD_S:
                kept.append([small, size, seen])   # lost: held where it was
        # A plate drawn at T starts on the first frame at or after T (frames fall between).
        while self.waiting and self.waiting[0].t <= t + 1e-3:
            x, y, w, h = self.waiting.pop(0).box
            kept.append([(int(x * k), int(y * k), max(1, int(w * k)), max(1, int(h * k))), (w, h), t])
        self.active, self.prev = kept, grey
        return [(int(s[0] / k), int(s[1] / k), size[0], size[1]) for s, size, _ in kept]
