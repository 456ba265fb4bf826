"""`pieton bench seal`: what sealing costs, against peers in the same run.

Throughput half: the same bytes (512 MiB, `--quick` 64 MiB) encrypted by our AgeWriter,
by the `age` CLI to the same recipient, and written plainly; median CPU seconds (user +
system) and MB per CPU second over 3 runs. Every output ends durable (fsync), as a
segment must: the kernel charges part of the write-back to the process that fsyncs, so
the plain write is not free. Then the share of one core needed to seal a
720p30 stream at 4 Mbit/s, fed as the segmenter feeds it (small writes, fsync every
0.5 s of stream time). The power-cut half lives in seal_powercut.py.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from recorder.errors import EvidenceError
from recorder.evidence.age import AgeWriter, decrypt, generate_identity
from tools.benchmarks.seal_powercut import power_cut

MIB = 1024 * 1024
BLOCK = MIB
RUNS = 3
STREAM_BITRATE = 4_000_000   # bit/s, 720p30 as configured by default
FPS = 30
TS_PACKET = 188


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _copy_blocks(src: Path, sink) -> None:
    with open(src, "rb", buffering=0) as f:
        while block := f.read(BLOCK):
            sink(block)


def _ours(src: Path, dst: Path, recipient: str) -> tuple[float, float]:
    cpu, wall = _cpu_self(), time.perf_counter()
    with open(dst, "wb") as out:
        writer = AgeWriter(out, [recipient], sync_interval=0.5)
        _copy_blocks(src, writer.write)
        writer.close()
    return _cpu_self() - cpu, time.perf_counter() - wall


def _age_cli(src: Path, dst: Path, recipient: str) -> tuple[float, float]:
    wall = time.perf_counter()
    proc = subprocess.Popen(["age", "-r", recipient, "-o", str(dst), str(src)])
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise EvidenceError(f"the age CLI exited with status {proc.returncode}")
    cpu = _cpu_self()
    fd = os.open(dst, os.O_RDONLY)   # the others end durable: so must age's output
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    cpu = _cpu_self() - cpu
    return usage.ru_utime + usage.ru_stime + cpu, time.perf_counter() - wall


def _plain(src: Path, dst: Path, recipient: str) -> tuple[float, float]:
    cpu, wall = _cpu_self(), time.perf_counter()
    with open(dst, "wb") as out:
        _copy_blocks(src, out.write)
        out.flush()
        os.fsync(out.fileno())
    return _cpu_self() - cpu, time.perf_counter() - wall


def _stream_share(work: Path, recipient: str, seconds: float, write_size: int) -> dict:
    """CPU share of one core to seal `seconds` of a 4 Mbit/s stream in writes of
    `write_size` bytes, on a virtual clock so the fsync rhythm is the real one."""
    rate = STREAM_BITRATE / 8
    payload = os.urandom(write_size)
    writes = int(seconds * rate / write_size)
    now = [0.0]
    step = write_size / rate
    fsyncs = []
    cpu = _cpu_self()
    with open(work / "stream.age", "wb") as out:
        writer = AgeWriter(out, [recipient], sync_interval=0.5, clock=lambda: now[0], on_durable=fsyncs.append)
        for _ in range(writes):
            now[0] += step
            writer.write(payload)
        writer.close()
    used = _cpu_self() - cpu
    os.unlink(work / "stream.age")
    return {"write_bytes": write_size, "stream_s": round(writes * step, 1), "cpu_s": round(used, 3),
            "core_share_pct": round(100 * used / (writes * step), 3), "fsyncs": len(fsyncs)}


def throughput(args) -> dict:
    size = (64 if getattr(args, "quick", False) else 512) * MIB
    if shutil.which("age") is None:
        print("the age CLI is not installed: install Debian's 'age' package")
        return {"error": "age CLI missing"}
    identity, recipient = generate_identity()
    work = Path(tempfile.mkdtemp(prefix="pieton-bench-seal-"))
    try:
        src = work / "plain.ts"
        with open(src, "wb") as f:
            for _ in range(size // MIB):
                f.write(os.urandom(MIB))
        contenders = {"ours": _ours, "age_cli": _age_cli, "plain_write": _plain}
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
        print(f"sealing {size // MIB} MiB, {RUNS} runs each; CPU = user + system seconds, including the "
              "fsync that makes each output durable (ours every 0.5 s, the others once at the end)", flush=True)
        for run in range(RUNS):
            for name, fn in contenders.items():
                dst = work / f"{name}.out"
                os.sync()   # start each run with no one else's dirty pages to write back
                samples[name].append(fn(src, dst, recipient))
                if name == "ours" and run == 0:  # our output must be real age: check once
                    with open(dst, "rb") as f, open(src, "rb") as g:
                        head = decrypt(f.read(200_000), [identity])
                        if head.chunks < 2 or head.plaintext != g.read(len(head.plaintext)):
                            raise EvidenceError(f"our sealed output does not decrypt: {head.reason}")
                os.unlink(dst)
        figures: dict = {"size_mib": size // MIB, "runs": RUNS}
        for name, runs in samples.items():
            cpu = statistics.median(c for c, _ in runs)
            wall = statistics.median(w for _, w in runs)
            figures[name] = {"cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
                             "mb_per_cpu_s": round(size / 1e6 / cpu, 1), "mb_per_wall_s": round(size / 1e6 / wall, 1)}
            print(f"  {name:12s} median CPU {cpu:7.3f} s  {size / 1e6 / cpu:8.1f} MB/CPU-s   "
                  f"wall {wall:7.3f} s  {size / 1e6 / wall:8.1f} MB/s", flush=True)
        ratio = figures["ours"]["mb_per_cpu_s"] / figures["age_cli"]["mb_per_cpu_s"]
        figures["ours_vs_age_cli"] = round(ratio, 3)
        print(f"  ours / age CLI throughput per CPU second: {ratio:.2f}x (target >= 0.8x)", flush=True)
        seconds = 30.0 if getattr(args, "quick", False) else 120.0
        figures["stream"] = []
        for write_size in (7 * TS_PACKET, STREAM_BITRATE // 8 // FPS // TS_PACKET * TS_PACKET):
            share = _stream_share(work, recipient, seconds, write_size)
            figures["stream"].append(share)
            print(f"  4 Mbit/s stream, {share['stream_s']} s in {write_size}-byte writes: CPU {share['cpu_s']} s "
                  f"= {share['core_share_pct']}% of one core ({share['fsyncs']} fsyncs; target <= 2%)", flush=True)
        figures["core_share_pct_worst"] = max(s["core_share_pct"] for s in figures["stream"])
        return figures
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args) -> dict:
    return {"throughput": throughput(args), "power_cut": power_cut(args)}
