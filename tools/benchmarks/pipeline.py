"""`pieton bench pipeline`: CPU cost of our media pipeline against the peer a user would
script instead, on the same raw input, in the same run.

Input (made once, cached): raw 1280x720 30 fps I420 video of the simulated street and a
48 kHz mono WAV of the simulated room, 60 s (10 s with --quick).

(a) ours, in bench mode: a replay camera and microphone feed ``MediaPipeline`` on a
    virtual clock (as fast as the CPU allows): overlay, libx264, AAC, MPEG-TS segments,
    age encryption with fsyncs, signed manifest and metadata: the device's code path.
(b) the peer: ``ffmpeg`` with the same x264 settings, ``drawtext`` for the overlay, AAC,
    ``-f segment -segment_time 2``, then ``age -r`` on each segment.

Both run as child processes; CPU seconds are the children's user + system time. Five runs
(two with --quick, N with --count N), ours and the peer alternating; the ratio is taken per
run and its median, quartiles and spread are printed. Target: median and upper quartile
<= 1.00.

With ``PIETON_BENCH_BASELINE=DIR`` (another checkout, e.g. ``git worktree add DIR main``)
each run also runs that checkout's pipeline, fed by this harness (same replay devices), so
a change is measured against the code before it on the same loaded machine, interleaved.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

import numpy as np

from drivers.acoustics import Room
from drivers.camera import Camera, RawFrame, SimulatedCamera
from drivers.microphone import AudioBlock, Microphone
from drivers.signer import FileSigner
from recorder.clock import SimulatedWallClock, VirtualClockLoop
from recorder.config import load_config
from recorder.evidence.age import generate_identity
from recorder.evidence.spool import Spool
from recorder.media.pipeline import MediaPipeline

WIDTH, HEIGHT, FPS, RATE = 1280, 720, 30, 48000
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
AGENT = "4521"


def cache_dir() -> Path:
    path = Path(os.environ.get("PIETON_BENCH_DIR", Path(tempfile.gettempdir()) / "pieton-bench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def make_input(seconds: int) -> tuple[Path, Path]:
    """The raw video and the WAV, generated once per length."""

    folder = cache_dir()
    raw = folder / f"street-{WIDTH}x{HEIGHT}-{FPS}-{seconds}s.yuv"
    wav = folder / f"street-{RATE}-{seconds}s.wav"
    frame_bytes = WIDTH * HEIGHT * 3 // 2
    if not raw.exists() or raw.stat().st_size != frame_bytes * FPS * seconds:
        camera = SimulatedCamera(WIDTH, HEIGHT, FPS, lux=500.0)
        tmp = raw.with_suffix(".part")
        with open(tmp, "wb") as f:
            for i in range(FPS * seconds):
                f.write(camera.render_still(i).tobytes())
        tmp.rename(raw)
    if not wav.exists():
        room = Room(seed=11)
        samples = room.render(0.0, RATE * seconds, RATE)
        tmp = wav.with_suffix(".part")
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
        tmp.rename(wav)
    return raw, wav


# -- (a) ours, in a child process ------------------------------------------------------------

def _replay_devices(raw: Path, wav: Path):
    class ReplayCamera(Camera):
        """Frames from a raw I420 file at its nominal rate on the loop's clock.

        Each frame is read (in the worker, when the pipeline asks for it) into one of a few
        buffers used in turn, as a sensor hands over its ring of buffers and as the peer's
        demuxer reads the same file: the frame source costs both sides one read. (A
        copy-on-write memmap charged ours a page fault and a page copy per 4 KiB the caption
        touched, about 0.14 ms a frame that neither the peer nor a sensor pays.)"""

        backend = "replay"
        BUFFERS = 4  # a frame is read when the worker takes it: only the one being encoded holds one

        def __init__(self, path: Path):
            super().__init__(WIDTH, HEIGHT, FPS)
            self.file = open(path, "rb", buffering=0)
            self.frame_bytes = WIDTH * HEIGHT * 3 // 2
            self.count = os.fstat(self.file.fileno()).st_size // self.frame_bytes
            self.buffers = [np.empty((HEIGHT * 3 // 2, WIDTH), np.uint8) for _ in range(self.BUFFERS)]

        def _read(self, i: int) -> np.ndarray:
            buffer = self.buffers[i % self.BUFFERS]
            view = memoryview(buffer).cast("B")
            got = os.preadv(self.file.fileno(), [view], i * self.frame_bytes)
            if got != self.frame_bytes:
                raise OSError(f"replay frame {i}: read {got} of {self.frame_bytes} bytes")
            return buffer

        def start(self, loop, callback):
            self._loop, self._callback, self._t0, self._i = loop, callback, loop.time(), 0
            self._started = True
            loop.call_at(self._t0, self._tick)

        def _tick(self):
            i = self._i
            if self._closed or i >= self.count:
                return
            self._i += 1
            self._callback(RawFrame(i, self._t0 + i / FPS, WIDTH, HEIGHT, lambda: self._read(i)))
            self._loop.call_at(self._t0 + self._i / FPS, self._tick)

        def light_level(self):
            return 500.0

    class ReplayMicrophone(Microphone):
        backend = "replay"

        def __init__(self, path: Path):
            super().__init__(RATE)
            with wave.open(str(path), "rb") as w:
                self.samples = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768

        def start(self, loop, callback):
            self._loop, self._callback, self._t0, self._k = loop, callback, loop.time(), 0
            self._started = True
            loop.call_at(self._t0 + 0.02, self._tick)

        def _tick(self):
            n = 960
            start = self._k * n
            if self._closed or start >= len(self.samples):
                return
            self._k += 1
            self._callback(AudioBlock(self.samples[start:start + n], start, self._t0 + self._k * 0.02))
            self._loop.call_at(self._t0 + (self._k + 1) * 0.02, self._tick)

    return ReplayCamera(raw), ReplayMicrophone(wav)


def run_ours(raw: Path, wav: Path, out: Path, seconds: float, recipient: str) -> dict:
    """The child: replay -> MediaPipeline -> Spool. Prints its figures as JSON."""
    import asyncio


    config = load_config()
    loop = VirtualClockLoop(start=100.0)
    wall = SimulatedWallClock(loop, 1_790_000_000.0)
    signer = FileSigner.create(out / "state" / "device-signing.key")
    spool = Spool(out / "spool", signer, [recipient], "CAM-SIM-001", config.digest, False,
                  sync_interval=config.storage.sync_interval_s, wall_clock=wall, monotonic=loop.time,
                  min_free_bytes=0)
    camera, microphone = _replay_devices(raw, wav)
    pipeline = MediaPipeline(config, camera, microphone, None, loop=loop, wall_clock=wall)
    pipeline.set_agent(AGENT)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()

    async def main():
        pipeline.arm()
        rec = spool.open_recording(wall.now(), "agent", {"clock_source": "gps"})
        pipeline.start_recording(rec)
        await asyncio.sleep(seconds - 0.01)
        summary = await pipeline.stop_recording()
        summary["threads"] = thread_cpu()  # before the close ends the worker threads
        rec.close("stop")
        await pipeline.close()
        return summary

    summary = loop.run_until_complete(main())
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    loop.close()
    camera.file.close()  # only now: a frame still queued for the worker reads it at the close
    spool.close()
    return {"segments": summary["segments"], "frames": summary["frames"]["encoded"], "threads": summary["threads"],
            "dropped": summary["frames"]["dropped"], "wall_s": time.perf_counter() - t0,
            "cpu_in_pipeline_s": (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)}


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process so far, by thread name (Linux)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    cpu: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        name = names.get(int(task.name), "other (libraries' own threads)")
        name = name.rstrip("_0123456789") if name.startswith("pieton-") else name
        cpu[name] = cpu.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return cpu


# -- (b) the peer -------------------------------------------------------------------------------

def run_peer(raw: Path, wav: Path, out: Path, recipient: str, threads: int | None = None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    font = f"fontfile={FONT}" if Path(FONT).exists() else "font=Sans"
    drawtext = (f"drawtext={font}:text='%{{gmtime}} UTC  CAM-SIM-001  AG {AGENT}':"
                "x=21:y=28:fontsize=23:fontcolor=white:borderw=2:bordercolor=black")
    kbps = 4000
    cmd = ["ffmpeg", "-v", "error", "-y",
           "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS), "-i", str(raw),
           "-i", str(wav), "-vf", drawtext,
           "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(FPS),
           "-keyint_min", str(FPS), "-bf", "0", "-sc_threshold", "0", "-b:v", f"{kbps}k",
           "-maxrate", f"{kbps}k", "-bufsize", f"{kbps}k", "-pix_fmt", "yuv420p",
           *(["-threads", str(threads)] if threads else []),
           "-c:a", "aac", "-b:a", "64k", "-ac", "1", "-ar", str(RATE),
           "-f", "segment", "-segment_time", "2", "-segment_format", "mpegts", str(out / "seg-%05d.ts")]
    subprocess.run(cmd, check=True)
    segments = sorted(out.glob("seg-*.ts"))
    for seg in segments:
        subprocess.run(["age", "-r", recipient, "-o", str(seg) + ".age", str(seg)], check=True)
    return {"segments": len(segments)}


def warm(*paths: Path) -> None:
    """Read the input once before the runs: the first run (ours) must not be the one that
    pays reading it from the disk into the page cache, whose kernel time counts as its CPU."""
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while f.read(1 << 22):
                pass


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


TARGET_RATIO = 1.00


def run(args) -> dict:
    seconds = 10 if getattr(args, "quick", False) else 60
    # ours and the peer alternate, so a disturbance hits both; the ratio is taken per run
    repeats = getattr(args, "count", None) or (2 if getattr(args, "quick", False) else 5)
    print(f"load average {os.getloadavg()[0]:.2f}; {repeats} runs", flush=True)
    for tool in ("ffmpeg", "age"):
        if shutil.which(tool) is None:
            print(f"{tool} not found: install it (make system)")
            return {"error": f"{tool} missing"}
    t = time.perf_counter()
    raw, wav = make_input(seconds)
    print(f"input: {WIDTH}x{HEIGHT} {FPS} fps I420 + {RATE} Hz WAV, {seconds} s "
          f"(ready in {time.perf_counter() - t:.1f} s, cached in {raw.parent})", flush=True)
    warm(raw, wav)
    _, recipient = generate_identity()
    ours, peer, peer1, inner, ours_info, peer_info = [], [], [], [], {}, {}
    baseline = os.environ.get("PIETON_BENCH_BASELINE") or None
    base, base_inner, threads = [], [], []
    if baseline and not (Path(baseline) / "recorder" / "media" / "pipeline.py").is_file():
        print(f"PIETON_BENCH_BASELINE={baseline}: not a pieton checkout (no recorder/media/pipeline.py)")
        return {"error": "baseline is not a pieton checkout"}
    precompile(None)
    if baseline:
        precompile(baseline)
    with tempfile.TemporaryDirectory(prefix="pieton-bench-pipeline-") as tmp:
        for n in range(repeats):
            def ours_run(n=n, where=None, cpu=ours, inner=inner):
                out = Path(tmp) / f"ours{n}{'-baseline' if where else ''}"
                before = _children_cpu()
                proc = subprocess.run(_child_command(where, raw, wav, out, seconds, recipient),
                                      capture_output=True, text=True, cwd=where, env=_child_env(where))
                if proc.returncode != 0:
                    print(proc.stderr)
                    raise SystemExit("our pipeline failed" + (f" (baseline {where})" if where else ""))
                cpu.append((_children_cpu() - before) / seconds)
                info = json.loads(proc.stdout.strip().splitlines()[-1])
                inner.append(info["cpu_in_pipeline_s"] / seconds)
                if where is None:
                    threads.append(info.get("threads", {}))
                return info

            def peer_run(n=n):
                before = _children_cpu()
                info = run_peer(raw, wav, Path(tmp) / f"peer{n}", recipient)
                peer.append((_children_cpu() - before) / seconds)
                return info

            if n % 2 == 0:  # A/B, B/A: neither always runs first
                ours_info, peer_info = ours_run(), peer_run()
            else:
                peer_info, ours_info = peer_run(), ours_run()
            if baseline:
                ours_run(where=baseline, cpu=base, inner=base_inner)
            before = _children_cpu()
            run_peer(raw, wav, Path(tmp) / f"peer1t{n}", recipient, threads=1)
            peer1.append((_children_cpu() - before) / seconds)
            print(f"  run {n + 1}: ours {ours[-1]:.3f} CPU s/s (pipeline alone {inner[-1]:.3f}), "
                  f"peer {peer[-1]:.3f} CPU s/s, ratio {ours[-1] / peer[-1]:.3f}; peer with one x264 thread "
                  f"{peer1[-1]:.3f}" + (f"; baseline {base[-1]:.3f} CPU s/s (pipeline alone {base_inner[-1]:.3f}), "
                                        f"ratio {base[-1] / peer[-1]:.3f}" if baseline else "")
                  + f"; load average {os.getloadavg()[0]:.2f}", flush=True)
    ours_s, peer_s, inner_s = float(np.median(ours)), float(np.median(peer)), float(np.median(inner))
    peer1_s = float(np.median(peer1))
    ratios = np.array(ours) / np.array(peer)
    q1, median, q3 = (float(np.percentile(ratios, q)) for q in (25, 50, 75))
    result = {
        "seconds_of_video": seconds, "runs": repeats,
        "ours_cpu_s_per_s": round(ours_s, 4), "ours_pipeline_only_cpu_s_per_s": round(inner_s, 4),
        "peer_cpu_s_per_s": round(peer_s, 4), "ratio": round(median, 3),
        "ratio_q1": round(q1, 3), "ratio_q3": round(q3, 3),
        "ratio_min": round(float(ratios.min()), 3), "ratio_max": round(float(ratios.max()), 3),
        "peer_one_thread_cpu_s_per_s": round(peer1_s, 4), "ratio_vs_one_thread_peer": round(ours_s / peer1_s, 3),
        "ours_segments": ours_info.get("segments"), "peer_segments": peer_info.get("segments"),
        "ours_frames": ours_info.get("frames"), "ours_dropped": ours_info.get("dropped"),
        "ours_speed_x_realtime": round(seconds / ours_info.get("wall_s", 1), 2), "target_ratio": TARGET_RATIO,
        "ok": median <= TARGET_RATIO and q3 <= TARGET_RATIO, "load_average": round(os.getloadavg()[0], 2),
    }
    names = sorted({name for run_threads in threads for name in run_threads})
    result["ours_threads_cpu_s_per_s"] = {
        name: round(float(np.median([t.get(name, 0.0) for t in threads])) / seconds, 4) for name in names}
    if baseline:
        base_ratios = np.array(base) / np.array(peer)
        result["baseline"] = {"checkout": baseline, "cpu_s_per_s": round(float(np.median(base)), 4),
                              "ratio": round(float(np.median(base_ratios)), 3),
                              "ratio_q1": round(float(np.percentile(base_ratios, 25)), 3),
                              "ratio_q3": round(float(np.percentile(base_ratios, 75)), 3),
                              "ours_over_baseline": round(float(np.median(np.array(ours) / np.array(base))), 3)}
    print(f"ours: {ours_s:.3f} CPU s per s of video (whole process; pipeline alone {inner_s:.3f}), "
          f"{result['ours_segments']} segments, {result['ours_frames']} frames, "
          f"{result['ours_speed_x_realtime']}x real time")
    print("ours by thread, CPU s per s of video (start-up in MainThread): " + ", ".join(
        f"{name} {cpu:.3f}" for name, cpu in result["ours_threads_cpu_s_per_s"].items()))
    print(f"peer (ffmpeg + drawtext + segment, then age -r per segment): {peer_s:.3f} CPU s per s, "
          f"{result['peer_segments']} segments")
    print(f"the same peer with -threads 1 (our encoder's threading): {peer1_s:.3f} CPU s per s")
    print(f"ratio ours/peer, per run: median {median:.3f}, quartiles {q1:.3f} .. {q3:.3f}, spread "
          f"{result['ratio_min']:.3f} .. {result['ratio_max']:.3f} over {repeats} runs (target: median and upper "
          f"quartile <= {TARGET_RATIO:.2f}: {'OK' if result['ok'] else 'MISSED'}); against the one-thread "
          f"peer: {result['ratio_vs_one_thread_peer']:.3f}; load average {result['load_average']}")
    if baseline:
        b = result["baseline"]
        print(f"baseline {baseline}: {b['cpu_s_per_s']:.3f} CPU s per s, ratio to the peer median {b['ratio']:.3f} "
              f"(quartiles {b['ratio_q1']:.3f} .. {b['ratio_q3']:.3f}); ours / baseline per run, median "
              f"{b['ours_over_baseline']:.3f}")
    return result


def _child_command(where: str | None, raw: Path, wav: Path, out: Path, seconds: float, recipient: str) -> list[str]:
    """Our pipeline in a child; with ``where``, that checkout's pipeline fed by this harness."""
    args = ["--child", str(raw), str(wav), str(out), str(seconds), recipient]
    if where is None:
        return [sys.executable, "-m", "tools.benchmarks.pipeline", *args]
    script = ("import runpy, sys; sys.argv = sys.argv[1:]; "
              "runpy.run_path(sys.argv[0], run_name='__main__')")
    return [sys.executable, "-c", script, __file__, *args]


