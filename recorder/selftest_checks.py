"""The self-test's checks, one per part of the camera, each giving one row of the report.

Every check measures the part through the driver the daemon runs (never a second copy of
it) and says, when it fails, what the technician should look at. A check never raises: a
driver that throws is a failed row naming the error. Nothing here writes images or sound:
the microphone's blocks are kept in RAM for the time of the check, the storage check writes
and removes a file of zeros.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recorder.hearing import AFTER_S, BEFORE_S, HEARD_PEAK, Ear, correlate, resample

# How long each measurement lasts: long enough for a rate or a level, short enough for a
# technician waiting at the bench.
CAMERA_WINDOW_S = 1.0
IR_WINDOW_S = 0.5
MIC_WINDOW_S = 0.5
TONE_S = 0.5
STORAGE_WRITE_BYTES = 4 * 1024 * 1024
STORAGE_CHUNK = 256 * 1024
WRITE_PROBE = ".selftest-write"      # in the spool's folder, removed at once
# A recording writes video + audio; the card must take several times that with fsyncs
# (segments are made durable every 0.5 s, the pre-event span is written at once).
WRITE_MARGIN = 4.0
RATE_TOLERANCE = 0.9                 # of the configured frames per second


@dataclass
class Row:
    part: str
    ok: bool
    measured: str
    check: str = ""                  # what to look at when it failed
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = {"part": self.part, "ok": self.ok, "measured": self.measured}
        if self.check:
            out["check"] = self.check
        if self.figures:
            out["figures"] = self.figures
        return out


def missing(part: str, faults: dict[str, str], what: str) -> Row:
    """A part the daemon could not open."""
    return Row(part, False, f"not running: {faults.get(part, 'not opened')}",
               f"the {what}'s connection and [drivers] {part} in the configuration")


def clock_row(position) -> Row:
    if position is None:
        return Row("clock", False, "no clock status (positions not running)", "the GPS receiver and chrony")
    clock = position.clock_status()
    offset = clock.get("offset_s")
    text = f"{clock.get('source', 'unknown')}" + (f", offset {offset:+.3f} s" if offset is not None else "")
    if clock.get("synchronised"):
        return Row("clock", True, text + ", synchronised", figures={"offset_s": offset})
    return Row("clock", False, text + ", NOT synchronised",
               "a GPS fix under open sky or the network for NTP (chronyc tracking)", {"offset_s": offset})


def battery_row(battery, faults: dict[str, str], config) -> Row:
    if battery is None:
        return missing("battery", faults, "battery gauge")
    try:
        level = float(battery.percent())
        charging = bool(battery.charging)
    except Exception as exc:  # noqa: BLE001 - any driver error is this row's failure
        return Row("battery", False, f"cannot read the level: {exc}", "the battery gauge (its kernel driver, I2C)")
    text = f"{level:.0f} %" + (", charging" if charging else "")
    if not math.isfinite(level) or not 0 <= level <= 100:
        return Row("battery", False, f"implausible reading {level!r}", "the battery gauge")
    if level <= config.battery.critical_percent:
        return Row("battery", False, text + f" (at or below the critical {config.battery.critical_percent:g} %)",
                   "charge the camera, then run the self-test again", {"percent": level})
    return Row("battery", True, text, figures={"percent": round(level, 1)})


def _write_probe(folder: Path, size: int) -> float:
    """Seconds to write and fsync ``size`` bytes in ``folder``; the file is removed after."""
    path = folder / f"{WRITE_PROBE}-{os.getpid()}"
    chunk = b"\0" * STORAGE_CHUNK
    t0 = time.perf_counter()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            written = 0
            while written < size:
                written += os.write(fd, chunk[: size - written])
            os.fsync(fd)
        finally:
            os.close(fd)
        return time.perf_counter() - t0
    finally:
        path.unlink(missing_ok=True)


def remove_stale_probes(folder: Path) -> None:
    """A probe left by a self-test cut by a power loss."""
    for stale in folder.glob(WRITE_PROBE + "-*"):
        stale.unlink(missing_ok=True)


async def storage_row(loop, storage, spool_dir: Path, config) -> Row:
    if storage is None:
        return Row("storage", False, "no spool", "the SD card (is it mounted?)")
    refusal = storage.start_refusal()
    free = storage.free_mb()
    if refusal is not None:
        return Row("storage", False, refusal, "offload the camera at its dock, or a larger card",
                   {"free_mb": round(free, 1)})
    try:
        seconds = await loop.run_in_executor(None, _write_probe, Path(spool_dir), STORAGE_WRITE_BYTES)
    except OSError as exc:
        return Row("storage", False, f"cannot write in {spool_dir}: {exc.strerror or exc}",
                   "the SD card (read-only after errors? replace it)", {"free_mb": round(free, 1)})
    speed = STORAGE_WRITE_BYTES / max(seconds, 1e-6) / 1e6
    needed = WRITE_MARGIN * (config.video.bitrate_kbps + config.audio.bitrate_kbps) * 125 / 1e6
    text = f"{free:.0f} MB free, writes {speed:.1f} MB/s with fsync (needs {needed:.1f})"
    figures = {"free_mb": round(free, 1), "write_mb_s": round(speed, 2), "needed_mb_s": round(needed, 2)}
    if speed < needed:
        return Row("storage", False, text, "the SD card's speed class (A1/V30 or better)", figures)
    return Row("storage", True, text, figures=figures)


def gps_row(position, faults: dict[str, str], config) -> Row:
    if position is None or position.gps is None:
        return missing("gps", faults, "GPS receiver")
    gps = position.status()["gps"]
    mode, age = gps.get("mode"), gps.get("age_s")
    parts = [{2: "2D fix", 3: "3D fix"}.get(mode, "no fix")]
    if gps.get("sats") is not None:
        parts.append(f"{gps['sats']} satellites")
    if age is not None:
        parts.append(f"{age:g} s old")
    text = ", ".join(parts) + (f" ({gps['error']})" if gps.get("error") else "")
    figures = {"mode": mode, "age_s": age, "sats": gps.get("sats")}
    if mode not in (2, 3) or age is None or age > config.gps.max_fix_age_s:
        return Row("gps", False, text, "the GPS antenna and a view of the sky (by a window, outdoors)", figures)
    return Row("gps", True, text, figures=figures)


async def camera_row(pipeline, camera, faults: dict[str, str]) -> Row:
    if camera is None or pipeline is None:
        return missing("camera", faults, "camera")
    before = pipeline.health.totals.captured
    await asyncio.sleep(CAMERA_WINDOW_S)
    frames = pipeline.health.totals.captured - before
    rate = frames / CAMERA_WINDOW_S
    text = f"{frames} frames in {CAMERA_WINDOW_S:g} s ({rate:.1f} fps, {camera.fps} configured)"
    figures = {"frames": frames, "fps": round(rate, 2), "configured_fps": camera.fps}
    if rate < RATE_TOLERANCE * camera.fps:
        return Row("camera", False, text, "the camera's ribbon cable and the lens cover", figures)
    return Row("camera", True, text, figures=figures)


async def ir_row(pipeline, camera, ir, faults: dict[str, str]) -> Row:
    """Night mode on for a moment: the filter and illuminator pins must follow, the camera
    must keep delivering in night mode; then the mode the daemon had is put back."""
    if ir is None:
        return missing("ir", faults, "IR cut filter and illuminator")
    day = pipeline.night.night if pipeline is not None else False
    video_ok = bool(pipeline is not None and pipeline.health.video_ok)   # else the camera's row says it
    try:
        ir.set_night(True)
        if camera is not None:
            camera.set_night_mode(True)
        night_read = ir.night
        before = pipeline.health.totals.captured if pipeline is not None else 0
        await asyncio.sleep(IR_WINDOW_S)
        frames = (pipeline.health.totals.captured - before) if pipeline is not None else 0
        ir.set_night(False)
        day_read = ir.night
    except Exception as exc:  # noqa: BLE001 - any driver error is this row's failure
        return Row("ir", False, f"IR switches cannot be driven: {type(exc).__name__}: {exc}",
                   "the IR cut filter and illuminator wiring ([gpio] ir_cut, ir_illuminator)")
    finally:
        _restore_night(ir, camera, day)
    text = (f"night mode {'on' if night_read else 'NOT on'}, back to day {'yes' if not day_read else 'NO'}, "
            f"{frames} frames in night mode")
    figures = {"night_read": night_read, "day_read": day_read, "night_frames": frames}
    if not night_read or day_read:
        return Row("ir", False, text, "the IR cut filter and illuminator wiring", figures)
    if camera is not None and video_ok and frames == 0:
        return Row("ir", False, text, "the camera in night mode (no frame came)", figures)
    return Row("ir", True, text, figures=figures)


def _restore_night(ir, camera, night: bool) -> None:
    try:
        ir.set_night(night)
        if camera is not None:
            camera.set_night_mode(night)
    except Exception:  # noqa: BLE001 - the row says it already
        pass


def dbfs(samples: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0
    return 20 * math.log10(rms) if rms > 0 else -math.inf


async def microphone_row(loop, ear: Ear | None, faults: dict[str, str]) -> Row:
    if ear is None:
        return missing("microphone", faults, "microphone")
    start = loop.time()
    await asyncio.sleep(MIC_WINDOW_S)
    got = ear.capture(start, start + MIC_WINDOW_S)
    if got is None:
        return Row("microphone", False, f"no sound in {MIC_WINDOW_S:g} s", "the microphone's cable and sound card")
    samples, captured, rate = got
    level = dbfs(samples[samples != 0] if captured < len(samples) else samples)
    share = captured / len(samples)
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    text = f"{level:.0f} dBFS, {share:.0%} of the samples"
    figures = {"dbfs": round(level, 1) if math.isfinite(level) else None, "captured": round(share, 3)}
    if share < 0.8:
        return Row("microphone", False, text, "the sound card (samples missing)", figures)
    if not math.isfinite(level) or level < -80:
        return Row("microphone", False, text + " (digital silence)", "the microphone's cable", figures)
    if peak >= 0.999:
        return Row("microphone", False, text + " (clipping)", "the microphone's gain (alsamixer)", figures)
    return Row("microphone", True, text, figures=figures)


def test_tone(rate: int) -> np.ndarray:
    """A rising chirp, 500 Hz to 3 kHz: inside the band the comparison keeps, and unlike a
    pure tone it correlates at one lag only."""
    t = np.arange(int(TONE_S * rate)) / rate
    f0, f1 = 500.0, 3000.0
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * TONE_S))
    ramp = np.minimum(1.0, np.minimum(t, TONE_S - t) / 0.02)
    return (0.5 * ramp * np.sin(phase)).astype(np.float32)


async def speaker_row(loop, speaker, ear: Ear | None, faults: dict[str, str]) -> Row:
    """The test tone through the speaker, looked for in what the microphone captured
    (where there is a microphone: otherwise only the output's own report counts)."""
    if speaker is None:
        return missing("speaker", faults, "speaker")
    rate = 16000
    tone = test_tone(rate)
    try:
        start = speaker.play(tone, rate)
    except Exception as exc:  # noqa: BLE001 - any driver error is this row's failure
        return Row("speaker", False, f"cannot play: {exc}", "the speaker's sound card and amplifier")
    await asyncio.sleep(max(0.0, start - loop.time()) + TONE_S + AFTER_S)
    report = speaker.report()
    problem = "the output reported nothing" if report is None else report.problem()
    if problem is not None:
        return Row("speaker", False, f"test tone not played: {problem}", "the speaker's sound card")
    if ear is None:
        return Row("speaker", True, "test tone played (not heard back: no microphone)")
    got = ear.capture(start - BEFORE_S, start + TONE_S + AFTER_S)
    if got is None:   # nothing to hear it with: the microphone's own row fails
        return Row("speaker", True, "test tone played (not heard back: the microphone captured nothing)")
    samples, _captured, mic_rate = got
    peak, _at = correlate(resample(samples, mic_rate), resample(tone, rate))
    text = f"test tone heard back, correlation {peak:.2f}" if peak >= HEARD_PEAK else \
        f"test tone NOT heard back by the microphone (correlation {peak:.2f}, {HEARD_PEAK} needed)"
    figures = {"peak": round(peak, 3)}
    if peak < HEARD_PEAK:
        return Row("speaker", False, text, "the speaker itself (torn cone, cut wire) and its grille", figures)
    return Row("speaker", True, text, figures=figures)
