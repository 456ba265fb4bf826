"""Helpers for the technician tests: a provisioned device (real signer, real journal,
real age recipient) and bundles signed by real technician keys."""

from __future__ import annotations

import hashlib
import json
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from drivers.signer import FileSigner
from recorder.assignment import AssignmentKeeper
from recorder.bundle import CONTEXT, Bundle, build_bundle, load_technician_key, public_hex, read_bundle
from recorder.config import load_config
from recorder.config_update import ConfigUpdater
from recorder.evidence.journal import DeviceJournal, read_journal
from recorder.link.protocol import Frame, FrameReader, Received, encode_frame, open_port
from tests.conftest import device_config, write_config


def technician(folder: Path, name: str = "tech"):
    path = folder / f"{name}.key"
    FileSigner.create(path)
    return path, load_technician_key(path)


def make_config(folder: Path, technicians: list[str], recipient: str, camera: str = "CAM-SIM-001",
                fleet: str = "autun-pm", **overrides) -> Path:
    """A valid device configuration (what a bundle must hold), changed by ``overrides``."""
    return write_config(folder, device_config(technicians, [recipient], device={"camera_id": camera, "fleet": fleet},
                                              **overrides))


@dataclass
class Device:
    """A camera's state folder with the parts that take what a technician sends."""

    state: Path
    journal: DeviceJournal
    updater: ConfigUpdater
    keeper: AssignmentKeeper
    signer: FileSigner
    recording: list

    def snapshot(self) -> dict:
        """Everything that must not change when an offer is refused."""
        root = self.state / "config"
        files = {}
        for p in sorted(root.rglob("*")):
            files[str(p.relative_to(root))] = (p.readlink() if p.is_symlink() else
                                               p.read_bytes() if p.is_file() else "dir")
        return {"files": files, "version": self.updater.running_version,
                "digest": self.updater.running.digest, "pending": self.updater.pending,
                "counter": self.keeper.counter}

    def events(self, chief_identity: Path | None = None) -> list[dict]:
        if not self.journal.path.exists() or self.journal.path.stat().st_size == 0:
            return []
        identities = [chief_identity.read_text().strip()] if chief_identity else None
        report = read_journal(self.journal.path, self.signer.public_key, identities)
        assert not report.problems, report.problems
        return report.lines


def make_device(folder: Path, config_path: Path, *, clock=None) -> Device:
    folder.mkdir(parents=True, exist_ok=True)
    signer = FileSigner.create(folder / "device.key")
    running = load_config(config_path)
    journal = DeviceJournal(folder / "journal.jsonl", signer, list(running.keys.recipients))
    recording: list = []
    updater = ConfigUpdater(folder, running, journal, is_recording=lambda: bool(recording))
    keeper = AssignmentKeeper(folder, journal, running.device.camera_id,
                              lambda: list(updater.running.keys.technicians), wall_clock=clock or time.time)
    return Device(folder, journal, updater, keeper, signer, recording)


def forge(key, bundle_bytes: bytes, *, toml: bytes | None = None, drop: str | None = None,
          header: dict | None = None) -> bytes:
    """Re-sign a bundle after changing it, as a careless (but trusted) technician could."""
    bundle = read_bundle(bundle_bytes)
    files = list(bundle.files)
    if toml is not None:
        files[0] = replace(files[0], data=toml, size=len(toml), sha256=hashlib.sha256(toml).hexdigest())
    if drop is not None:
        files = [f for f in files if f.name != drop]
    head = dict(bundle.header, files=[f.entry() for f in files], signer=public_hex(key), **(header or {}))
    head_bytes = json.dumps(head, sort_keys=True, separators=(",", ":")).encode()
    return Bundle(head, head_bytes, key.sign(CONTEXT + b"\n" + head_bytes), tuple(files)).to_bytes()


def provisioned(tmp_path: Path, chief) -> tuple:
    """A technician key and a device running a configuration that trusts it: the set-up of
    every test that offers bundles. Returns (tmp_path, key path, key, chief recipient, device)."""
    tech_path, tech = technician(tmp_path)
    _, recipient = chief
    running = make_config(tmp_path / "running", [public_hex(tech)], recipient)
    return tmp_path, tech_path, tech, recipient, make_device(tmp_path / "device", running)


def sign(config_path: Path, key, version: int, **target) -> bytes:
    if not target:
        target = {"device": "CAM-SIM-001"}
    return build_bundle(config_path, key, version, **target)


class FakeCamera:
    """The far end of a simulated cable playing a camera: each frame the technician sends is
    handed to ``answer(frame) -> bytes | None`` and what it returns goes back on the line."""

    def __init__(self, url: str, answer: Callable[[Received], bytes | None]):
        self.port = open_port(url)
        self.reader = FrameReader(self.port, frame_timeout=0.2)
        self.answer = answer
        self.frames: list[Received] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fake-camera")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            event = self.reader.read(0.05)
            if isinstance(event, Received):
                self.frames.append(event)
                reply = self.answer(event)
                if reply:
                    self.port.write(reply)

    def close(self) -> None:
        self._stop.set()
        self.port.cancel_read()
        self._thread.join(timeout=5)
        self.port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class HonestCamera:
    """Answers as the protocol says (and as the real listener does), holding nothing."""

    def __init__(self, code: str = "applied"):
        self.code = code
        self.received = bytearray()

    def __call__(self, frame: Received) -> bytes:
        if frame.type == Frame.INFO:
            return reply(Frame.INFO_REPLY, frame.seq, {"camera_id": "CAM-SIM-001", "fleet": "autun-pm",
                                                       "config_version": 0, "files": []})
        if frame.type == Frame.BEGIN:
            self.received.clear()
            return reply(Frame.ACK, frame.seq, {"code": "ok", "offset": 0})
        if frame.type == Frame.DATA:
            (offset,) = struct.unpack_from(">I", frame.payload)
            if offset == len(self.received):
                self.received += frame.payload[4:]
            return reply(Frame.ACK, frame.seq, {"code": "ok", "offset": len(self.received)})
        if frame.type == Frame.END:
            return reply(Frame.RESULT, frame.seq, {"code": self.code, "message": "done"})
        return reply(Frame.NAK, frame.seq, {"code": "bad-frame", "message": "not for the device"})


def reply(ftype: int, seq: int, obj) -> bytes:
    """A well-formed frame carrying ``obj`` as JSON."""
    return encode_frame(ftype, seq, json.dumps(obj).encode())