CHECKOUT = Path(__file__).resolve().parents[2]
RECORDER_UNIT = Path("systemd") / "pieton-recorder.service"


def daemon_environment(checkout: Path = CHECKOUT) -> dict:
    """The ``Environment=`` settings of the checkout's recorder unit (systemd): our child
    runs as the daemon does on the camera."""
    env = {}
    for line in (checkout / RECORDER_UNIT).read_text().splitlines():
        if line.startswith("Environment="):
            key, _, value = line[len("Environment="):].partition("=")
            env[key] = value
    return env


def _child_env(where: str | None) -> dict:
    env = {**os.environ, **daemon_environment(Path(where) if where else CHECKOUT)}
    if where is not None:
        env["PYTHONPATH"] = str(Path(where).resolve())
    # The camera runs byte-compiled modules (pip compiles them at install); a shell that sets
    # PYTHONDONTWRITEBYTECODE would have each child compile ~60 modules from source (~0.1 s
    # of CPU, 2% of a 60 s run) that neither the daemon nor the peer pays: precompile().
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def precompile(where: str | None) -> None:
    """Byte-compile the checkout's packages for the children (see _child_env)."""
    root = Path(where).resolve() if where else CHECKOUT
    subprocess.run([sys.executable, "-m", "compileall", "-q", *(str(root / p) for p in ("drivers", "recorder", "tools"))],
                   check=True, env=_child_env(where), stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "--child":
        _, _, raw_, wav_, out_, seconds_, recipient_ = sys.argv
        figures = run_ours(Path(raw_), Path(wav_), Path(out_), float(seconds_), recipient_)
        print(json.dumps(figures))
    else:
        print("usage: pieton bench pipeline [--quick]")
        sys.exit(2)
