"""`pieton bench room`: the simulated acoustic room, as the simulated microphone uses it.

Renders 60 s (`--quick` 10 s) of street sound with the spoken notice playing, in 20 ms
blocks at 48 kHz on a clock 50 ppm fast, as the microphone asks for it: CPU per block
and the share of one core it takes, against sox synthesising the same duration of pink
noise (the peer). Then what the microphone hears of the notice: its level above the
ambience (dB) and where its onset lands against the time the speaker reported (ms).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import numpy as np

from drivers.acoustics import Room
from recorder.config import DEFAULT_CONFIG
from recorder.notice import load_wav

RATE = 48000
PPM = 50.0
BLOCK_S = 0.02
NOTICE_AT = 5.0


def _render(room: Room, seconds: float, rate: float) -> tuple[np.ndarray, float]:
    n_blocks = int(seconds / BLOCK_S)
    block = int(round(BLOCK_S * RATE))
    cpu = time.process_time()
    out = [room.render(i * block / rate, block, rate) for i in range(n_blocks)]
    return np.concatenate(out), time.process_time() - cpu


def _sox_pinknoise(seconds: float) -> float | None:
    if shutil.which("sox") is None:
        return None
    proc = subprocess.Popen(["sox", "-q", "-n", "-r", str(RATE), "-b", "16", "-c", "1", "-t", "raw",
                             os.devnull, "synth", str(seconds), "pinknoise", "vol", "0.5"])
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return None
    return usage.ru_utime + usage.ru_stime


def _db(x: np.ndarray) -> float:
    return 20 * np.log10(max(float(np.sqrt(np.mean(x.astype(np.float64) ** 2))), 1e-12))


def run(args) -> dict:
    seconds = 10.0 if args.quick else 60.0
    rate = RATE * (1 + PPM * 1e-6)  # the microphone's true rate: its crystal is 50 ppm off
    notice, notice_rate = load_wav(DEFAULT_CONFIG.with_name("notice-fr.wav"))
    room = Room(seed=2026)
    room.play(notice, notice_rate, NOTICE_AT, "notice")
    heard, cpu = _render(room, seconds, rate)
    blocks = len(heard) / round(BLOCK_S * RATE)
    print(f"room: {seconds:.0f} s rendered in 20 ms blocks: {cpu * 1e6 / blocks:.0f} us CPU per block, "
          f"{100 * cpu / seconds:.2f} % of one core")
    sox = _sox_pinknoise(seconds)
    if sox is not None:
        print(f"peer: sox synth pinknoise, same duration: {sox:.3f} s CPU, "
              f"{100 * sox / seconds:.2f} % of one core (ratio room/sox {cpu / max(sox, 1e-6):.1f})")

    # The notice as the microphone heard it, against the same room without it.
    silent = Room(seed=2026)
    ambience, _ = _render(silent, seconds, rate)
    duration = len(notice) / notice_rate
    span = slice(int(NOTICE_AT * rate), int((NOTICE_AT + duration) * rate))
    above = _db(heard[span]) - _db(ambience[span])
    diff = np.abs(heard[: span.start + int(rate)] - ambience[: span.start + int(rate)])
    onset_ms = (np.argmax(diff > 1e-4) / rate - NOTICE_AT) * 1000
    print(f"notice heard {above:.1f} dB above the street ambience "
          f"({_db(heard[span]):.1f} vs {_db(ambience[span]):.1f} dBFS); onset error {onset_ms:+.3f} ms")
    return {"seconds": seconds, "us_per_block": round(cpu * 1e6 / blocks, 1),
            "core_percent": round(100 * cpu / seconds, 3),
            "sox_core_percent": None if sox is None else round(100 * sox / seconds, 3),
            "notice_above_ambience_db": round(above, 1), "notice_onset_error_ms": round(onset_ms, 3)}
