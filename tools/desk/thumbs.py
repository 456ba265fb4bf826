"""Thumbnails of a consulted recording, made in memory: a few segments spread over it are
decrypted, their first picture decoded and encoded as JPEG into the page (data: URIs).
Nothing is written to disk."""

from __future__ import annotations

import base64
import io

import av
import cv2

from recorder.errors import AgeError
from recorder.evidence.age import decrypt

COUNT = 6
WIDTH = 192
MAX_SEGMENT_BYTES = 256 * 1024 * 1024


def thumbnails(rec, count: int = COUNT) -> list[tuple[float | None, str]]:
    """(seconds from the recording's first picture, data URI) for up to ``count`` segments."""
    segments = rec.segments
    if not segments:
        return []
    n = min(count, len(segments))
    picks = sorted({round(i * (len(segments) - 1) / max(1, n - 1)) for i in range(n)})  # first to last
    found, origin = [], None
    for index in picks:
        segment = segments[index]
        path = rec.folder / segment["file"]
        try:
            if path.stat().st_size != segment.get("size") or path.stat().st_size > MAX_SEGMENT_BYTES:
                continue  # not what the manifest lists: the verification alongside says so
            plain = decrypt(path, rec.identities).plaintext
            with av.open(io.BytesIO(plain), format="mpegts") as container:
                frame = next(container.decode(video=0))
        except (AgeError, OSError, av.error.FFmpegError, StopIteration):
            continue
        image = frame.to_ndarray(format="bgr24")
        height = max(1, round(image.shape[0] * WIDTH / image.shape[1]))
        ok, jpeg = cv2.imencode(".jpg", cv2.resize(image, (WIDTH, height), interpolation=cv2.INTER_AREA),
                                [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:
            continue
        at = frame.time
        if origin is None and index == 0:
            origin = at
        offset = None if at is None or origin is None else max(0.0, at - origin)
        found.append((offset, "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode()))
    return found
