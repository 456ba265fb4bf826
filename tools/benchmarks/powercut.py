"""`pieton bench powercut`: seconds of video lost before a power cut, at the media level.

A child process records in real time through the device's code path (simulated 720p30
camera and microphone -> MediaPipeline -> Spool) and reports every fsync it completes, as
in the evidence issue's harness (`bench seal_powercut`, whose power-cut model is reused):
the harness kills it at a random instant during a recording, cuts every file back to its
last durable length and undoes renames whose folder was never fsynced. Recovery then runs
as at the next start, every segment is decrypted with the chief's identity and decoded
with PyAV, and the burnt-in frame counter of the last decodable frame gives its capture
time. Loss = cut time - end of that frame. Median and worst over 20 cuts (5 with --quick).
Target: worst <= 0.5 s. Also printed: the fsyncs per second and the bytes made durable per
second from the press to the cut, what the durability costs an SD card in wear.
"""

from __future__ import annotations

import io
import os
import random
import statistics
from pathlib import Path

from drivers.acoustics import Room
from drivers.camera import open_camera, read_counter
from drivers.gpio import reset_simulated_pins
from drivers.ir import open_ir
from drivers.microphone import open_microphone
from drivers.signer import FileSigner
from recorder.clock import WallClock
from recorder.config import load_config
from recorder.errors import AgeError
from recorder.evidence.age import decrypt
from recorder.evidence.spool import Spool
from recorder.media.pipeline import MediaPipeline
from tools.benchmarks._powercut_harness import cut_workspace, kill_at_random, report_durable, say

TARGET_WORST_S = 0.5
CAMERA = "CAM-BENCH-002"


# -- the recorder (child process) -------------------------------------------------------------
def recorder_main(spool_dir: str, key_file: str, recipient: str) -> None:
    import asyncio


    reset_simulated_pins()
    config = load_config()
    loop = asyncio.new_event_loop()
    wall = WallClock()
    spool = Spool(spool_dir, FileSigner(key_file), [recipient], CAMERA, config.digest, False,
                  sync_interval=config.storage.sync_interval_s, wall_clock=wall, min_free_bytes=0,
                  observer=report_durable)
    spool.recover()
    camera = open_camera("simulated", config)
    pipeline = MediaPipeline(config, camera, open_microphone("simulated", config, room=Room(seed=9)),
                             open_ir("simulated", config), loop=loop, wall_clock=wall)

    async def main():
        pipeline.arm()
        await asyncio.sleep(1.0)
        rec = spool.begin_recording(wall.now(), "agent", {"clock_source": "ntp"})  # as the daemon does
        pipeline.start_recording(rec)
        say({"k": "start", "t0": camera._t0, "fps": camera.fps, "rec": str(rec.path), "press": loop.time()})
        await asyncio.sleep(3600)

    loop.run_until_complete(main())


# -- the harness ------------------------------------------------------------------------------
def last_frame(folder: Path, identities) -> tuple[int | None, int]:
    """The highest frame counter decodable from the recording's segments, and the segment count."""
    import av


    best = None
    count = 0
    for path in sorted(folder.iterdir()):
        if ".ts.age" not in path.name:
            continue
        count += 1
        try:
            plaintext = decrypt(path, identities).plaintext
        except AgeError:
            continue  # cut inside its header: nothing readable
        if not plaintext:
            continue
        try:
            with av.open(io.BytesIO(plaintext), format="mpegts") as container:
                if not container.streams.video:
                    continue
                for frame in container.decode(video=0):
                    n = read_counter(frame.to_ndarray(format="gray"))
                    if n is not None and (best is None or n > best):
                        best = n
        except av.FFmpegError:
            pass  # a torn tail: what decoded before it counts
    return best, count


def one_cut(work: Path, key_file: Path, recipient: str, identities, rng: random.Random) -> dict:
    spool_dir = work / "spool"
    start, killed_at, model = kill_at_random("tools.benchmarks.powercut:recorder_main",
                                             [str(spool_dir), str(key_file), recipient], rng, (1.0, 7.0))
    with Spool(spool_dir, FileSigner(key_file), [recipient], CAMERA, "0" * 64, False, min_free_bytes=0) as spool:
        spool.recover()
    last, segments = last_frame(Path(start["rec"]), identities)
    if last is None:
        lost = killed_at - start["press"]
    else:
        lost = killed_at - (start["t0"] + (last + 1) / start["fps"])
    return {"at_s": round(killed_at - start["press"], 3), "lost_s": round(max(0.0, lost), 3),
            "recorded_s": killed_at - start["press"],
            "last_frame": last, "segments": segments, **model}


def run(args) -> dict:
    cuts = getattr(args, "count", None) or (5 if getattr(args, "quick", False) else 20)
    with cut_workspace("pieton-bench-media-powercut-") as (work, key_file, identity, recipient, rng):
        print(f"power cut: {cuts} cuts during a real-time 720p30 recording (default settings: 2 s segments, "
              "fsync at least every 0.5 s); loss = cut - end of the last decodable frame", flush=True)
        results = []
        for i in range(cuts):
            r = one_cut(work, key_file, recipient, [identity], rng)
            results.append(r)
            print(f"  cut {i + 1:2d} {r['at_s']:6.3f} s into the recording: last frame #{r['last_frame']}, "
                  f"lost {r['lost_s']:.3f} s of video ({r['files_cut']} files cut back, "
                  f"{r['renames_undone']} renames undone; media last fsynced "
                  f"{r.get('last_media_fsync_s', float('nan')):.3f} s before the cut, longest wait between "
                  f"media fsyncs {r.get('longest_media_fsync_gap_s', float('nan')):.3f} s)", flush=True)
        lost = [r["lost_s"] for r in results]
        seconds = sum(r["recorded_s"] for r in results)
        figures = {"cuts": cuts, "median_lost_s": round(statistics.median(lost), 3),
                   "worst_lost_s": round(max(lost), 3), "target_worst_s": TARGET_WORST_S,
                   "fsyncs_per_s": round(sum(r["fsyncs"] for r in results) / seconds, 2),
                   "durable_kb_per_s": round(sum(r["durable_bytes"] for r in results) / seconds / 1000, 1),
                   "load_average": round(os.getloadavg()[0], 2)}
        verdict = "OK" if figures["worst_lost_s"] <= TARGET_WORST_S else "MISSED"
        print(f"  seconds of video lost before the cut: median {figures['median_lost_s']:.3f} s, "
              f"worst {figures['worst_lost_s']:.3f} s (target worst <= {TARGET_WORST_S} s: {verdict})", flush=True)
        print(f"  what it costs the card, from the press to the cut: {figures['fsyncs_per_s']} fsyncs/s, "
              f"{figures['durable_kb_per_s']} kB/s made durable (segments, metadata, manifest); "
              f"load average {figures['load_average']}", flush=True)
        return figures
