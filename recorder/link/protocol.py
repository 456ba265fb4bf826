"""The technician's serial link: a small framed protocol between `pieton config flash` /
`pieton assign` (the host, ``tools.link_client``) and the camera's listener (the device,
``recorder.link.listener``), pyserial at both ends, every port opened by ``serial_for_url``.

A frame is ``A5 5A | type u8 | seq u16 | length u16 | payload | CRC32 u32`` (big-endian;
the CRC covers type, seq, length and payload). A transfer is BEGIN (kind, size, SHA-256)
then DATA chunks (offset + bytes), each acknowledged, then END, answered by RESULT with
the device's reason code. Garbage between frames is skipped; a frame with a bad checksum
or cut short is answered NAK with a reason code and resent by the host; a transfer that
goes silent (cable pulled) is dropped by the device without changing anything.
"""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass
from enum import IntEnum

from drivers.serial_urls import open_serial
from recorder.errors import LinkError
from recorder.evidence.format import canonical
from recorder.inputs import loads_strict

SYNC = b"\xa5\x5a"
_HEAD = struct.Struct(">BHH")
MAX_PAYLOAD = 4096 + 4
CHUNK = 1024


class Frame(IntEnum):
    INFO = 0x01
    BEGIN = 0x02
    DATA = 0x03
    END = 0x04
    ABORT = 0x05
    ACK = 0x10
    NAK = 0x11
    RESULT = 0x12
    INFO_REPLY = 0x13


LINK_REASONS = {
    "bad-checksum": "a frame arrived with a wrong CRC32",
    "truncated-frame": "a frame was cut short",
    "oversize": "the announced transfer is larger than the device accepts",
    "out-of-order": "a chunk does not follow the previous one",
    "no-transfer": "data or end without a transfer begun",
    "truncated": "the transfer ended before all its bytes arrived",
    "corrupted": "the transfer's bytes do not match the announced SHA-256",
    "unknown-kind": "the device does not take this kind of transfer",
    "bad-frame": "a frame's payload is malformed",
    "internal-error": "the device failed to handle the transfer",
}


def encode_frame(ftype: int, seq: int, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"frame payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    head = _HEAD.pack(ftype, seq & 0xFFFF, len(payload))
    return SYNC + head + payload + struct.pack(">I", zlib.crc32(head + payload))


def frame_json(obj) -> bytes:
    return canonical(obj)


@dataclass(frozen=True)
class Received:
    """A good frame."""

    type: int
    seq: int
    payload: bytes

    def json(self):
        """The payload as JSON, parsed strictly (InputError if it is not)."""
        return loads_strict(self.payload, f"{Frame(self.type).name} payload")


@dataclass(frozen=True)
class BadFrame:
    """A frame that could not be taken: ``code`` is bad-checksum or truncated-frame."""

    code: str
    seq: int | None


class FrameReader:
    """Reads frames from a pyserial port, skipping garbage; ``frame_timeout`` is how long
    a frame may stall before it counts as cut short."""

    def __init__(self, port, *, frame_timeout: float = 0.5):
        self.port = port
        self.frame_timeout = frame_timeout
        self.buffer = bytearray()
        self.garbage = 0
        self._last_byte = time.monotonic()

    def _fill(self, wait: float) -> bool:
        self.port.timeout = max(0.0, min(wait, 0.05))
        data = self.port.read(max(1, self.port.in_waiting))
        if data:
            self.buffer += data
            self._last_byte = time.monotonic()
        return bool(data)

    def read(self, timeout: float) -> Received | BadFrame | None:
        """The next frame or bad frame, or None after ``timeout`` seconds of nothing."""
        deadline = time.monotonic() + timeout
        while True:
            event = self._parse()
            if event is not None:
                return event
            if self._fill(max(0.0, deadline - time.monotonic())):
                continue
            now = time.monotonic()
            if self.buffer and now - self._last_byte >= self.frame_timeout:
                # a frame began and stalled: cut short (cable pulled, bytes lost)
                seq = _HEAD.unpack_from(self.buffer, 2)[1] if len(self.buffer) >= 2 + _HEAD.size else None
                self.buffer.clear()
                return BadFrame("truncated-frame", seq)
            if now >= deadline:
                return None

    def _parse(self) -> Received | BadFrame | None:
        buf = self.buffer
        while True:
            start = buf.find(SYNC)
            if start < 0:
                keep = 1 if buf[-1:] == SYNC[:1] else 0
                self.garbage += len(buf) - keep
                del buf[: len(buf) - keep]
                return None
            if start:
                self.garbage += start
                del buf[:start]
            if len(buf) < 2 + _HEAD.size:
                return None
            ftype, seq, length = _HEAD.unpack_from(buf, 2)
            if length > MAX_PAYLOAD or ftype not in Frame._value2member_map_:
                self.garbage += 1  # not a frame header after all
                del buf[:1]
                continue
            end = 2 + _HEAD.size + length + 4
            if len(buf) < end:
                return None
            body = bytes(buf[2:end - 4])
            (crc,) = struct.unpack_from(">I", buf, end - 4)
            del buf[:end]
            if zlib.crc32(body) != crc:
                return BadFrame("bad-checksum", seq)
            return Received(ftype, seq, body[_HEAD.size:])


def open_port(port, baud: int = 115200):
    """A pyserial port from a path or a URL (``simcable://NAME/device``), or an already open
    port, returned as is."""
    if not isinstance(port, str):
        return port
    try:
        return open_serial(port, baudrate=baud, timeout=0.05, write_timeout=5)
    except (OSError, ValueError) as exc:  # pyserial's SerialException is an OSError
        raise LinkError(f"serial port {port}: {exc}") from None
