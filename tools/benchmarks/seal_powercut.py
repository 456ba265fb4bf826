"""`pieton bench seal_powercut` (also the second half of `pieton bench seal`): seconds of a
steady 4 Mbit/s stream lost to a power cut, median and worst over 50 cuts (`--quick`: 10).

SIGKILL alone is not a power cut: the page cache survives it. So a writer subprocess
records through the real Spool and reports every fsync it completes (each file's durable
length, each folder's entries when the folder is fsynced). The harness kills it at a
random instant, then does what a power cut would have done: every file is cut back to its
last durable length, names the folder never made durable vanish (a rename not followed by
a folder fsync is undone). Then recovery runs as at the next boot, every segment is
decrypted with the chief's identity, and the bytes the stream had produced by the cut but
that cannot be read back are the loss. Target: worst <= 0.75 s.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from pathlib import Path

from drivers.signer import FileSigner
from recorder.errors import AgeError
from recorder.evidence.age import decrypt
from recorder.evidence.spool import Spool
from recorder.evidence.verify import verify_recording
from tools.benchmarks._powercut_harness import cut_workspace, kill_at_random, report_durable, say

BITRATE = 4_000_000            # bit/s, 720p30
FPS = 30
FRAME = BITRATE // 8 // FPS    # bytes per frame write
SEGMENT_S = 2.0
SYNC_INTERVAL = 0.5
CAMERA = "CAM-BENCH-001"
TARGET_WORST_S = 0.75


# -- the writer (child process) ---------------------------------------------------------
def writer_main(spool_dir: str, key_file: str, recipient: str) -> None:
    spool = Spool(spool_dir, FileSigner(key_file), [recipient], CAMERA, "0" * 64, True,
                  sync_interval=SYNC_INTERVAL, min_free_bytes=0, observer=report_durable)
    spool.recover()
    rec = spool.open_recording(time.time(), "bench", {"clock_source": "rtc"})
    payload = os.urandom(FRAME)
    start = time.monotonic()
    say({"k": "start", "t": start, "rec": str(rec.path)})
    frame = 0
    seg = rec.open_segment()
    while True:
        seg.write(payload)
        frame += 1
        if frame % int(SEGMENT_S * FPS) == 0:
            seg.seal()
            seg = rec.open_segment()
        delay = start + frame / FPS - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def _recoverable_plaintext(folder: Path, identities) -> int:
    total = 0
    for path in sorted(folder.iterdir()):
        if ".ts.age" in path.name:
            try:
                total += len(decrypt(path, identities).plaintext)
            except AgeError:
                pass  # cut inside its header: nothing readable, counted as lost
    return total


def one_cut(work: Path, key_file: Path, recipient: str, identities, rng: random.Random) -> dict:
    spool_dir = work / "spool"
    start, killed_at, model = kill_at_random("tools.benchmarks.seal_powercut:writer_main",
                                             [str(spool_dir), str(key_file), recipient], rng, (0.3, 6.3), 30)
    produced = BITRATE / 8 * (killed_at - start["t"])
    with Spool(spool_dir, FileSigner(key_file), [recipient], CAMERA, "0" * 64, True, min_free_bytes=0) as spool:
        recovered = spool.recover()
    folder = Path(start["rec"])
    kept = _recoverable_plaintext(folder, identities)
    report = verify_recording(folder, device_key=FileSigner(key_file).public_key)
    return {"at_s": round(killed_at - start["t"], 3), "lost_s": round(max(0.0, produced - kept) / (BITRATE / 8), 3),
            "recovered_lines": len(recovered), "verify": report.status,
            "problems": [str(p) for p in report.problems], **model}


def power_cut(args) -> dict:
    cuts = 10 if getattr(args, "quick", False) else 50
    with cut_workspace("pieton-bench-powercut-") as (work, key_file, identity, recipient, rng):
        print(f"power cut: {cuts} cuts of a steady {BITRATE / 1e6:g} Mbit/s stream "
              f"({SEGMENT_S:g} s segments, fsync every {SYNC_INTERVAL} s)", flush=True)
        results = []
        for i in range(cuts):
            r = one_cut(work, key_file, recipient, [identity], rng)
            results.append(r)
            print(f"  cut {i + 1:2d} at {r['at_s']:6.3f} s: lost {r['lost_s']:.3f} s, verify {r['verify']}"
                  + (f" PROBLEMS {r['problems']}" if r["problems"] else ""), flush=True)
        lost = [r["lost_s"] for r in results]
        figures = {"cuts": cuts, "median_lost_s": round(statistics.median(lost), 3),
                   "worst_lost_s": round(max(lost), 3), "target_worst_s": TARGET_WORST_S,
                   "verify_failures": sum(1 for r in results if r["verify"] == "failed"),
                   "renames_undone": sum(r["renames_undone"] for r in results)}
        print(f"  seconds lost: median {figures['median_lost_s']:.3f} s, worst {figures['worst_lost_s']:.3f} s "
              f"(target worst <= {TARGET_WORST_S} s); recordings failing verification: "
              f"{figures['verify_failures']}; renames undone by the cut model: {figures['renames_undone']}",
              flush=True)
        return figures


def run(args) -> dict:
    return power_cut(args)
