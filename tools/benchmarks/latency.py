"""`pieton bench latency`: from the button to the agent's and the public's feedback.

The daemon runs on a real-time loop in its own thread with the default (720p30)
simulated hardware, media pipeline included; the benchmark presses the simulated button
(gpiozero MockFactory pin) from another thread, as gpiozero's own threads do on a Pi.
Measured: press edge -> red light on; release of a press shorter than the flagrant-délit
hold -> start of notice playback; press edge -> first durable age chunk holding media
captured after the press, with the trace of the median and the slowest press stage by
stage. Targets: light <= 10 ms p99, notice <= 150 ms p99, durable media <= 50 ms p99.
300 recordings (about 11 minutes), 60 with --quick, N with --count N; `--prebuffer S`
sets the pre-event ring (0: off, when the armed pipeline encodes nothing until the press).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from recorder.config import Section, load_config
from recorder.daemon import Daemon, Options
from recorder.evidence.age import generate_identity
from tools.benchmarks._disk import describe, fsync_probe
from tools.benchmarks._logs import counted

GESTURES = ("short", "double", "long")


# what each step of a press's trace (recorder.media.segmenter.Segmenter.trace) is
STAGES = {
    "button": "button pressed (the bench's edge)",
    "opening": "press taken, the recording about to be opened",
    "press": "the pipeline's press: media captured from here is post-press",
    "worker_began": "the media worker takes the recording (its opening's fsyncs go on meanwhile)",
    "opened_line_durable": "opening thread: signed opened line fsynced, in .opening-<id>",
    "in_place": "  ... renamed into place, spool folder fsynced: segments may open",
    "opening_journalled": "  ... 'recording opened' in the device journal",
    "ring_handed": "pre-event ring handed over, held in memory",
    "captured": "first post-press packet captured (camera clock)",
    "received": "  ... encoded, reaches the segmenter",
    "segments_opened_ahead": "span's and press's segments open (opener thread, 6 fsyncs, once in place)",
    "segment_opened": "press's segment taken",
    "muxed": "press's packet muxed (MPEG-TS)",
    "flushed": "muxer's interleaving queue flushed into the age writer",
    "padded": "null TS packets up to the end of the age chunk",
    "durable": "fsync of the segment + signed progress line: DURABLE",
    "span_sealed": "pre-event span muxed, encrypted, sealed",
}


def trace_lines(trace: dict[str, float], origin: str) -> list[str]:
    """One press, step by step: ms since ``origin`` and since the step before."""
    t0 = trace[origin]
    lines, last = [], t0
    for stage, t in sorted(trace.items(), key=lambda kv: kv[1]):
        lines.append(f"    {1000 * (t - t0):7.1f} ms  (+{1000 * (t - last):5.1f})  {stage:22} "
                     f"{STAGES.get(stage, '')}")
        last = max(last, t)
    return lines


def longest_step(trace: dict[str, float]) -> tuple[str, float]:
    """The step of a press that took longest since the one before: where a slow press waited."""
    steps = sorted(trace.items(), key=lambda kv: kv[1])
    gaps = [(later[0], 1000 * (later[1] - earlier[1])) for earlier, later in itertools.pairwise(steps)]
    return max(gaps, key=lambda gap: gap[1])


def print_traces(traces: list[tuple[float, dict]], origin: str, target_ms: float = 50.0) -> None:
    """The median press and the slowest, stage by stage; each press over the target by its longest step."""
    ranked = sorted(traces, key=lambda x: x[0])
    for label, (ms, trace) in (("median", ranked[len(ranked) // 2]), ("slowest", ranked[-1])):
        print(f"  trace of the {label} press ({ms:.1f} ms):")
        for line in trace_lines(trace, origin):
            print(line)
    over = [(ms, longest_step(trace)) for ms, trace in ranked if ms > target_ms]
    print(f"  presses over {target_ms:.0f} ms: {len(over)} of {len(ranked)}" + ("; each, its longest step:" if over else ""))
    for ms, (stage, step_ms) in over:
        print(f"    {ms:7.1f} ms: {stage} +{step_ms:.1f} ms")


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    index = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[index]


def with_prebuffer(config, seconds: float | None):
    """The configuration with the pre-event ring's length set (None: as configured)."""
    if seconds is None:
        return config
    section = Section("prebuffer", {**config.prebuffer.as_dict(), "seconds": float(seconds)})
    return replace(config, sections={**config.sections, "prebuffer": section})


class Rig:
    def __init__(self, state_dir: Path, prebuffer: float | None = None):
        config = with_prebuffer(load_config(), prebuffer)
        _, recipient = generate_identity()
        self.loop = asyncio.new_event_loop()
        self.daemon = Daemon(config, Options(state_dir, [recipient], simulated=True, control_socket=False,
                                             notify=False), loop=self.loop)
        ready = threading.Event()

        def main():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.daemon.start())
            ready.set()
            self.loop.run_until_complete(self.daemon.wait_stopped())
            self.loop.run_until_complete(self.daemon.shutdown("benchmark over"))

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()
        ready.wait(60)
        self.machine = self.daemon.machine
        self.button = self.daemon.hardware.button
        self.speaker = self.daemon.hardware.speaker
        self.pipeline = self.daemon.sessions.pipeline
        self.media_ms: list[float] = []
        self.traces: list[tuple[float, dict]] = []

    def red_on_after(self, t: float) -> float | None:
        for change in reversed(self.machine.feedback.timeline):
            if change.device == "red" and change.on and change.time >= t:
                return change.time
        return None

    def stop_recording(self) -> None:
        done = threading.Event()

        def stop():
            task = self.machine.stop("benchmark")
            if task is None:
                done.set()
            else:
                task.add_done_callback(lambda _t: done.set())

        self.loop.call_soon_threadsafe(stop)
        done.wait(30)
        time.sleep(0.3)   # back to armed, lights settled

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.daemon.request_stop)
        self.thread.join(60)
        self.loop.close()


