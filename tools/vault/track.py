"""Which boxes to blur in each frame when faces are searched only every Nth frame.

The network costs far more than decoding and encoding a frame, so it sees every
``every``-th frame (and the last). The frames in between wait (at most ``every - 1`` of
them, in memory) until the next search. Then each face found at the search before is
followed forward through them, and each face found at this search backward, by template
matching on small grey copies (a face moves little from one frame to the next); a face
found at both searches also has its box moved linearly across the gap. A face seen at one
search and missed at the next is held one more gap, where it was, since a detector misses
a face now and then; it is also followed on from where it went over that gap, since a
walker soon leaves the box held for them. Better a blurred wall than a recognisable
passer-by.

Given a ``pool`` (one worker), the network runs there, one search ahead: while it looks
at a frame, the gap before the previous search is followed, blurred and encoded, and the
next frames decoded. Searches still run one at a time and in order, and each gap gets the
same boxes as without the pool.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from typing import Generic, TypeVar

import cv2
import numpy as np

Box = tuple[int, int, int, int]   # x, y, width, height in frame pixels
T = TypeVar("T")

MATCH_DISTANCE = 1.5   # centres closer than this many face widths are the same face
MATCH_SIZE_RATIO = 2.0
FOLLOW_SCALE = 0.5      # template matching on grey copies this much smaller
FOLLOW_REACH = 0.6      # a face moves at most this many of its widths between two frames
FOLLOW_MIN_SCORE = 0.3  # below this correlation the face is lost: it stops being followed
FOLLOW_MISSED_GAPS = 1  # a face a search missed is followed on over this many gaps after it


def _centre(b: Box) -> tuple[float, float]:
    return b[0] + b[2] / 2, b[1] + b[3] / 2


def match(before: list[Box], after: list[Box]) -> tuple[list[tuple[Box, Box]], list[Box], list[Box]]:
    """Greedy nearest-centre pairs; returns (pairs, unmatched before, unmatched after)."""
    candidates = []
    for i, a in enumerate(before):
        for j, b in enumerate(after):
            (ax, ay), (bx, by) = _centre(a), _centre(b)
            dist = ((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5
            size = max(a[2], b[2])
            ratio = max(a[2], b[2]) / max(1, min(a[2], b[2]))
            if dist <= MATCH_DISTANCE * size and ratio <= MATCH_SIZE_RATIO:
                candidates.append((dist, i, j))
    pairs, used_a, used_b = [], set(), set()
    for _, i, j in sorted(candidates):
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((before[i], after[j]))
    return (pairs, [a for i, a in enumerate(before) if i not in used_a],
            [b for j, b in enumerate(after) if j not in used_b])


def between(a: Box, b: Box, t: float) -> Box:
    return tuple(int(round(p + (q - p) * t)) for p, q in zip(a, b, strict=True))  # type: ignore[return-value]


def small_grey(bgr: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
    return cv2.resize(grey, None, fx=FOLLOW_SCALE, fy=FOLLOW_SCALE, interpolation=cv2.INTER_AREA)


def step(prev: np.ndarray, cur: np.ndarray, small: Box, width: int) -> tuple[Box, float] | None:
    """``small`` (a box on the small grey copy ``prev``) found again in ``cur``: its place
    there and the correlation, or None when it is too small or off the picture. ``width``:
    the thing's width in small pixels, which bounds how far it may have moved."""
    x, y, w, h = small
    H, W = prev.shape[:2]
    x, y = max(0, min(x, W - 2)), max(0, min(y, H - 2))
    tw, th = min(w, W - x), min(h, H - y)
    if tw < 4 or th < 4:
        return None
    reach = max(4, int(FOLLOW_REACH * width))
    sx0, sy0 = max(0, x - reach), max(0, y - reach)
    sx1, sy1 = min(W, x + tw + reach), min(H, y + th + reach)
    scores = cv2.matchTemplate(cur[sy0:sy1, sx0:sx1], prev[y:y + th, x:x + tw], cv2.TM_CCOEFF_NORMED)
    _, best, _, (bx, by) = cv2.minMaxLoc(scores)
    return (sx0 + bx, sy0 + by, w, h), float(best) if np.isfinite(best) else -1.0


def follow(greys: list[np.ndarray], box: Box) -> list[Box | None]:
    """``box`` (frame pixels) in ``greys[0]``, followed through ``greys[1:]`` (small grey
    copies): its place in each, or None once it is lost."""
    k = FOLLOW_SCALE
    small: Box = tuple(int(round(v * k)) for v in box)  # type: ignore[assignment]
    out: list[Box | None] = []
    for prev, cur in zip(greys, greys[1:], strict=False):
        found = step(prev, cur, small, small[2])
        if found is None or found[1] < FOLLOW_MIN_SCORE:
            out += [None] * (len(greys) - 1 - len(out))
            break
        small = found[0]
        out.append((int(small[0] / k), int(small[1] / k), box[2], box[3]))
    return out


