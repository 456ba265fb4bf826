"""The parsers `pieton bench fuzz` feeds: one row each (name, module whose coverage counts,
functions of it that make the parser, a setup giving the entry, seeds and mutator).

Each entry is a small adapter written against today's code, so a renamed function is fixed
here in one place. An entry raises only its documented errors on bad input (PietonError,
the root of every project error, unless a row says more); anything else is a failure.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import shutil
import struct
import time
import wave
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drivers.errors import PietonError
from drivers.gps import GpsdGps
from drivers.nmea import NmeaReader
from drivers.signer import FileSigner
from recorder.assignment import CONTEXT as ASSIGNMENT_CONTEXT
from recorder.assignment import read_assignment, sign_assignment
from recorder.bundle import (
    CONTEXT,
    MAGIC,
    build_bundle,
    check_target,
    check_trust,
    check_version,
    materialise,
    public_hex,
    read_bundle,
)
from recorder.config import load_config, parse_config
from recorder.config_update import Answer
from recorder.evidence.age import decrypt, generate_identity
from recorder.evidence.age_format import dearmor, read_header
from recorder.evidence.age_keys import parse_recipient
from recorder.evidence.chain import canonical, sign_document
from recorder.evidence.format import JOURNAL_FILE
from recorder.evidence.receipt import RECEIPT_CONTEXT, freeable, make_receipt, verify_receipt
from recorder.evidence.spool import Spool
from recorder.evidence.verify_spool import verify_journal
from recorder.link.listener import SerialListener
from recorder.link.protocol import BadFrame, FrameReader, Received
from recorder.notice import Notice
from recorder.position.geofence import load_boundary
from tools.benchmarks import _age_mutants as age_mutants
from tools.benchmarks._fuzz_evidence import manifest_harness, report_harness
from tools.benchmarks._fuzz_harness import Harness, Target
from tools.benchmarks._fuzz_mutators import (
    frame,
    havoc,
    mutate_frames,
    mutate_json,
    mutate_jsonl,
    mutate_nmea,
    mutate_toml,
)
from tools.benchmarks.flash import _config as device_config  # a valid device configuration
from tools.benchmarks.gps import shared_logs
from tools.link_client import FlashClient
from tools.vault.index import Index, RecordingRow
from tools.vault.layout import VaultLayout
from tools.vault.vault import Vault, init_vault

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "config"


def _writer(path: Path, entry: Callable[[Path], object]) -> Callable[[bytes], object]:
    """An entry for parsers that read a file: the input is written there first."""
    def run(data: bytes):
        path.write_bytes(data)
        return entry(path)
    return run


# -- configuration, boundaries, notice audio ------------------------------------------------

def _config(work: Path, rng) -> Harness:
    shutil.copy(CONFIG_DIR / "notice-fr.wav", work / "notice-fr.wav")
    shutil.copytree(CONFIG_DIR / "communes", work / "communes")
    return Harness(lambda data: parse_config(data, "fuzz.toml", work), [(CONFIG_DIR / "pieton.toml").read_bytes()],
                   mutate_toml)


def _square(x: float, y: float, d: float) -> list:
    return [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]]


def _geojson(work: Path, rng) -> Harness:
    polygon = {"type": "Polygon", "coordinates": _square(4.29, 46.94, 0.05)}
    seeds = [(CONFIG_DIR / "communes" / "autun.geojson").read_bytes(), json.dumps(polygon).encode(),
             json.dumps({"type": "Feature", "properties": {"name": "X", "approximate": True}, "geometry": polygon}).encode(),
             json.dumps({"type": "FeatureCollection", "features": [
                 {"type": "Feature", "properties": {}, "geometry": {
                     "type": "MultiPolygon", "coordinates": [_square(4.0, 46.0, 0.1), _square(5.0, 46.0, 0.1)]}}]}).encode()]
    return Harness(_writer(work / "b.geojson", load_boundary), seeds, mutate_json)


def _wav(channels: int, width: int, rate: int, frames: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(bytes(range(256)) * (frames * channels * width // 256 + 1))
    return out.getvalue()


def _mutate_wav(seed: bytes, rng) -> bytes:
    """The RIFF header's fields (sizes, channels, rate, width) changed, or byte havoc."""
    data = bytearray(seed)
    if rng.random() < 0.6 and len(data) >= 44:
        offset, fmt = rng.choice(((4, "<I"), (16, "<I"), (20, "<H"), (22, "<H"), (24, "<I"), (28, "<I"),
                                  (32, "<H"), (34, "<H"), (40, "<I")))
        value = rng.choice((0, 1, 2, 3, 8, 16, 24, 255, 0xFFFF, 0xFFFFFFFF, 44100, 8000))
        struct.pack_into(fmt, data, offset, value & (0xFFFF if fmt == "<H" else 0xFFFFFFFF))
        return bytes(data)
    return havoc(bytes(data), rng, tokens=[b"RIFF", b"WAVE", b"fmt ", b"data", b"LIST", b"\x00" * 4, b"\xff" * 4])


