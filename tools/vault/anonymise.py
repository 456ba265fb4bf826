"""Training extractions are anonymised: faces blurred, the burnt-in caption masked, sound
removed, the video re-encoded with no metadata of its own.

Faces are found by CenterFace (``tools/vault/faces.py``) every ``SEARCH_EVERY`` frames,
and boxes are moved or held in between (``tools/vault/track.py``). Each box is widened by
a generous margin before it is blurred. The network, by far the dearest part, runs in a
thread of its own one search ahead (OpenCV's DNN lets go of the GIL), while this thread
decodes, follows, blurs and encodes the frames around it (PyAV and x264 let go of it
too). Thumbnails for the report are taken here, from the anonymised frames at their real
times, since the frames are already decoded.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from recorder.errors import VaultError
from tools.vault.contact_sheet import ContactSheet
from tools.vault.faces import MODEL_NAME, PASSES, FaceDetector
from tools.vault.plates import PlateFollower, PlateMark
from tools.vault.track import BlurPlan

MARGIN = 0.4          # added on each side, as a fraction of the face's size
SEARCH_EVERY = 10     # frames (1/3 s at 30 fps); `pieton bench faces` measures recall and speed at this N
PROGRESS_EVERY_S = 5.0
THUMBNAILS = 8
THUMB_WIDTH = 160
CRF = 23
PRESET = "veryfast"   # x264: under a tenth of the time; faster presets make the file ~3x larger


def overlay_band(height: int) -> int:
    """Height of the top band that holds the burnt-in caption (see recorder/media/overlay.py:
    two lines of text whose size follows the frame height), with room to spare."""
    scale = max(0.35, height / 720 * 0.8)
    step = int(28 * scale + 8)
    return min(height, 2 * step + step // 2 + 4)


def _merge(rects: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Overlapping rectangles (x0, y0, x1, y1) joined, so each area is blurred once."""
    rects = list(rects)
    merged = True
    while merged:
        merged = False
        out: list[tuple[int, int, int, int]] = []
        for r in rects:
            for i, o in enumerate(out):
                if r[0] < o[2] and o[0] < r[2] and r[1] < o[3] and o[1] < r[3]:
                    out[i] = (min(r[0], o[0]), min(r[1], o[1]), max(r[2], o[2]), max(r[3], o[3]))
                    merged = True
                    break
            else:
                out.append(r)
        rects = out
    return rects


def blur_rects(shape, boxes) -> list[tuple[int, int, int, int]]:
    """The rectangles (x0, y0, x1, y1) blurred for face boxes (x, y, w, h): margin added,
    clipped to the frame, overlaps merged."""
    h, w = shape[:2]
    rects = []
    for x, y, bw, bh in boxes:
        mx, my = int(bw * MARGIN), int(bh * MARGIN)
        x0, y0 = max(0, x - mx), max(0, y - my)
        x1, y1 = min(w, x + bw + mx), min(h, y + bh + my)
        if x1 > x0 and y1 > y0:
            rects.append((x0, y0, x1, y1))
    return _merge(rects)


