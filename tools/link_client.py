"""The technician's end of the serial link (``pieton config flash``, ``pieton assign``):
asks the camera what it holds and sends it a transfer, resending damaged frames.

The camera's replies are outside data like any other: each is parsed strictly and checked
against the protocol, and one that does not follow it ends the exchange with a
``CameraReplyError`` naming what the camera sent. Nothing loops on the camera's word:
resends are bounded, an acknowledgement must move the transfer forward (one that does not
counts as a failed try), and a whole transfer has a time limit.
"""

from __future__ import annotations

import hashlib
import re
import struct
import time
from collections.abc import Callable

from recorder.config_update import OK_CODES, Answer
from recorder.errors import LinkError
from recorder.inputs import InputError, expect_object, loads_strict
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

REASON_CODE = re.compile(r"[a-z][a-z0-9-]{0,39}")
MAX_MESSAGE = 500          # characters of a camera's message shown to the technician
RESEND_CODES = ("bad-checksum", "truncated-frame")  # the frame was damaged on the line: send it again


class CameraReplyError(LinkError, ValueError):
    """The camera answered, but not as the protocol says; the message names what it sent."""


def shown(payload: bytes, limit: int = 80) -> str:
    """Bytes from the camera as the technician may safely read them (escaped, cut short)."""
    text = repr(bytes(payload[:limit]))
    return text + f"... ({len(payload)} bytes)" if len(payload) > limit else text


def _printable(text: str) -> str:
    """A camera's words without terminal control characters, at most MAX_MESSAGE long."""
    clean = "".join(c if c.isprintable() else "?" for c in text[:MAX_MESSAGE])
    return clean + "..." if len(text) > MAX_MESSAGE else clean


