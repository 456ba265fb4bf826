"""Training extractions are anonymised: faces blurred, the burnt-in overlay masked, voices
muted (unless asked otherwise), the video re-encoded.

Faces are found with OpenCV's bundled Haar cascades (frontal, and profile both ways round)
on a reduced grey image. A detector misses faces now and then, so each box is widened by a
generous margin and kept for a few frames after it was last seen; better a blurred wall
than a recognisable passer-by.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np

from recorder.errors import VaultError

MARGIN = 0.4          # added on each side, as a fraction of the face's size
HOLD_FRAMES = 8       # a box stays blurred this many frames after its last detection
DETECT_WIDTH = 480    # detection runs on a frame reduced to this width
DETECT_EVERY = 2      # frames; the hold above covers the ones in between
SCALE_STEP = 1.15
CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_profileface.xml")


def _cascades() -> list[cv2.CascadeClassifier]:
    out = []
    for name in CASCADES:
        path = Path(cv2.data.haarcascades) / name
        cascade = cv2.CascadeClassifier(str(path))
        if cascade.empty():
            raise VaultError(f"OpenCV face detector {path} not found: anonymisation is impossible, "
                             "refusing a training extraction that would show faces")
        out.append(cascade)
    return out


def overlay_band(height: int) -> int:
    """Height of the top band that holds the burnt-in caption (see recorder/media/overlay.py:
    two lines of text whose size follows the frame height), with room to spare."""
    scale = max(0.35, height / 720 * 0.8)
    step = int(28 * scale + 8)
    return min(height, 2 * step + step // 2 + 4)


def detect_faces(grey: np.ndarray, cascades) -> list[tuple[int, int, int, int]]:
    h, w = grey.shape
    factor = DETECT_WIDTH / w if w > DETECT_WIDTH else 1.0
    small = cv2.resize(grey, (int(w * factor), int(h * factor))) if factor != 1.0 else grey
    small = cv2.equalizeHist(small)
    boxes = []
    frontal, profile = cascades
    found = list(frontal.detectMultiScale(small, SCALE_STEP, 3, minSize=(20, 20)))
    found += list(profile.detectMultiScale(small, SCALE_STEP, 3, minSize=(20, 20)))
    flipped = cv2.flip(small, 1)  # the profile cascade knows one side only
    for x, y, bw, bh in profile.detectMultiScale(flipped, SCALE_STEP, 3, minSize=(20, 20)):
        found.append((small.shape[1] - x - bw, y, bw, bh))
    for x, y, bw, bh in found:
        boxes.append((int(x / factor), int(y / factor), int(bw / factor), int(bh / factor)))
    return boxes


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


def blur_boxes(img: np.ndarray, boxes) -> None:
    h, w = img.shape[:2]
    rects = []
    for x, y, bw, bh in boxes:
        mx, my = int(bw * MARGIN), int(bh * MARGIN)
        x0, y0 = max(0, x - mx), max(0, y - my)
        x1, y1 = min(w, x + bw + mx), min(h, y + bh + my)
        if x1 > x0 and y1 > y0:
            rects.append((x0, y0, x1, y1))
    for x0, y0, x1, y1 in _merge(rects):
        region = img[y0:y1, x0:x1]
        # A few blocks across, smoothed and stretched back: no feature survives.
        small = cv2.resize(region, (5, max(1, 5 * (y1 - y0) // (x1 - x0))), interpolation=cv2.INTER_AREA)
        region[:] = cv2.resize(cv2.GaussianBlur(small, (3, 3), 0), (x1 - x0, y1 - y0),
                               interpolation=cv2.INTER_LINEAR)


def anonymise_segments(src: Path, dst: Path, *, keep_audio: bool = False) -> dict:
    """Re-encode ``src`` (the remuxed MP4) to ``dst`` with faces blurred, the caption
    masked, and audio dropped unless ``keep_audio``; returns what was done, for the report."""
    cascades = _cascades()
    frames = with_faces = 0
    recent: list[tuple[int, tuple]] = []
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        vin = inp.streams.video[0]
        ain = inp.streams.audio[0] if keep_audio and inp.streams.audio else None
        rate = vin.average_rate or vin.guessed_rate or 25
        vout = out.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        vout.time_base = vin.time_base
        vout.options = {"preset": "veryfast", "crf": "23"}
        aout = out.add_stream_from_template(ain) if ain is not None else None
        band = overlay_band(vout.height)
        streams = [vin] + ([ain] if ain is not None else [])
        for packet in inp.demux(*streams):
            if packet.stream.type == "audio":
                if packet.dts is not None and packet.size:
                    packet.stream = aout
                    out.mux(packet)
                continue
            for frame in packet.decode():
                img = frame.to_ndarray(format="bgr24")
                frames += 1
                boxes = (detect_faces(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cascades)
                         if frames % DETECT_EVERY == 1 else [])
                with_faces += bool(boxes)
                recent = [(n, b) for n, b in recent if frames - n <= HOLD_FRAMES]
                recent += [(frames, b) for b in boxes]
                blur_boxes(img, [b for _, b in recent])
                img[:band] = 0  # the caption: time, camera, agent number, position
                new = av.VideoFrame.from_ndarray(img, format="bgr24")
                new.pts, new.time_base = frame.pts, frame.time_base
                for p in vout.encode(new):
                    out.mux(p)
        for p in vout.encode(None):
            out.mux(p)
    if frames == 0:
        raise VaultError("anonymisation: no video frame decoded")
    return {"faces": f"blurred: OpenCV Haar cascades {', '.join(CASCADES)} (profile both ways), "
                     f"margin {int(MARGIN * 100)}% each side, searched every {DETECT_EVERY} frames, "
                     f"each box held {HOLD_FRAMES} frames",
            "frames": frames, "frames_searched_with_faces": with_faces,
            "overlay": f"masked: top {band} px of each frame",
            "audio": "kept (asked for)" if keep_audio else "removed (voices muted)",
            "video": "re-encoded with libx264 (crf 23)"}