def one(rig: Rig, gesture: str) -> tuple[float | None, float | None]:
    """One gesture from armed; returns (press->red light, release->notice) in ms."""
    held = {"short": 0.15, "double": 0.12, "long": 2.0}[gesture]
    rig.speaker.last_start = None
    press = time.monotonic()
    rig.button.press()
    time.sleep(held)
    release = time.monotonic()
    rig.button.release()
    if gesture == "double":
        time.sleep(0.25)
        rig.button.press()
        time.sleep(0.12)
        rig.button.release()
    time.sleep(0.9)  # the double-press window closes, the reason settles
    red = rig.red_on_after(press)
    notice = rig.speaker.last_start
    rig.stop_recording()
    # media: press edge -> first fsync of an age chunk holding media captured after the press
    durable_at = rig.pipeline.router.first_durable_at
    if durable_at is not None and durable_at > press:
        rig.media_ms.append((durable_at - press) * 1000)
        opening = rig.daemon.sessions.spool.current   # the recording just closed
        rig.traces.append((rig.media_ms[-1], {"button": press, **rig.pipeline.router.press_trace,
                                              **(opening.trace if opening is not None else {})}))
    led_ms = (red - press) * 1000 if red is not None else None
    notice_ms = (notice - release) * 1000 if (notice is not None and gesture != "long") else None
    return led_ms, notice_ms


TARGET_MEDIA_P99_MS = 50.0


def run(args) -> dict:
    total = getattr(args, "count", None) or (60 if getattr(args, "quick", False) else 300)
    count = max(1, -(-total // len(GESTURES)))  # recordings of each gesture
    prebuffer = getattr(args, "prebuffer", None)
    if prebuffer is not None and not 0 <= prebuffer <= 120:
        print(f"pieton bench latency: --prebuffer {prebuffer:g}: the pre-event ring is 0 (off) to 120 seconds",
              file=sys.stderr)
        raise SystemExit(2)
    ring = "configured" if prebuffer is None else (f"{prebuffer:g} s" if prebuffer else "off")
    print(f"{count * len(GESTURES)} recordings ({count} of each gesture), 720p30 simulated camera, "
          f"pre-event ring {ring}; load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="pieton-bench-latency-") as tmp, counted():
        results: dict[str, dict] = {"disk": fsync_probe(Path(tmp))}
        print(describe(results["disk"]), flush=True)
        rig = Rig(Path(tmp), prebuffer)
        try:
            for gesture in GESTURES:
                leds, notices = [], []
                for _ in range(count):
                    led_ms, notice_ms = one(rig, gesture)
                    if led_ms is not None:
                        leds.append(led_ms)
                    if notice_ms is not None:
                        notices.append(notice_ms)
                row = {"presses": count, "led_p50_ms": round(statistics.median(leds), 2),
                       "led_p99_ms": round(_percentile(leds, 99), 2), "led_missed": count - len(leds)}
                if gesture != "long":
                    row.update({"notice_p50_ms": round(statistics.median(notices), 2),
                                "notice_p99_ms": round(_percentile(notices, 99), 2),
                                "notice_missed": count - len(notices)})
                else:
                    row["notices_played"] = len(notices)
                results[gesture] = row
                print(f"{gesture:7} presses={count}  press->red light p50 {row['led_p50_ms']:.2f} ms "
                      f"p99 {row['led_p99_ms']:.2f} ms (target <= 10)" +
                      (f"  release->notice p50 {row['notice_p50_ms']:.2f} ms p99 {row['notice_p99_ms']:.2f} ms"
                       " (target <= 150)" if gesture != "long" else "  (flagrant délit: no notice)"),
                      flush=True)
            if rig.media_ms:
                media = {"presses": len(rig.media_ms), "p50_ms": round(statistics.median(rig.media_ms), 2),
                         "p99_ms": round(_percentile(rig.media_ms, 99), 2)}
                media["ok"] = media["p99_ms"] <= TARGET_MEDIA_P99_MS
                results["press_to_durable_media"] = media
                print(f"press -> first durable chunk of post-press media: p50 {media['p50_ms']:.2f} ms "
                      f"p99 {media['p99_ms']:.2f} ms max {max(rig.media_ms):.2f} ms over {media['presses']} "
                      f"recordings (target p99 <= {TARGET_MEDIA_P99_MS:.0f}: "
                      f"{'OK' if media['ok'] else 'MISSED'}); load average {os.getloadavg()[0]:.2f}", flush=True)
                print_traces(rig.traces, "button", TARGET_MEDIA_P99_MS)
        finally:
            rig.close()
    all_led = max(r["led_p99_ms"] for g, r in results.items() if g in GESTURES)
    all_notice = max(r["notice_p99_ms"] for g, r in results.items() if g in GESTURES and g != "long")
    results["verdict"] = {"led_p99_ms": all_led, "led_ok": all_led <= 10,
                          "notice_p99_ms": all_notice, "notice_ok": all_notice <= 150}
    print(f"worst p99: red light {all_led:.2f} ms ({'OK' if all_led <= 10 else 'MISSED'}), "
          f"notice {all_notice:.2f} ms ({'OK' if all_notice <= 150 else 'MISSED'})")
    return results
