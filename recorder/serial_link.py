"""The technician's serial link: a small framed protocol between `pieton config flash` /
`pieton assign` (the host) and the camera's listener (the device), pyserial at both ends.

A frame is ``A5 5A | type u8 | seq u16 | length u16 | payload | CRC32 u32`` (big-endian;
the CRC covers type, seq, length and payload). A transfer is BEGIN (kind, size, SHA-256)
then DATA chunks (offset + bytes), each acknowledged, then END, answered by RESULT with
the device's reason code. Garbage between frames is skipped; a frame with a bad checksum
or cut short is answered NAK with a reason code and resent by the host; a transfer that
goes silent (cable pulled) is dropped by the device without changing anything.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import os
import select
import struct
import threading
import time
import tty
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from recorder.bundle import MAX_BUNDLE_BYTES
from recorder.config_update import Answer
from recorder.errors import LinkError

log = logging.getLogger(__name__)

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


def _json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Received:
    """A good frame."""

    type: int
    seq: int
    payload: bytes

    def json(self) -> dict:
        return json.loads(self.payload)


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
    """A pyserial port from a path (or an already open port, returned as is)."""
    if not isinstance(port, str):
        return port
    import serial

    try:
        return serial.Serial(port, baudrate=baud, timeout=0.05, write_timeout=5)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise LinkError(f"serial port {port}: {exc}") from None


# -- the device's listener -------------------------------------------------------------------

class SerialListener:
    """The device side: answers INFO, receives transfers and hands each complete one to
    ``handlers[kind](bytes) -> Answer``. When ``loop`` is given, handlers and ``info()`` run
    on that asyncio loop's thread (the daemon's), the listener waiting for their answer."""

    def __init__(self, port, handlers: dict[str, Callable[[bytes], Answer]], info: Callable[[], dict],
                 *, baud: int = 115200, loop=None, max_size: int = MAX_BUNDLE_BYTES,
                 idle_timeout: float = 5.0, frame_timeout: float = 0.5, reopen_interval: float = 1.0):
        self.port_name = port if isinstance(port, str) else getattr(port, "port", repr(port))
        self._port_arg = port
        self.baud = baud
        self.handlers = handlers
        self.info = info
        self.loop = loop
        self.max_size = max_size
        self.idle_timeout = idle_timeout
        self.frame_timeout = frame_timeout
        self.reopen_interval = reopen_interval
        self.state = "closed"
        self.counts = {"transfers": 0, "accepted": 0, "refused": 0, "aborted": 0, "bad_frames": 0}
        self.last_answer: Answer | None = None
        self._transfer: dict | None = None
        self._last_end: tuple[int, Answer] | None = None
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None
        self._port = None

    def start(self, wait_s: float = 2.0) -> SerialListener:
        """Start listening; wait (at most ``wait_s``) until the port is open, since opening
        a port flushes what already arrived on it."""
        self._thread = threading.Thread(target=self._run, name="serial-listener", daemon=True)
        self._thread.start()
        self._listening.wait(wait_s)
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._port is not None and isinstance(self._port_arg, str):
            self._port.close()
        self._port = None
        self.state = "closed"

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def status(self) -> dict:
        """For the daemon's status: the link's state and what it received."""
        last = self.last_answer.as_dict() if self.last_answer else None
        return {"port": self.port_name, "state": self.state, **self.counts, "last_answer": last}

    def __repr__(self) -> str:
        return f"<SerialListener {self.port_name} {self.state} {self.counts}>"

    def _invoke(self, fn, *args):
        if self.loop is None:
            return fn(*args)
        future: concurrent.futures.Future = concurrent.futures.Future()

        def run():
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed back to the listener thread
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return future.result(timeout=120)

    def _run(self) -> None:
        import serial

        while not self._stop.is_set():
            try:
                if self._port is None:
                    self._port = open_port(self._port_arg, self.baud)
                    self._reader = FrameReader(self._port, frame_timeout=self.frame_timeout)
                    self.state = "listening"
                    self._listening.set()
                self._serve_one()
            except (LinkError, serial.SerialException, OSError) as exc:
                if self.state != "link lost":
                    log.warning("serial link %s lost: %s", self.port_name, exc)
                self._drop_transfer("link lost")
                self.state = "link lost"
                if self._port is not None and isinstance(self._port_arg, str):
                    try:
                        self._port.close()
                    except OSError:
                        pass
                    self._port = None
                self._stop.wait(self.reopen_interval)
            except Exception:  # noqa: BLE001 - the listener outlives any one bad exchange
                log.exception("serial link %s: unexpected error; still listening", self.port_name)
                self._drop_transfer("unexpected error")
                self._stop.wait(0.1)

    def _send(self, ftype: int, seq: int, obj: dict) -> None:
        self._port.write(encode_frame(ftype, seq, _json(obj)))
        self._port.flush()

    def _drop_transfer(self, why: str) -> None:
        if self._transfer is not None:
            log.warning("transfer of %s dropped: %s", self._transfer["kind"], why)
            self.counts["aborted"] += 1
            self._transfer = None
            if self.state == "receiving":
                self.state = "listening"

    def _serve_one(self) -> None:
        event = self._reader.read(0.2)
        if self._transfer is not None and time.monotonic() - self._transfer["last"] > self.idle_timeout:
            self._drop_transfer(f"silent for {self.idle_timeout:.1f} s (cable pulled?)")
        if event is None:
            return
        if isinstance(event, BadFrame):
            self.counts["bad_frames"] += 1
            self._nak(event.seq or 0, event.code, LINK_REASONS[event.code])
            return
        ftype, seq = event.type, event.seq
        if ftype == Frame.INFO:
            self._send(Frame.INFO_REPLY, seq, self._invoke(self.info))
        elif ftype == Frame.BEGIN:
            self._begin(seq, event.payload)
        elif ftype == Frame.DATA:
            self._data(seq, event.payload)
        elif ftype == Frame.END:
            self._end(seq)
        elif ftype == Frame.ABORT:
            self._drop_transfer("aborted by the host")
            self._send(Frame.ACK, seq, {"code": "ok"})
        else:
            self._nak(seq, "bad-frame", f"frame type {ftype:#x} is not for the device")

    def _nak(self, seq: int, code: str, message: str) -> None:
        self._send(Frame.NAK, seq, {"code": code, "message": message})

    def _begin(self, seq: int, payload: bytes) -> None:
        self._drop_transfer("a new transfer began")
        try:
            begin = json.loads(payload)
            kind, size, digest = begin["kind"], begin["size"], begin["sha256"]
            if not isinstance(size, int) or size < 0 or not isinstance(digest, str):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return self._nak(seq, "bad-frame", "BEGIN needs kind, size and sha256")
        if kind not in self.handlers:
            return self._nak(seq, "unknown-kind", f"{kind!r} is not one of {sorted(self.handlers)}")
        if size > self.max_size:
            return self._nak(seq, "oversize", f"{size} bytes is more than the {self.max_size} the device accepts")
        self._transfer = {"kind": kind, "size": size, "sha256": digest, "data": bytearray(),
                          "last": time.monotonic()}
        self.counts["transfers"] += 1
        self.state = "receiving"
        self._send(Frame.ACK, seq, {"code": "ok", "offset": 0})

    def _data(self, seq: int, payload: bytes) -> None:
        t = self._transfer
        if t is None:
            return self._nak(seq, "no-transfer", "DATA without BEGIN")
        if len(payload) < 4:
            return self._nak(seq, "bad-frame", "DATA without an offset")
        (offset,) = struct.unpack_from(">I", payload)
        chunk = payload[4:]
        t["last"] = time.monotonic()
        if offset + len(chunk) <= len(t["data"]) and offset < len(t["data"]):
            return self._send(Frame.ACK, seq, {"code": "ok", "offset": len(t["data"])})  # a resend
        if offset != len(t["data"]):
            return self._nak(seq, "out-of-order", f"chunk at {offset}, expected {len(t['data'])}")
        if offset + len(chunk) > t["size"]:
            self._drop_transfer("more bytes than announced")
            return self._nak(seq, "oversize", f"more than the {t['size']} bytes announced")
        t["data"] += chunk
        self._send(Frame.ACK, seq, {"code": "ok", "offset": len(t["data"])})

    def _end(self, seq: int) -> None:
        t, self._transfer = self._transfer, None
        self.state = "listening"
        if t is None:
            if self._last_end is not None and self._last_end[0] == seq:
                # the host missed our RESULT and resent END: answer again, do not redo
                return self._send(Frame.RESULT, seq, self._last_end[1].as_dict())
            return self._nak(seq, "no-transfer", "END without BEGIN")
        data = bytes(t["data"])
        if len(data) != t["size"]:
            answer = Answer("truncated", f"{len(data)} of {t['size']} bytes arrived")
        elif hashlib.sha256(data).hexdigest() != t["sha256"]:
            answer = Answer("corrupted", "the bytes received do not match the announced SHA-256")
        else:
            try:
                answer = self._invoke(self.handlers[t["kind"]], data)
            except Exception as exc:  # noqa: BLE001 - the device answers, it does not die
                log.exception("handling a %s transfer failed", t["kind"])
                answer = Answer("internal-error", f"{type(exc).__name__}: {exc}")
        self.counts["accepted" if answer.ok else "refused"] += 1
        self.last_answer = answer
        self._last_end = (seq, answer)
        self._send(Frame.RESULT, seq, answer.as_dict())


# -- the host's client ------------------------------------------------------------------------

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
        reply = self._exchange(Frame.BEGIN, _json(begin), (Frame.ACK,), self.reply_timeout)
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


# -- a simulated cable -------------------------------------------------------------------------

class PtyCable:
    """Two pseudo-terminals joined by a relay, as a USB serial cable between a workstation
    (``host_path``) and a camera (``device_path``). ``baud`` throttles both directions to
    that line rate (10 bits a byte); ``pull()`` cuts the cable: bytes stop flowing."""

    def __init__(self, baud: int | None = None):
        self.baud = baud
        self._fds = []
        self.pulled = False
        self._noise = 0
        self._stop = threading.Event()
        ends = []
        for _ in range(2):
            master, slave = os.openpty()
            tty.setraw(slave)  # no echo, no line editing, before anyone opens it
            self._fds += [master, slave]
            ends.append((master, os.ttyname(slave)))
        (self._host_master, self.host_path), (self._device_master, self.device_path) = ends
        self._threads = [threading.Thread(target=self._relay, args=(a, b), daemon=True, name="pty-cable")
                         for a, b in ((self._host_master, self._device_master),
                                      (self._device_master, self._host_master))]
        for t in self._threads:
            t.start()

    def _relay(self, src: int, dst: int) -> None:
        next_free = time.monotonic()
        while not self._stop.is_set():
            ready, _, _ = select.select([src], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(src, 4096)
            except OSError:
                return
            if self.pulled:
                continue
            if self._noise and src == self._host_master:
                self._noise -= 1  # line noise: one bit flipped in this burst
                mid = len(data) // 2
                data = data[:mid] + bytes([data[mid] ^ 0x10]) + data[mid + 1:]
            step = 64 if self.baud else len(data)
            for i in range(0, len(data), step):
                piece = data[i:i + step]
                if self.baud:
                    next_free = max(next_free, time.monotonic()) + len(piece) * 10 / self.baud
                    delay = next_free - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                try:
                    os.write(dst, piece)
                except OSError:
                    return

    def pull(self) -> None:
        self.pulled = True

    def add_noise(self, bursts: int = 1) -> None:
        """Flip a bit in each of the next ``bursts`` reads from the host (line noise)."""
        self._noise += bursts

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "pulled" if self.pulled else "connected"
        return f"<PtyCable host={self.host_path} device={self.device_path} baud={self.baud} {state}>"


def device_listener(port, updater, keeper=None, **kw) -> SerialListener:
    """The daemon's listener: bundles go to a ConfigUpdater, assignments to an AssignmentKeeper."""
    handlers = {"bundle": lambda data: updater.offer(data, origin="serial")}
    if keeper is not None:
        handlers["assignment"] = lambda data: keeper.offer(data, origin="serial")

    def info() -> dict:
        out = updater.info()
        if keeper is not None:
            out.update(assignment_counter=keeper.counter, agent=keeper.status()["agent"])
        return out

    return SerialListener(port, handlers, info, **kw)
