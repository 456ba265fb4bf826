"""The camera's end of the technician's serial link: a thread that answers INFO, receives
transfers (bundles, assignments) and hands each complete one to its handler.

Every frame that arrives whole gets an answer: line noise between frames is skipped, a
damaged frame is answered NAK, a malformed one NAK with the reason, and nothing that
arrives stops the listener. A transfer refused by the link itself (a BEGIN it cannot take,
more bytes than announced, bytes that do not match, a handler that failed) is an attempt
to change the camera: it is journaled, as the handlers journal what they refuse.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import re
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

import serial

from recorder.bundle import MAX_BUNDLE_BYTES
from recorder.config_update import Answer
from recorder.errors import LinkError
from recorder.inputs import InputError, expect_object, loads_strict
from recorder.link.protocol import (
    LINK_REASONS,
    BadFrame,
    Frame,
    FrameReader,
    encode_frame,
    frame_json,
    open_port,
)

log = logging.getLogger(__name__)

TRANSFER_KIND = re.compile(r"[a-z][a-z0-9-]{0,31}")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
MAX_ANSWER_MESSAGE = 300


def shown(value, limit: int = 40) -> str:
    """A value from the line, quoted and cut short, for an answer or the journal."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def port_present(port: str) -> bool:
    """Whether the configured port is worth listening on: a device path that exists, or a
    URL (pyserial opens it, and the listener retries while it cannot)."""
    return "://" in port or Path(port).exists()


class SerialListener:
    """The device side: answers INFO, receives transfers and hands each complete one to
    ``handlers[kind](bytes) -> Answer``. When ``loop`` is given, handlers, ``info()`` and
    ``on_refused`` run on that asyncio loop's thread (the daemon's), the listener waiting for
    their answer. ``on_refused(kind, answer)`` journals a transfer the link itself refused
    (``kind`` is None when the BEGIN did not name one)."""

    def __init__(self, port, handlers: dict[str, Callable[[bytes], Answer]], info: Callable[[], dict],
                 *, baud: int = 115200, loop=None, max_size: int = MAX_BUNDLE_BYTES,
                 idle_timeout: float = 5.0, frame_timeout: float = 0.5, reopen_interval: float = 1.0,
                 on_refused: Callable[[str | None, Answer], None] | None = None):
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
        self.on_refused = on_refused
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

    @property
    def alive(self) -> bool:
        """Whether the listening thread runs (it outlives any frame; only close() ends it)."""
        return self._thread is not None and self._thread.is_alive()

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
        try:
            self._port.write(encode_frame(ftype, seq, frame_json(obj)))
            self._port.flush()
        except OSError as exc:  # pyserial's SerialException: the port, not the frame
            raise LinkError(f"cannot send on {self.port_name}: {exc}") from exc

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
        try:
            self._answer(event.type, event.seq, event.payload)
        except LinkError:
            raise  # the port failed: _run reopens it
        except Exception as exc:  # noqa: BLE001 - every frame is answered; the listener lives on
            log.exception("serial link %s: a %s frame failed", self.port_name, Frame(event.type).name)
            self._drop_transfer("unexpected error")
            self._nak(event.seq, "internal-error", _cut(f"{type(exc).__name__}: {exc}"))

    def _answer(self, ftype: int, seq: int, payload: bytes) -> None:
        if ftype == Frame.INFO:
            self._send(Frame.INFO_REPLY, seq, self._invoke(self.info))
        elif ftype == Frame.BEGIN:
            self._begin(seq, payload)
        elif ftype == Frame.DATA:
            self._data(seq, payload)
        elif ftype == Frame.END:
            self._end(seq)
        elif ftype == Frame.ABORT:
            self._drop_transfer("aborted by the host")
            self._send(Frame.ACK, seq, {"code": "ok"})
        else:
            self._nak(seq, "bad-frame", f"frame type {ftype:#x} is not for the device")

    def _nak(self, seq: int, code: str, message: str) -> None:
        self._send(Frame.NAK, seq, {"code": code, "message": message})

    def _refuse(self, seq: int, kind: str | None, answer: Answer, ftype: int = Frame.NAK) -> None:
        """Refuse a transfer: journal it (an attempt to change the camera), then answer."""
        self.counts["refused"] += 1
        self.last_answer = answer
        if self.on_refused is not None:
            try:
                self._invoke(self.on_refused, kind, answer)
            except Exception:  # noqa: BLE001 - the technician still gets the answer
                log.exception("journaling a refused %s transfer failed", kind)
        self._send(ftype, seq, answer.as_dict())

    def _begin(self, seq: int, payload: bytes) -> None:
        self._drop_transfer("a new transfer began")
        try:
            begin = expect_object(loads_strict(payload, "BEGIN"), "BEGIN")
        except InputError as exc:
            return self._refuse(seq, None, Answer("bad-frame", _cut(str(exc))))
        kind, size, digest = begin.get("kind"), begin.get("size"), begin.get("sha256")
        if not isinstance(kind, str) or not TRANSFER_KIND.fullmatch(kind):
            return self._refuse(seq, None, Answer("bad-frame", f"BEGIN: kind {shown(kind)} is not a transfer name"))
        if kind not in self.handlers:
            return self._refuse(seq, kind, Answer("unknown-kind", f"{kind!r} is not one of {sorted(self.handlers)}"))
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            return self._refuse(seq, kind, Answer("bad-frame", f"BEGIN: size {shown(size)} is not a number of bytes"))
        if not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest):
            return self._refuse(seq, kind, Answer("bad-frame", f"BEGIN: sha256 {shown(digest)} is not 64 hex digits"))
        if size > self.max_size:
            return self._refuse(seq, kind, Answer("oversize", f"{size} bytes is more than the {self.max_size} "
                                                              "the device accepts"))
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
            return self._refuse(seq, t["kind"], Answer("oversize", f"more than the {t['size']} bytes announced"))
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
                answer = Answer("internal-error", _cut(f"{type(exc).__name__}: {exc}"))
            else:  # the handler journaled its own decision
                self.counts["accepted" if answer.ok else "refused"] += 1
                self.last_answer = answer
                self._last_end = (seq, answer)
                return self._send(Frame.RESULT, seq, answer.as_dict())
        self._last_end = (seq, answer)
        self._refuse(seq, t["kind"], answer, Frame.RESULT)


def _cut(message: str) -> str:
    return message if len(message) <= MAX_ANSWER_MESSAGE else message[:MAX_ANSWER_MESSAGE] + "..."


def device_listener(port, updater, keeper=None, **kw) -> SerialListener:
    """The daemon's listener: bundles go to a ConfigUpdater, assignments to an AssignmentKeeper."""
    handlers = {"bundle": lambda data: updater.offer(data, origin="serial")}
    if keeper is not None:
        handlers["assignment"] = lambda data: keeper.offer(data, origin="serial")

    def refused(kind: str | None, answer: Answer) -> None:
        if updater.journal is None:
            return
        public = {"code": answer.code, "message": answer.message, "origin": "serial", "transfer": kind}
        if kind == "assignment":
            updater.journal.append("assignment", {"result": "refused", **public})
        else:
            updater.journal.append("config refused", public)

    def info() -> dict:
        out = updater.info()
        if keeper is not None:
            out.update(assignment_counter=keeper.counter, agent=keeper.status()["agent"])
        return out

    return SerialListener(port, handlers, info, on_refused=refused, **kw)