class BlurPlan(Generic[T]):
    """Feed frames in order with ``push``; frames come back, with the boxes to blur, as
    soon as the search that closes their gap has run; ``finish`` returns the rest.

    ``detect(frame) -> list[Box]`` is the detector; ``every``: frames between searches;
    ``image(frame)``, when given, the frame's BGR picture, to follow faces between searches;
    ``pool``, when given, an executor with one worker where ``detect`` runs one search
    ahead of the frames handed back (at most two gaps of frames are then held).
    ``searching_s``: seconds spent in ``detect``; ``waiting_s``: seconds ``push`` and
    ``finish`` waited for it; ``tracking_s``: seconds spent following faces."""

    def __init__(self, detect: Callable[[T], list[Box]], every: int,
                 image: Callable[[T], np.ndarray] | None = None, pool: Executor | None = None):
        if every < 1:
            raise ValueError(f"search every {every} frames: at least 1")
        self.detect = detect
        self.image = image
        self.pool = pool
        self._last_grey: np.ndarray | None = None
        self.every = every
        self.count = 0
        self.searches = 0
        self.searching_s = self.waiting_s = self.tracking_s = 0.0
        self._waiting: list[T] = []
        self._pending: list[tuple[T, Future | list[Box], list[T]]] = []  # searches asked, not yet closed
        self._last: list[Box] | None = None     # boxes found at the last search
        self._missed: list[Box] = []           # seen the search before, not at the last: held
        self._missed_seen: list[tuple[Box, int]] = []  # where faces not seen again were followed to, and for how many gaps

    def push(self, frame: T) -> Iterator[tuple[T, list[Box]]]:
        index = self.count
        self.count += 1
        if index % self.every == 0:
            self._ask(frame)
            yield from self._close(ahead=1 if self.pool is not None else 0)
        else:
            self._waiting.append(frame)

    def finish(self) -> Iterator[tuple[T, list[Box]]]:
        if self._waiting:
            self._ask(self._waiting.pop())
        yield from self._close(ahead=0)

    def _timed_detect(self, frame: T) -> list[Box]:
        started = time.perf_counter()
        try:
            return [tuple(int(v) for v in b) for b in self.detect(frame)]  # type: ignore[misc]
        finally:
            self.searching_s += time.perf_counter() - started

    def _ask(self, frame: T) -> None:
        found = self.pool.submit(self._timed_detect, frame) if self.pool is not None else self._timed_detect(frame)
        self._pending.append((frame, found, self._waiting))
        self._waiting = []
        self.searches += 1

    def _close(self, ahead: int) -> Iterator[tuple[T, list[Box]]]:
        """The gaps of the searches asked, oldest first, leaving ``ahead`` of them running."""
        while len(self._pending) > ahead:
            frame, found, waiting = self._pending.pop(0)
            if isinstance(found, Future):
                started = time.perf_counter()
                found = found.result()
                self.waiting_s += time.perf_counter() - started
            yield from self._gap(frame, found, waiting)

    def _gap(self, frame: T, found: list[Box], waiting: list[T]) -> Iterator[tuple[T, list[Box]]]:
        started = time.perf_counter()
        grey = small_grey(self.image(frame)) if self.image is not None else None
        if self._last is None:
            self._last, self._last_grey = found, grey
            self.tracking_s += time.perf_counter() - started
            yield frame, list(found)
            return
        pairs, gone, new = match(self._last, found)
        gap = len(waiting) + 1
        ahead: list[list[Box | None]] = []    # followed forward, up to this search's frame
        behind: list[list[Box | None]] = []   # followed backward from it
        if grey is not None and self._last_grey is not None:
            greys = [small_grey(self.image(w)) for w in waiting]
            ahead = [follow([self._last_grey, *greys, grey], b) for b in [*self._last, *(b for b, _ in self._missed_seen)]]
            behind = [follow([grey, *greys[::-1]], b)[::-1] for b in found]
        boxes = []
        for k in range(1, gap):
            followed = [track[k - 1] for track in ahead + behind if track[k - 1] is not None]
            boxes.append([between(a, b, k / gap) for a, b in pairs] + followed + gone + new + self._missed)
        # Where the faces the network did not see again went by this search's frame: blurred
        # there too, and followed on over the next gap (a walker leaves the box held for it).
        gone_seen = [(track[-1], 1) for b, track in zip(self._last, ahead, strict=False)
                     if b in gone and track and track[-1] is not None]
        held_seen = [(track[-1], n + 1) for (_, n), track in zip(self._missed_seen, ahead[len(self._last):], strict=False)
                     if track and track[-1] is not None]
        self._missed = gone   # missed at this search: held over the next gap
        self._missed_seen = [(b, n) for b, n in gone_seen + held_seen if n <= FOLLOW_MISSED_GAPS]
        self._last, self._last_grey = found, grey
        self.tracking_s += time.perf_counter() - started
        yield from zip(waiting, boxes, strict=True)
        yield frame, list(found) + gone + [b for b, _ in gone_seen + held_seen]