def _notice(work: Path, rng) -> Harness:
    path = work / "notice.wav"
    config = SimpleNamespace(resolve=lambda _: path, notice=SimpleNamespace(audio="notice.wav", text="Attention"))
    seeds = [_wav(1, 2, 16000, 800), _wav(2, 2, 48000, 500), _wav(1, 1, 8000, 100), _wav(1, 2, 22050, 0)]
    return Harness(_writer(path, lambda _: Notice(config, None)), seeds, _mutate_wav)


# -- bundles and assignments -----------------------------------------------------------------

def _bundle(work: Path, rng) -> Harness:
    key = Ed25519PrivateKey.generate()
    path = device_config(work / "config", "Attention, cette intervention est enregistrée.", public_hex(key),
                         generate_identity()[1], None)
    fleet = load_config(path).device.fleet
    seeds = [build_bundle(path, key, 7, fleet=fleet, notice_encoding="wav"),
             build_bundle(path, key, 8, device="CAM-SIM-001", notice_encoding="wav")]
    out = work / "out"

    def entry(data: bytes):
        # what the camera does with a bundle: structure, trust, target, version, then the files
        bundle = read_bundle(data)
        check_trust(bundle, [public_hex(key)])
        check_target(bundle, "CAM-SIM-001", fleet)
        check_version(bundle, 1)
        shutil.rmtree(out, ignore_errors=True)
        materialise(bundle, out)

    seed_bundle = read_bundle(seeds[0])

    def mutate(seed: bytes, rng) -> bytes:
        """The header's values or a file's content changed (its size and hash in the header
        with it) and the header signed again, so mutants reach the checks past the signature."""
        if rng.random() < 0.3:
            return havoc(seed, rng, tokens=[MAGIC, b"{", b"\"", b"\x00" * 4])
        files = [[f.name, f.data] for f in seed_bundle.files]
        header = seed_bundle.header_bytes
        if rng.random() < 0.5:
            header = mutate_json(header, rng)
        else:
            doc = json.loads(header)
            k = rng.randrange(len(files))
            name, data = files[k]
            if rng.random() < 0.2:
                files[k][1] = None                   # left out (a thin transfer)
            else:
                files[k][1] = mutate_toml(data, rng) if name.endswith(".toml") else havoc(data, rng)
                doc["files"][k].update(size=len(files[k][1]), sha256=hashlib.sha256(files[k][1]).hexdigest())
            header = canonical(doc)
        signature = key.sign(CONTEXT + b"\n" + header) if rng.random() < 0.9 else bytes(64)
        body = b"".join(b"\0" if data is None else b"\1" + data for _, data in files)
        return MAGIC + struct.pack(">I", len(header)) + header + signature + body

    return Harness(entry, seeds, mutate)


