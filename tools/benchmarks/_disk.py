"""The disk's own fsync tail, measured alone before a latency run: the floor under any
"durable" figure. A press is durable only after fsyncs; when the disk stalls one of them
(a virtual disk's host, an SD card's garbage collection), no pipeline can hide it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

STALL_MS = 50.0   # the press->durable target: one fsync this slow misses it alone


def fsync_probe(folder: Path, seconds: float = 20.0) -> dict:
    """Append 4 kB and fsync, every 5 ms, for ``seconds``; the latencies' tail and the stalls."""
    path = Path(folder) / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    latencies = []
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            os.write(fd, b"\0" * 4096)
            began = time.perf_counter()
            os.fsync(fd)
            latencies.append((time.perf_counter() - began) * 1000)
            time.sleep(0.005)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    latencies.sort()
    n = len(latencies)
    stalls = [ms for ms in latencies if ms > STALL_MS]
    return {"seconds": seconds, "fsyncs": n, "p50_ms": round(latencies[n // 2], 2),
            "p999_ms": round(latencies[min(n - 1, int(n * 0.999))], 2), "max_ms": round(latencies[-1], 1),
            "stalls": len(stalls)}


def describe(probe: dict) -> str:
    every = f"one every {probe['seconds'] / probe['stalls']:.0f} s" if probe["stalls"] else "none"
    return (f"this disk alone, before the run: {probe['fsyncs']} fsyncs of 4 kB in {probe['seconds']:.0f} s, "
            f"p50 {probe['p50_ms']:.2f} ms, p99.9 {probe['p999_ms']:.2f} ms, max {probe['max_ms']:.1f} ms; "
            f"stalls over {STALL_MS:.0f} ms: {probe['stalls']} ({every})")
