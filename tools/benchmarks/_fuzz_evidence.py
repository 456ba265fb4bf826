"""Structure-aware fuzz harnesses of `pieton bench fuzz` for the verifier of manifests and
the checker of extraction reports.

Their seeds are real: recordings sealed by the device's own code over MPEG-TS that PyAV
encodes (one closed with metadata and a segment cut short by a full disk, one cut by a power cut and
recovered, with `progress` lines), and reports shaped as `vault extract` signs them (a
procedure's and a training clip's). Mutants are signed again (manifest lines re-chained
and re-signed with the device key, reports with the vault key) on most inputs, so they pass
the signature and reach the checks behind it; each input also picks, from its own bytes,
the context it is checked in (pinned key, enrolled devices or none; a missing, foreign or
unreadable MP4 or a FIFO, a malformed vault key), so every branch of the caller's side runs too.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import zlib
from pathlib import Path

import av
import numpy as np

from drivers.signer import FileSigner
from recorder.evidence.age import generate_identity, load_identities
from recorder.evidence.chain import canonical, line_hash, sign_document, signed_bytes
from recorder.evidence.format import MANIFEST_CONTEXT, MANIFEST_FILE
from recorder.evidence.recovery import recover_recording
from recorder.evidence.spool import Spool
from recorder.evidence.verify import verify_recording
from tools.benchmarks._fuzz_harness import Harness
from tools.benchmarks._fuzz_mutators import havoc, mutate_json, mutate_jsonl, mutate_value
from tools.vault.report import REPORT_CONTEXT, check_report

CAMERA = "CAM-F-001"


def mpegts(frames: int = 6, seed: int = 0) -> bytes:
    """A tiny MPEG-TS with H.264 video that PyAV demuxes (what a segment's plaintext is)."""
    out = io.BytesIO()
    with av.open(out, "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        rng = np.random.default_rng(seed)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def _recordings(work: Path):
    """(device signer, recording folders, identity file): a closed recording with a segment
    sealed early (a full disk), and one cut during its second segment (progress lines),
    then recovered."""
    signer = FileSigner.create(work / "device.key")
    identity, recipient = generate_identity()
    (work / "chief.identity").write_text(identity + "\n")
    now = [1_790_000_000.0]
    ts = mpegts()
    spool = Spool(work / "spool", signer, [recipient], CAMERA, "d" * 64, True, wall_clock=lambda: now[0],
                  reserve_bytes=256 * 1024, min_free_bytes=0)
    closed = spool.open_recording(now[0], "agent", {"clock_source": "gps"})
    for _ in range(2):
        seg = closed.open_segment()
        seg.write(ts)
        now[0] += 2
        seg.seal({"duration_s": 2.0})
    seg = closed.open_segment()
    seg.write(ts[: len(ts) // 2])
    seg.abort("storage full")
    closed.close("stop gesture")
    cut = spool.open_recording(now[0] + 10, "flagrant_delit", {"clock_source": "unsynchronised"})
    seg = cut.open_segment()
    seg.write(ts)
    seg.seal({"duration_s": 2.0})
    seg = cut.open_segment()
    for _ in range(3):
        seg.write(ts[:400])
        seg.sync()                      # a progress line each: what is durable, and its hash
    recover_recording(cut.path, signer)   # the power cut: the next start documents the .part
    return signer, [Path(closed.path), Path(cut.path)], work / "chief.identity"


def _dumps(value) -> bytes:
    """JSON as a careless writer would put it (NaN and Infinity included)."""
    try:
        return json.dumps(value).encode()
    except (TypeError, ValueError, RecursionError):
        return b"{"


def rechain(lines: list, signer, rng) -> list:
    """The lines as the device would have signed them: seq, prev and sig made again (a
    mutated seq is kept on some lines, so the chain's own checks are fuzzed too)."""
    prev = "0" * 64
    out = []
    for i, line in enumerate(lines):
        if not isinstance(line, dict):
            out.append(line if isinstance(line, bytes) else _dumps(line))
            continue
        line = {k: v for k, v in line.items() if k != "sig"}
        if rng.random() < 0.95 or "seq" not in line:
            line["seq"] = i
        if rng.random() < 0.97:
            line["prev"] = prev
        try:
            line["sig"] = signer.sign(signed_bytes(MANIFEST_CONTEXT, line)).hex()
            raw = canonical(line)
        except (TypeError, ValueError, RecursionError):    # NaN, too deep: written as is, unsigned
            raw = _dumps(line)
        out.append(raw)
        prev = line_hash(raw)
    return out


def mutate_manifest(seed: bytes, rng, signer) -> bytes:
    if rng.random() < 0.2:
        return mutate_jsonl(seed, rng)           # unsigned garbage, torn lines: the chain's checks
    lines = []
    for raw in seed.splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            lines.append(raw)
    for _ in range(rng.choice((1, 1, 2, 3))):
        op = rng.randrange(10)
        i = rng.randrange(len(lines)) if lines else 0
        if op <= 5 and lines:
            lines[i] = mutate_value(copy.deepcopy(lines[i]), rng)
        elif op == 6 and lines:
            del lines[i]
        elif op == 7 and lines:
            lines.insert(i, copy.deepcopy(lines[rng.randrange(len(lines))]))
        elif op == 8 and len(lines) > 1:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif lines:
            del lines[i:]
    out = b"\n".join(rechain(lines, signer, rng)) + b"\n"
    return havoc(out, rng) if rng.random() < 0.05 else out


def manifest_harness(work: Path, rng):
    signer, folders, identity_file = _recordings(work)
    identities = load_identities(identity_file)
    seeds = [(f / MANIFEST_FILE).read_bytes() for f in folders]
    enrolled = {CAMERA: signer.public_key}

    def entry(data: bytes):
        head = data[:4096].split(b"\n", 1)[0]     # the opened line names its recording
        folder = next((f for f in folders if f.name.encode() in head), folders[0])
        (folder / MANIFEST_FILE).write_bytes(data)
        pick = zlib.crc32(data) % 4                 # how the chief checks it: each way runs
        if pick == 0:
            verify_recording(folder, device_key=signer.public_key, identities=identities)
        elif pick == 1:
            verify_recording(folder, devices=enrolled, identities=identities)
        elif pick == 2:
            verify_recording(folder, devices={"CAM-OTHER-9": signer.public_key})
        else:
            verify_recording(folder)

    def close():
        for folder, seed in zip(folders, seeds, strict=True):
            (folder / MANIFEST_FILE).write_bytes(seed)
    return Harness(entry, seeds, lambda seed, rng: mutate_manifest(seed, rng, signer), close=close)


def _report_doc(mp4: Path, training: bool) -> dict:
    digest = hashlib.sha256(mp4.read_bytes()).hexdigest()
    doc = {"format": REPORT_CONTEXT, "extraction_id": "EXT-2026-0007", "purpose": "training" if training else "judicial",
           "requester": "OPJ Durand", "deliver_to": "Parquet d'Autun", "at": "2026-09-21T10:00:00Z",
           "mp4": {"name": mp4.name, "sha256": digest, "size": mp4.stat().st_size, "duration_s": 2.0}}
    if training:
        doc["sources"] = {"recordings": 2, "cameras": 1}
        doc["anonymised"] = {"faces": "blurred", "sound": "removed"}
    else:
        doc["recordings"] = [{"id": f"{CAMERA}_20260921T100000Z_000001", "camera": CAMERA,
                              "segments": [{"file": "seg-00001.ts.age", "sha256": "a" * 64}], "verified": True}]
    return doc


def report_harness(work: Path, rng):
    vault = FileSigner.create(work / "vault.key")
    mp4 = work / "extract.mp4"
    mp4.write_bytes(mpegts(frames=4))
    other = work / "other.mp4"
    other.write_bytes(mpegts(frames=4, seed=1))
    (work / "folder.mp4").mkdir()
    os.mkfifo(work / "fifo.mp4")        # never opened for writing: a reader that waited would hang
    seeds = [canonical(sign_document(_report_doc(mp4, training), REPORT_CONTEXT, vault)) for training in (False, True)]
    key = vault.public_key_hex
    report = work / "report.json"

    def resign(doc):
        try:
            return sign_document({k: v for k, v in doc.items() if k != "sig"}, REPORT_CONTEXT, vault)
        except (TypeError, ValueError):
            return doc

    def entry(data: bytes):
        report.write_bytes(data)
        pick = zlib.crc32(data) % 16        # the MP4 and key the report is checked with
        target = {0: other, 1: work / "missing.mp4", 2: work / "folder.mp4", 6: work / "fifo.mp4"}.get(pick, mp4)
        given = {3: "zz" + key[2:], 4: key[:32], 5: " " + key + "\n"}.get(pick, key)
        check_report(report, target, given)
    return Harness(entry, seeds, lambda seed, rng: mutate_json(seed, rng, resign=resign))