class FlashClient:
    """The technician's end: ``info()`` and ``send(kind, data, progress)``.

    ``port`` is a path, a URL (``simcable://NAME/host``) or an open pyserial port;
    ``reply_timeout`` is how long to wait for each answer, ``result_timeout`` for the
    answer to END (the camera checks and installs meanwhile); ``retries`` bounds resends of
    one frame and acknowledgements that do not advance; ``time_limit`` bounds a whole
    transfer (default: from its size at the line rate, four times over, plus the result)."""

    def __init__(self, port, *, baud: int = 115200, reply_timeout: float = 2.0, result_timeout: float = 60.0,
                 retries: int = 5, chunk: int = CHUNK, time_limit: float | None = None):
        self.port = open_port(port, baud)
        self._owns = isinstance(port, str)
        self.name = port if isinstance(port, str) else getattr(port, "port", repr(port))
        self.reader = FrameReader(self.port)
        self.baud = baud
        self.reply_timeout = reply_timeout
        self.result_timeout = result_timeout
        self.retries = retries
        self.chunk = chunk
        self.time_limit = time_limit
        self.seq = 0
        self.resends = 0
        self.closed = False
        self._limit_s = 0.0

    def close(self) -> None:
        if self._owns and not self.closed:
            self.port.close()
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<FlashClient {self.name} seq={self.seq} resends={self.resends}>"

    def limit_for(self, size: int) -> float:
        """Seconds a transfer of ``size`` bytes may take in all."""
        if self.time_limit is not None:
            return self.time_limit
        frames = size // self.chunk + 3
        line_s = (size + frames * 64) * 10 / self.baud
        return 30.0 + self.result_timeout + 4 * line_s

    # -- frames -------------------------------------------------------------------------

    def _exchange(self, ftype: int, payload: bytes, want: tuple[int, ...], timeout: float,
                  deadline: float | None = None) -> Received:
        """Send a frame and wait for its answer (one of ``want``, or NAK), resending on NAK of
        a damaged frame or silence, at most ``retries`` times and never past ``deadline``."""
        self.seq = (self.seq + 1) & 0xFFFF
        frame = encode_frame(ftype, self.seq, payload)
        asked = Frame(ftype).name
        for _attempt in range(self.retries + 1):
            self._write(frame)
            until = time.monotonic() + timeout
            if deadline is not None:
                until = min(until, deadline)
            while (left := until - time.monotonic()) > 0:
                event = self._read(left)
                if event is None or isinstance(event, BadFrame):
                    break  # silence, or the answer itself damaged: resend
                if event.seq != self.seq:
                    continue  # a late answer to an earlier frame
                if event.type == Frame.NAK:
                    if self.reply_object(event, asked).get("code") in RESEND_CODES:
                        break
                    return event
                if event.type in want:
                    return event
                raise CameraReplyError(f"the camera answered {asked} with {Frame(event.type).name} "
                                       f"{shown(event.payload)}, not {' or '.join(Frame(w).name for w in want)}")
            if deadline is not None and time.monotonic() >= deadline:
                raise LinkError(f"the transfer did not end within its time limit of {self._limit_s:.0f} s: "
                                "stopped (is the line very slow or the camera stuck?)")
            self.resends += 1
        raise LinkError(f"no answer from the device after {self.retries + 1} tries "
                        "(is the cable connected and the camera on?)")

    def _write(self, frame: bytes) -> None:
        try:
            self.port.write(frame)
            self.port.flush()
        except OSError as exc:  # pyserial's SerialException and SerialTimeoutException
            raise LinkError(f"serial port {self.name}: cannot send ({exc})") from None

    def _read(self, timeout: float) -> Received | BadFrame | None:
        try:
            return self.reader.read(timeout)
        except OSError as exc:
            raise LinkError(f"serial port {self.name}: cannot read ({exc})") from None

    # -- replies ------------------------------------------------------------------------

    def reply_object(self, event: Received, asked: str) -> dict:
        """The JSON object a reply carries, parsed strictly."""
        what = f"the camera's {Frame(event.type).name} to {asked}"
        try:
            return expect_object(loads_strict(event.payload, what), what)
        except InputError as exc:
            raise CameraReplyError(f"{exc}; it sent {shown(event.payload)}") from None

    def answer(self, event: Received, asked: str) -> Answer:
        """The camera's answer (a reason code and words) carried by a NAK or a RESULT."""
        reply = self.reply_object(event, asked)
        code, message = reply.get("code"), reply.get("message", "")
        name = Frame(event.type).name
        if not isinstance(code, str) or not REASON_CODE.fullmatch(code):
            raise CameraReplyError(f"the camera's {name} to {asked} has no reason code; it sent {shown(event.payload)}")
        if not isinstance(message, str):
            raise CameraReplyError(f"the camera's {name} to {asked} has a message that is not text; "
                                   f"it sent {shown(event.payload)}")
        if event.type == Frame.NAK and code in OK_CODES:
            raise CameraReplyError(f"the camera refused {asked} with the code of a success ({code!r}); "
                                   f"it sent {shown(event.payload)}")
        return Answer(code, _printable(message))

    def _acked(self, event: Received, sent: int, size: int) -> int:
        """The offset an ACK to DATA names: at least what was acknowledged before, at most the size."""
        offset = self.reply_object(event, "DATA").get("offset")
        if isinstance(offset, bool) or not isinstance(offset, int) or not sent <= offset <= size:
            raise CameraReplyError(f"the camera acknowledged DATA with offset {offset!r}, expected a whole "
                                   f"number from {sent} to {size}; it sent {shown(event.payload)}")
        return offset

    # -- requests -----------------------------------------------------------------------

    def info(self) -> dict:
        """What the camera says it is and holds; every field used is checked."""
        reply = self._exchange(Frame.INFO, b"", (Frame.INFO_REPLY,), self.reply_timeout)
        if reply.type == Frame.NAK:
            answer = self.answer(reply, "INFO")
            raise LinkError(f"the camera could not say what it holds: [{answer.code}] {answer.message}")
        info = self.reply_object(reply, "INFO")
        checks = {"camera_id": str, "fleet": str, "agent": str, "config_version": int, "assignment_counter": int}
        for field, kind in checks.items():
            value = info.get(field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, kind)
                                      or (kind is int and value < 0)):
                raise CameraReplyError(f"the camera's INFO_REPLY: {field} {value!r} is not "
                                       f"{'a whole number' if kind is int else 'text'}")
        files = info.get("files", [])
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise CameraReplyError(f"the camera's INFO_REPLY: files {files!r} is not a list of SHA-256")
        return {key: _printable(value) if isinstance(value, str) else value for key, value in info.items()}

    def send(self, kind: str, data: bytes, progress: Callable[[int, int], None] | None = None) -> Answer:
        """Transfer ``data`` and return the device's answer (a refusal is an Answer too)."""
        self._limit_s = self.limit_for(len(data))
        deadline = time.monotonic() + self._limit_s
        begin = {"kind": kind, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        reply = self._exchange(Frame.BEGIN, frame_json(begin), (Frame.ACK,), self.reply_timeout, deadline)
        if reply.type == Frame.NAK:
            return self.answer(reply, "BEGIN")
        self.reply_object(reply, "BEGIN")
        offset = stalls = 0
        if progress:
            progress(0, len(data))
        while offset < len(data):
            chunk = data[offset:offset + self.chunk]
            reply = self._exchange(Frame.DATA, struct.pack(">I", offset) + chunk, (Frame.ACK,),
                                   self.reply_timeout, deadline)
            if reply.type == Frame.NAK:
                return self.answer(reply, "DATA")
            acked = self._acked(reply, offset, len(data))
            if acked == offset:  # acknowledged without taking the chunk: a failed try
                stalls += 1
                if stalls > self.retries:
                    raise CameraReplyError(f"the camera acknowledged offset {offset} {stalls} times without "
                                           "taking the chunk sent there; it last sent "
                                           f"{shown(reply.payload)}")
                continue
            offset, stalls = acked, 0
            if progress:
                progress(offset, len(data))
        reply = self._exchange(Frame.END, b"", (Frame.RESULT,), self.result_timeout, deadline)
        return self.answer(reply, "END")