def _assignment(work: Path, rng) -> Harness:
    key = Ed25519PrivateKey.generate()
    until = time.time() + 8 * 3600
    seeds = [sign_assignment(key, "A-1234", "CAM-SIM-001", n, until) for n in (1, 99)]

    def resign(doc: dict) -> dict:
        try:
            doc["sig"] = key.sign(ASSIGNMENT_CONTEXT + b"\n" + canonical({k: v for k, v in doc.items() if k != "sig"})).hex()
        except (TypeError, ValueError):
            pass
        return doc

    return Harness(read_assignment, seeds, lambda seed, rng: mutate_json(seed, rng, resign=resign))


# -- the serial link, both ends --------------------------------------------------------------

class ScriptPort:
    """A pyserial-like port: reads come from ``rx`` (repeated ``cycles`` times), writes kept."""

    def __init__(self, rx: bytes = b"", cycles: int = 1):
        self.rx, self.left, self.pos, self.tx, self.timeout = rx, cycles, 0, bytearray(), 0.0

    @property
    def in_waiting(self) -> int:
        return len(self.rx) - self.pos

    def read(self, n: int = 1) -> bytes:
        if self.pos >= len(self.rx) and self.left > 1 and self.rx:
            self.left, self.pos = self.left - 1, 0
        data = self.rx[self.pos:self.pos + n]
        self.pos += len(data)
        return data

    def write(self, data) -> int:
        self.tx += data
        return len(data)

    def flush(self) -> None:
        pass