def blur_boxes(img: np.ndarray, boxes) -> list[tuple[int, int, int, int]]:
    rects = blur_rects(img.shape, boxes)
    for x0, y0, x1, y1 in rects:
        region = img[y0:y1, x0:x1]
        # A few blocks across, smoothed and stretched back: no feature survives.
        small = cv2.resize(region, (5, max(1, 5 * (y1 - y0) // (x1 - x0))), interpolation=cv2.INTER_AREA)
        region[:] = cv2.resize(cv2.GaussianBlur(small, (3, 3), 0), (x1 - x0, y1 - y0),
                               interpolation=cv2.INTER_LINEAR)
    return rects


@dataclass
class Anonymised:
    summary: dict                                   # for the report
    thumbnails: list[tuple[float, str]] = field(default_factory=list)  # (s from start, JPEG URI)
    contact_sheet: ContactSheet | None = None
    spent: dict[str, float] = field(default_factory=dict)  # seconds by stage, for `pieton bench faces`


class Stopwatch:
    """Seconds spent in each stage of the anonymisation, in this thread."""

    def __init__(self):
        self.spent: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.spent[stage] = self.spent.get(stage, 0.0) + time.perf_counter() - started


def _thumbnail(img: np.ndarray) -> str:
    h, w = img.shape[:2]
    small = cv2.resize(img, (THUMB_WIDTH, max(1, h * THUMB_WIDTH // w)), interpolation=cv2.INTER_AREA)
    ok, jpg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 70])
    return "data:image/jpeg;base64," + base64.b64encode(jpg.tobytes()).decode() if ok else "error: JPEG"


def _to_bgr(frame: av.VideoFrame) -> np.ndarray:
    """The decoded picture in BGR. OpenCV's converter is several times cheaper than
    swscale's for the usual 4:2:0 (the same BT.601 colours, to within 3 levels)."""
    if frame.width % 2 or frame.height % 2:
        return frame.to_ndarray(format="bgr24")
    return cv2.cvtColor(frame.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2BGR_I420)


def _from_bgr(img: np.ndarray) -> av.VideoFrame:
    """A BGR picture as the 4:2:0 frame x264 takes, converted by OpenCV (see ``_to_bgr``)."""
    h, w = img.shape[:2]
    if w % 2 or h % 2:
        return av.VideoFrame.from_ndarray(img, format="bgr24")
    return av.VideoFrame.from_ndarray(cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420), format="yuv420p")


def anonymise_segments(src: Path, dst: Path, *, detector: FaceDetector | None = None,
                       progress: Callable[[float, float], None] | None = None,
                       progress_every: float = PROGRESS_EVERY_S, plates: list[PlateMark] = ()) -> Anonymised:
    """Re-encode ``src`` (the remuxed MP4) to ``dst``: faces blurred, the plates the chief
    marked blurred and followed, caption masked, no sound, no metadata; the contact sheet
    taken on the way. ``progress(done_s, total_s)`` is called every ``progress_every``
    seconds of media, and at the end."""
    detector = detector or FaceDetector(passes=PASSES)
    frames = with_faces = 0
    thumbs: list[tuple[float, str]] = []
    clock = Stopwatch()
    # One worker: searches run in order, one at a time, each using OpenCV's own threads.
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out, \
            ThreadPoolExecutor(1, thread_name_prefix="pieton-faces") as pool:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        rate = vin.average_rate or vin.guessed_rate or 25
        total = float(vin.duration * vin.time_base) if vin.duration else float(inp.duration or 0) / av.time_base
        vout = out.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        vout.time_base = vin.time_base
        # A keyframe every 2 s keeps the training clip seekable in any player.
        vout.options = {"preset": PRESET, "crf": str(CRF), "g": str(int(round(float(rate) * 2)))}
        band = overlay_band(vout.height)
        follower = PlateFollower(list(plates))
        follower.check(vout.width, vout.height, total)
        sheet = ContactSheet(total)
        plan: BlurPlan = BlurPlan(lambda item: [f.box for f in detector.detect(item[1])], SEARCH_EVERY,
                                  image=lambda item: item[1], pool=pool)
        first_pts = None
        next_report = progress_every
        next_thumb = 0

        def emit(item, boxes):
            nonlocal with_faces, next_report, next_thumb
            t, img = item
            with clock("blur"):
                with_faces += bool(boxes)
                marked = follower.boxes(t, img)   # followed on the picture before any blur
                blur_boxes(img, boxes)
                blur_boxes(img, marked)
                img[:band] = 0  # the caption: time, camera, agent number, position
                if total and next_thumb < THUMBNAILS and t >= total * (next_thumb + 0.5) / THUMBNAILS - 1e-6:
                    thumbs.append((round(t, 2), _thumbnail(img)))
                    next_thumb += 1
                sheet.add(t, img)
            with clock("encode"):
                new = _from_bgr(img)
                new.pts, new.time_base = int(round(t / vin.time_base)), vin.time_base
                for p in vout.encode(new):
                    out.mux(p)
            if progress is not None and t >= next_report:
                progress(t, total)
                next_report += progress_every

        decoded = iter(inp.decode(vin))
        try:
            while True:
                with clock("decode"):
                    frame = next(decoded, None)
                    if frame is None:
                        break
                    if frame.pts is None:
                        continue
                    img = _to_bgr(frame)
                first_pts = frame.pts if first_pts is None else first_pts
                t = float((frame.pts - first_pts) * vin.time_base)  # seconds from the clip's start
                frames += 1
                for item, boxes in plan.push((t, img)):
                    emit(item, boxes)
            for item, boxes in plan.finish():
                emit(item, boxes)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # the search under way ends; none after it
            raise
        with clock("encode"):
            for p in vout.encode(None):
                out.mux(p)
    if frames == 0:
        raise VaultError("anonymisation: no video frame decoded")
    if progress is not None:
        progress(total, total)
    clock.spent["track"] = plan.tracking_s
    clock.spent["detect"] = plan.searching_s   # in its own thread, beside the others
    clock.spent["wait for detect"] = plan.waiting_s
    summary = {"faces": f"blurred: {MODEL_NAME}, {detector.describe()}, searched every "
                        f"{SEARCH_EVERY} frames with boxes moved or held in between, "
                        f"margin {int(MARGIN * 100)}% each side",
               "frames": frames, "frames_with_faces_blurred": with_faces, "searches": plan.searches,
               "plates": (f"{follower.marked} box(es) drawn by the chief, followed from there by template "
                          f"matching" if follower.marked else "none marked by the chief") + "; checked on the contact sheet",
               "overlay": f"masked: top {band} px of each frame",
               "audio": "removed (always, for training)",
               "video": f"re-encoded with libx264 (crf {CRF}), no metadata"}
    return Anonymised(summary, thumbs, sheet, {k: round(v, 2) for k, v in clock.spent.items()})
