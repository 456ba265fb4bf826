"""The technician's end of the serial link (``pieton config flash``, ``pieton assign``):
asks the camera what it holds and sends it a transfer, resending damaged frames."""

from __future__ import annotations

import hashlib
import struct
import time
from collections.abc import Callable

from recorder.config_update import Answer
from recorder.errors import LinkError
from recorder.link.protocol import (
    CHUNK,
    BadFrame,
    Frame,
    FrameReader,
    Received,
    encode_frame,
    frame_json,
    open_port,
)


class FlashClient:
    """The technician's end: ``info()`` and ``send(kind, data, progress)``."""

    def __init__(self, port, *, baud: int = 115200, reply_timeout: float = 2.0, result_timeout: float = 60.0,
                 retries: int = 5, chunk: int = CHUNK):
        self.port = open_port(port, baud)
        self._owns = isinstance(port, str)
        self.reader = FrameReader(self.port)
        self.reply_timeout = reply_timeout
        self.result_timeout = result_timeout
        self.retries = retries
        self.chunk = chunk
        self.seq = 0
        self.resends = 0

    def close(self) -> None:
        if self._owns:
            self.port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<FlashClient {getattr(self.port, 'port', self.port)} seq={self.seq} resends={self.resends}>"

    def _exchange(self, ftype: int, payload: bytes, want: tuple[int, ...], timeout: float) -> Received:
        """Send a frame and wait for its answer, resending on NAK of a damaged frame or silence."""
        self.seq = (self.seq + 1) & 0xFFFF
        frame = encode_frame(ftype, self.seq, payload)
        for _attempt in range(self.retries + 1):
            self.port.write(frame)
            self.port.flush()
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                event = self.reader.read(left)
                if event is None or isinstance(event, BadFrame):
                    break  # silence, or the answer itself damaged: resend
                if event.seq != self.seq:
                    continue  # a late answer to an earlier frame
                if event.type == Frame.NAK:
                    nak = event.json()
                    if nak.get("code") in ("bad-checksum", "truncated-frame"):
                        break
                    return event
                if event.type in want:
                    return event
            self.resends += 1
        raise LinkError(f"no answer from the device after {self.retries + 1} tries "
                        "(is the cable connected and the camera on?)")

    def info(self) -> dict:
        return self._exchange(Frame.INFO, b"", (Frame.INFO_REPLY,), self.reply_timeout).json()

    def send(self, kind: str, data: bytes, progress: Callable[[int, int], None] | None = None) -> Answer:
        """Transfer ``data`` and return the device's answer (a refusal is an Answer too)."""
        begin = {"kind": kind, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        reply = self._exchange(Frame.BEGIN, frame_json(begin), (Frame.ACK,), self.reply_timeout)
        if reply.type == Frame.NAK:
            return Answer(**reply.json())
        offset = 0
        if progress:
            progress(0, len(data))
        while offset < len(data):
            chunk = data[offset:offset + self.chunk]
            reply = self._exchange(Frame.DATA, struct.pack(">I", offset) + chunk, (Frame.ACK,),
                                   self.reply_timeout)
            if reply.type == Frame.NAK:
                return Answer(**reply.json())
            offset = reply.json()["offset"]
            if progress:
                progress(offset, len(data))
        reply = self._exchange(Frame.END, b"", (Frame.RESULT,), self.result_timeout)
        return Answer(**reply.json())