def _transfer_frames(kind: str, data: bytes, chunk: int = 1024) -> bytes:
    begin = {"kind": kind, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    frames = [frame(0x01, 1, b""), frame(0x02, 2, json.dumps(begin).encode())]
    for n, offset in enumerate(range(0, len(data), chunk)):
        frames.append(frame(0x03, 3 + n, struct.pack(">I", offset) + data[offset:offset + chunk]))
    frames.append(frame(0x04, 3 + -(-len(data) // chunk), b""))
    return b"".join(frames)


def _serial_seeds() -> list[bytes]:
    return [_transfer_frames("bundle", bytes(range(256)) * 5, chunk=512), _transfer_frames("assignment", b"{}"),
            frame(0x01, 9, b"") + frame(0x05, 10, b"") + frame(0x04, 11, b"")]


def _frames(data: bytes) -> list:
    """The frames (and bad frames) the protocol's reader takes out of ``data``."""
    reader = FrameReader(ScriptPort())
    reader.buffer += data
    events = []
    while (event := reader._parse()) is not None:
        events.append(event)
    if reader.buffer:
        events.append(BadFrame("truncated-frame", None))
    return events


def _serial_codec(work: Path, rng) -> Harness:
    def entry(data: bytes):
        for event in _frames(data):
            if isinstance(event, Received) and event.payload[:1] in (b"{", b"["):
                event.json()
    return Harness(entry, _serial_seeds(), mutate_frames)


def _serial_device(work: Path, rng) -> Harness:
    port = ScriptPort()
    listener = SerialListener(port, {"bundle": lambda b: Answer("ok", "taken"),
                                     "assignment": lambda b: Answer("refused", "no")},
                              lambda: {"device": "CAM-SIM-001", "version": 3}, max_size=64 * 1024)
    listener._port = port

    def entry(data: bytes):
        # one listener for speed, its per-transfer state reset: each input starts afresh.
        # Good frames go to _answer itself: _serve_one would turn a failure into an
        # internal-error reply, which is a fault all the same.
        listener._transfer, listener._last_end, listener.state = None, None, "listening"
        port.tx.clear()
        for event in _frames(data):
            if isinstance(event, BadFrame):
                listener._reader = SimpleNamespace(read=lambda timeout, event=event: event)
                listener._serve_one()
            else:
                listener._answer(event.type, event.seq, event.payload)

    return Harness(entry, _serial_seeds(), mutate_frames)


def _serial_host(work: Path, rng) -> Harness:
    payload = bytes(2500)

    def entry(data: bytes):
        client = FlashClient(ScriptPort(data, cycles=3), reply_timeout=0.0005, result_timeout=0.0005, retries=1)
        client.info()
        client.send("bundle", payload)

    def ack(seq, offset):
        return frame(0x10, seq, json.dumps({"code": "ok", "offset": offset}).encode())

    good = (frame(0x13, 1, b'{"device":"CAM-SIM-001","version":3}') + ack(2, 0) + ack(3, 1024) + ack(4, 2048)
            + ack(5, 2500) + frame(0x12, 6, b'{"code":"ok","message":"installed"}'))
    nak = frame(0x13, 1, b"{}") + frame(0x11, 2, b'{"code":"unknown-kind","message":"no"}')
    return Harness(entry, [good, nak], mutate_frames)


# -- GPS -------------------------------------------------------------------------------------

def _nmea_seeds() -> list[bytes]:
    lines = []
    for log in shared_logs()[:12]:
        lines += [line for line in log.read_bytes().splitlines() if line.startswith((b"$", b"!"))][:400]
    lines += [b"$GPRMC,235959.00,A,4656.4000,N,00417.8000,E,0.5,54.7,311226,,,A*6C",
              b"$GPGGA,000000.00,4656.4000,N,00417.8000,E,1,08,0.9,320.0,M,47.0,M,,*43",
              b"$GPZDA,235959.00,31,12,2026,00,00*6F", b"$PSRFEPE,235959.00,A,1.2,5.0,3.2,0.3,180.0*00"]
    rng = random.Random(1)       # windows of 1 to 4 sentences: small inputs, many of them
    return [b"\r\n".join(lines[i:i + rng.randint(1, 4)]) + b"\r\n" for i in range(0, len(lines), 2)]


def _nmea(work: Path, rng) -> Harness:
    def entry(data: bytes):
        reader = NmeaReader()
        reader.feed(data)
        reader.flush()
    return Harness(entry, _nmea_seeds(), mutate_nmea)


def _gpsd(work: Path, rng) -> Harness:
    gps = GpsdGps()

    def entry(data: bytes):
        # one answer line of gpsd to ?POLL; ConnectionError: not gpsd's answer (reconnect)
        line = data.decode("utf-8", "replace").split("\n", 1)[0] + "\n"     # what readline gives
        gps._fix_from_answer(line)

    tpv = {"class": "TPV", "mode": 3, "time": "2026-09-21T10:00:00.000Z", "lat": 46.94, "lon": 4.29, "alt": 320.0,
           "epx": 5.0, "epy": 6.0, "epv": 9.0, "track": 54.0, "speed": 1.2, "climb": 0.0, "eps": 1.0}
    sky = {"class": "SKY", "satellites": [{"PRN": 1, "used": True}, {"PRN": 2, "used": False}]}
    seeds = [json.dumps({"class": "POLL", "time": "2026-09-21T10:00:00.000Z", "active": 1, "tpv": [tpv], "sky": [sky]}),
             json.dumps({"class": "POLL", "active": 1, "tpv": [{"class": "TPV", "mode": 2, "lat": 0.0, "lon": 0.0}],
                         "sky": [{}]})]
    return Harness(entry, [s.encode() for s in seeds], mutate_json, errors=(PietonError, ConnectionError))


# -- age ---------------------------------------------------------------------------------------

def _age_seeds(rng, armored: bool, count: int = 6) -> tuple[str, str, list[bytes]]:
    identity, recipient = generate_identity()
    out = []
    for n in range(count):
        local = random.Random(n)
        blob = age_mutants.build(local, identity_pub=parse_recipient(recipient), mutate=False)
        if n % 3 == 0:      # small files: fast inputs
            blob = blob[:blob.index(b"\n---") + 48] + bytes(16) + bytes(100)
        out.append(age_mutants.armor_mutant(blob, local, mutate=False) if armored else blob)
    return identity, recipient, out


def _age_header(work: Path, rng) -> Harness:
    _, recipient, seeds = _age_seeds(rng, armored=False)
    return Harness(lambda data: read_header(io.BytesIO(data), "fuzz"), [s[:s.index(b"\n---") + 48] for s in seeds],
                   lambda seed, rng: havoc(seed, rng, tokens=[b"-> ", b"--- ", b"\n", b"X25519 ", b"scrypt ", b"=", b"A" * 64]))


def _age_armor(work: Path, rng) -> Harness:
    _, _, binaries = _age_seeds(rng, armored=False, count=3)
    binaries = [b[:400] for b in binaries]          # small inputs: the armor is what is read
    seeds = [age_mutants.armor_mutant(b, rng, mutate=False) for b in binaries]

    def mutate(seed: bytes, rng) -> bytes:
        if rng.random() < 0.3:
            return age_mutants.armor_mutant(rng.choice(binaries), rng)
        return havoc(seed, rng, tokens=[b"\n", b"\r", b"=", b"==", b" ", b"\xc2\xa0", b"-----END AGE ENCRYPTED FILE-----"])
    return Harness(lambda data: dearmor(data, "fuzz"), seeds, mutate)


def _age_stream(work: Path, rng) -> Harness:
    identity, recipient, seeds = _age_seeds(rng, armored=False)
    public = parse_recipient(recipient)

    def mutate(seed: bytes, rng) -> bytes:
        if rng.random() < 0.5:
            blob = age_mutants.build(rng, identity_pub=public)
            return age_mutants.armor_mutant(blob, rng) if rng.random() < 0.2 else blob
        return havoc(seed, rng)
    path = work / "segment.age"

    def entry(data: bytes):
        if len(data) % 2:              # half the inputs as a file: the reader takes both
            path.write_bytes(data)
            return decrypt(path, [identity])
        return decrypt(data, [identity])
    return Harness(entry, seeds, mutate)


# -- evidence: manifests, journals, receipts ---------------------------------------------------

def _recordings(work: Path):
    signer = FileSigner.create(work / "device.key")
    identity, recipient = generate_identity()
    now = [1_790_000_000.0]
    spool = Spool(work / "spool", signer, [recipient], "CAM-F-001", "d" * 64, True, wall_clock=lambda: now[0],
                  reserve_bytes=256 * 1024, min_free_bytes=0)
    recs = []
    for _ in range(2):
        rec = spool.open_recording(now[0], "agent", {"clock_source": "gps"})
        for _segment in range(2):
            seg = rec.open_segment()
            seg.write(b"\x47" + bytes(187) * 20)
            now[0] += 1
            seg.seal({"duration_s": 1.0})
        rec.close("stop gesture")
        recs.append(rec)
    return signer, spool, recs, identity


def _journal(work: Path, rng) -> Harness:
    signer, spool, _, _ = _recordings(work)
    path = Path(spool.dir) / JOURNAL_FILE
    seeds = [path.read_bytes()]
    return Harness(_writer(path, lambda _: verify_journal(spool.dir, signer.public_key, [])), seeds, mutate_jsonl)


def _receipt(work: Path, rng) -> Harness:
    vault = FileSigner.create(work / "vault.key")
    recs = [{"id": f"CAM-F-001-2026092{n}T100000Z-00000{n}", "last_hash": f"{n:064x}", "segments": n}
            for n in range(1, 4)]
    seeds = [canonical(make_receipt(vault, "CAM-F-001", "d" * 64, recs, "2026-09-21T10:00:00Z"))]
    held = {r["id"]: r["last_hash"] for r in recs}

    def resign(doc):
        try:
            return sign_document({k: v for k, v in doc.items() if k != "sig"}, RECEIPT_CONTEXT, vault)
        except (TypeError, ValueError):
            return doc

    def entry(data: bytes):
        receipt = verify_receipt(data, vault.public_key, camera_id="CAM-F-001", device_key="d" * 64)
        freeable(receipt, held)
    return Harness(entry, seeds, lambda seed, rng: mutate_json(seed, rng, resign=resign))


# -- the vault: reports, index, settings --------------------------------------------------------

def _vault(work: Path):
    _, recipient = generate_identity()
    (work / "police").mkdir()
    init_vault(work / "vault", [recipient], work / "police" / "register.jsonl")
    return work / "vault"


def _index(work: Path, rng) -> Harness:
    root = _vault(work)
    source = root / "index.sqlite"
    row = RecordingRow("CAM-F-001-20260921T100000Z-000001", "CAM-F-001", 1, 1_790_000_000.0, True,
                       1_790_000_100.0, "stored", 2, 4096, "a" * 64, False, None, 1_790_000_050.0)
    index = Index(source)
    index.enrol("CAM-F-001", "d" * 64, "2026-09-21T10:00:00Z")
    index.add_recording(row)
    index.add_hold(row.recording_id, "PV 2026/123", 1_790_000_200.0)
    index.close()
    seeds = [source.read_bytes()]

    def entry(data: bytes):
        path = work / "fuzz.sqlite"
        for extra in ("-wal", "-shm"):
            Path(str(path) + extra).unlink(missing_ok=True)
        path.write_bytes(data)
        index = Index(path)
        try:           # what the vault's commands read, then what they write
            index.cameras()
            index.camera_key("CAM-F-001")
            for found in index.recordings(state=None):
                _ = (found.span, found.retention_base)   # computed from the stored values
            index.recording(row.recording_id)
            index.holds(row.recording_id)
            index.quarantined()
            index.enrol("CAM-F-002", "e" * 64, "2026-09-22T10:00:00Z")
            index.release(row.recording_id, "PV 2026/123")
            index.mark_purged(row.recording_id, 1_790_100_000.0)
            index.add_quarantine("q1", "x", "CAM-F-001", 1_790_100_000.0, "fuzz")
        finally:
            index.close()
    return Harness(entry, seeds, lambda seed, rng: havoc(seed, rng, tokens=[b"\x00" * 8, b"\xff" * 8, b"SQLite format 3\x00"]))


def _settings(work: Path, rng) -> Harness:
    root = _vault(work)
    settings = VaultLayout(root).settings

    def entry(data: bytes):
        settings.write_bytes(data)
        Vault.open(root).close()
    return Harness(entry, [settings.read_bytes()], mutate_json)


TARGETS = [
    Target("config", "recorder.config", (), _config),
    Target("geojson", "recorder.position.geofence", ("load_boundary",), _geojson),
    Target("notice-wav", "recorder.notice", ("load_wav", "Notice.__init__"), _notice),
    Target("bundle", "recorder.bundle", ("read_bundle", "_check_header", "_check_name", "check_trust",
                                         "check_target", "check_version", "materialise"), _bundle),
    Target("assignment", "recorder.assignment", ("read_assignment", "_parse_iso"), _assignment),
    Target("serial-codec", "recorder.link.protocol", ("FrameReader._parse", "Received"), _serial_codec, weight=4),
    Target("serial-device", "recorder.link.listener", ("SerialListener._serve_one", "SerialListener._answer",
                                                       "SerialListener._refuse", "SerialListener._begin",
                                                       "SerialListener._data", "SerialListener._end"),
           _serial_device, weight=2),
    Target("serial-host", "tools.link_client", ("FlashClient",), _serial_host),
    Target("nmea", "drivers.nmea", (), _nmea, weight=4),
    Target("gpsd-json", "drivers.gpsd_report", (), _gpsd),
    Target("age-header", "recorder.evidence.age_format", ("read_header", "b64decode", "_is_arg"), _age_header),
    Target("age-armor", "recorder.evidence.age_format", ("dearmor", "_armor_line", "_check_trailer"), _age_armor,
           weight=2),
    Target("age-stream", "recorder.evidence.age", ("DecryptStream", "_open_source", "_file_key", "decrypt"),
           _age_stream),
    Target("manifest", "recorder.evidence.verify", ("_Checker",), manifest_harness),
    Target("journal", "recorder.evidence.chain", ("read_chain", "read_chain_bytes", "split_pieces", "_parse",
                                                  "torn_record"), _journal),
    Target("receipt", "recorder.evidence.receipt", ("verify_receipt", "freeable"), _receipt),
    Target("report", "tools.vault.report", ("check_report", "_shape_problem"), report_harness),
    Target("vault-index", "tools.vault.index", ("Index",), _index),
    Target("vault-settings", "tools.vault.vault", ("Vault.open", "Vault.__init__"), _settings),
]
