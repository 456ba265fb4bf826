"""The power-cut harness shared by `pieton bench seal` and `pieton bench powercut`.

SIGKILL alone is not a power cut (the page cache survives it), so the child process
reports every durable length (after each fsync) and every folder listing it made durable
on its stdout; after killing it at a random instant the harness truncates each file to its
last durable length and drops names whose folder was not fsynced.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from drivers.signer import FileSigner
from recorder.evidence.age import generate_identity

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def cut_workspace(prefix: str):
    """A scratch folder with a device key and a chief identity, and the random source of
    the cut instants (seeded by PIETON_BENCH_SEED to repeat a run); removed afterwards.
    Yields (folder, device key file, identity, recipient, rng)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        key_file = work / "state" / "device-signing.key"
        FileSigner.create(key_file)
        identity, recipient = generate_identity()
        rng = random.Random(int(os.environ.get("PIETON_BENCH_SEED", "0")) or None)
        yield work, key_file, identity, recipient, rng
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- the child's side: one JSON event a line on its stdout, unbuffered ---------------------------
def say(event: dict) -> None:
    os.write(1, (json.dumps(event) + "\n").encode())


def durable_event(kind: str, path: str, size: int) -> dict:
    """What one fsync made durable, as apply_power_cut reads it: a file's length, or the
    names of a folder (from a Spool observer's arguments)."""
    if kind == "dir":
        return {"k": "dir", "p": path, "names": sorted(os.listdir(path)), "t": time.monotonic()}
    return {"k": "file", "p": path, "n": size, "t": time.monotonic()}


def report_durable(kind: str, path: str, size: int) -> None:
    """The child's Spool observer."""
    say(durable_event(kind, path, size))


# -- the harness's side -----------------------------------------------------------------------
def kill_at_random(main: str, args: list[str], rng: random.Random, window: tuple[float, float],
                   start_timeout: float = 60.0) -> tuple[dict, float, dict]:
    """Run ``main`` ("module:function") in a child with ``args``, kill it a random time
    within ``window`` seconds after it reports its start, and apply the power-cut model.
    Returns (the child's start event, the kill's monotonic time, what the model undid)."""
    module, function = main.split(":")
    code = f"import sys; from {module} import {function}; {function}(*sys.argv[1:])"
    child = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, cwd=ROOT)
    events: list[dict] = []
    started = threading.Event()

    def read() -> None:
        for raw in child.stdout:
            event = json.loads(raw)
            events.append(event)
            if event["k"] == "start":
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not started.wait(start_timeout):
        child.kill()
        raise RuntimeError(f"{main} did not start")
    start = next(ev for ev in events if ev["k"] == "start")
    time.sleep(rng.uniform(*window))
    killed_at = time.monotonic()
    child.send_signal(signal.SIGKILL)
    child.wait()
    reader.join()
    model = apply_power_cut([ev for ev in events if ev["k"] != "start"])
    model.update(fsync_figures(events[events.index(start) + 1:]))
    model.update(media_sync_gaps(events, killed_at))
    return start, killed_at, model


def media_sync_gaps(events: list[dict], killed_at: float) -> dict:
    """When the media last became durable before the cut, and the longest wait between two
    fsyncs that made media durable (seconds): where a loss beyond the sync interval comes
    from (the child's monotonic clock is the harness's: same machine)."""
    times = [ev["t"] for ev in events if ev["k"] == "file" and ".ts.age" in ev["p"] and "t" in ev]
    if not times:
        return {}
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    return {"last_media_fsync_s": round(killed_at - times[-1], 3),
            "longest_media_fsync_gap_s": round(max(gaps, default=0.0), 3)}


def fsync_figures(events: list[dict]) -> dict:
    """What the fsyncs reported after the start cost: their count, and the bytes they made
    durable (growth of each file's durable length; on an SD card both are wear)."""
    durable: dict[str, int] = {}
    grown = 0
    for ev in events:
        if ev["k"] == "file":
            grown += max(0, ev["n"] - durable.get(ev["p"], 0))
            durable[ev["p"]] = ev["n"]
    return {"fsyncs": sum(1 for ev in events if ev["k"] in ("file", "dir")), "durable_bytes": grown}


def apply_power_cut(events: list[dict]) -> dict:
    """Put the spool in the state a power cut at the kill would have left."""
    durable: dict[str, int] = {}
    listing: dict[str, set[str]] = {}
    for ev in events:
        if ev["k"] == "file":
            durable[ev["p"]] = ev["n"]
        elif ev["k"] == "dir":
            listing[ev["p"]] = set(ev["names"])
    undone = dropped = 0
    for folder, names in listing.items():
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name in names:
                continue
            path = os.path.join(folder, name)
            if name + ".part" in names and not os.path.exists(path + ".part"):
                os.rename(path, path + ".part")     # the rename never became durable
                durable.setdefault(path + ".part", durable.get(path, 0))
                undone += 1
            elif os.path.isdir(path):
                shutil.rmtree(path)
                dropped += 1
            else:
                os.unlink(path)                      # created, never made durable
                dropped += 1
    cut = 0
    for folder in listing:
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                keep = durable.get(path, durable.get(path.removesuffix(".part") + ".part", 0))
                if os.path.getsize(path) > keep:
                    os.truncate(path, keep)
                    cut += 1
    return {"renames_undone": undone, "names_dropped": dropped, "files_cut": cut}


