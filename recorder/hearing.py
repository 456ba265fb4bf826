"""Did the camera's own microphone hear the notice? (CSI L241-2: the people filmed are
told; a court asks whether they could hear it.)

The speaker driver can only say the sound card took every frame; a torn cone or a cut
wire is silent all the same. The microphone is centimetres from the speaker and records
anyway, so the notice is looked for in what it captured: the normalised cross-correlation
of the capture with the notice audio, its peak and the lag of that peak, go into the
recording's metadata.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from drivers.microphone import AudioBlock

# The span searched around the playback: the output's latency is tens of milliseconds on
# a Pi's card, up to its buffer (drivers.speaker.OUTPUT_BUFFER_S) through a sound server;
# the microphone's blocks are timed when they reach the loop, late by their own buffer.
BEFORE_S = 0.6
AFTER_S = 1.5
# Speech against its own recording through a small speaker and microphone peaks well
# above 0.5; street sound against a 3 s sentence stays under 0.1.
HEARD_PEAK = 0.5


@dataclass(frozen=True)
class Heard:
    peak: float      # normalised cross-correlation, 0..1 (polarity ignored)
    lag_ms: float    # of the peak, after the playback's start
    verdict: bool | None  # None: too little audio captured to tell
    why: str = ""

    def as_dict(self) -> dict:
        out = {"peak": round(self.peak, 3), "lag_ms": round(self.lag_ms, 1), "verdict": self.verdict}
        if self.why:
            out["why"] = self.why
        return out


# Both sounds are compared at a telephone's rate: the speech band is all a notice must
# carry, and the correlation costs a tenth of what it would at 48 kHz (it runs on the
# daemon's loop, once per recording).
COMPARE_RATE = 8000


def resample(samples: np.ndarray, rate: int, to_rate: int = COMPARE_RATE) -> np.ndarray:
    """Linear interpolation, after a moving average over the samples each output one
    stands for when going down (enough of a low-pass for a correlation over speech)."""
    samples = np.asarray(samples, dtype=np.float64)
    if rate == to_rate:
        return samples
    width = int(rate // to_rate)
    if width > 1:
        samples = np.convolve(samples, np.full(width, 1.0 / width), mode="same")
    n = int(round(len(samples) * to_rate / rate))
    return np.interp(np.arange(n) * (rate / to_rate), np.arange(len(samples)), samples)


def correlate(captured: np.ndarray, template: np.ndarray) -> tuple[float, int]:
    """The peak of the normalised cross-correlation of ``template`` slid along
    ``captured`` (at least as long), and the offset in ``captured`` where it lies."""
    x = np.asarray(captured, dtype=np.float64)
    s = np.asarray(template, dtype=np.float64)
    m = len(s)
    positions = len(x) - m + 1
    if m == 0 or positions <= 0:
        raise ValueError(f"cannot look for {m} samples in {len(x)}")
    size = 1 << int(np.ceil(np.log2(len(x) + m)))
    raw = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(s, size)), size)[:positions]
    energy = np.concatenate(([0.0], np.cumsum(x * x)))
    window = np.maximum(energy[m:] - energy[:positions], 0.0)
    scale = np.sqrt(window) * np.linalg.norm(s)
    ncc = np.abs(raw) / np.maximum(scale, 1e-12)
    ncc[scale < 1e-9] = 0.0  # digital silence correlates with nothing
    at = int(np.argmax(ncc))
    return float(min(ncc[at], 1.0)), at


class Ear:
    """The microphone's recent blocks, kept long enough to look for the notice in them."""

    def __init__(self, microphone, keep_s: float):
        self.microphone = microphone
        self.keep_s = float(keep_s)
        self.blocks: deque[AudioBlock] = deque()
        if microphone is not None:
            microphone.listen(self._hear)

    def _hear(self, block: AudioBlock) -> None:
        self.blocks.append(block)
        while self.blocks and self.blocks[0].capture_time < block.capture_time - self.keep_s:
            self.blocks.popleft()

    def capture(self, t0: float, t1: float) -> tuple[np.ndarray, int, int] | None:
        """The samples captured over [t0, t1] (loop time) at the microphone's rate, silence
        where none came, and how many came; None when none did.

        Blocks are placed by the card's own sample count, not by when they reached the loop
        (PortAudio hands them over in bursts); the count is tied to the loop's clock by the
        block that arrived soonest after its last sample."""
        if self.microphone is None or not self.blocks:
            return None
        rate = self.microphone.rate
        anchor = min(b.capture_time - (b.first_sample + len(b.samples) - 1) / rate for b in self.blocks)
        first = int(round((t0 - anchor) * rate))
        out = np.zeros(int(round((t1 - t0) * rate)), dtype=np.float32)
        got = 0
        for block in self.blocks:
            lo, hi = block.first_sample - first, block.first_sample - first + len(block.samples)
            a, b = max(lo, 0), min(hi, len(out))
            if a < b:
                out[a:b] = block.samples[a - lo:b - lo]
                got += b - a
        return (out, got, rate) if got else None

    def heard(self, notice: np.ndarray, notice_rate: int, played_at: float) -> Heard:
        """Whether the notice played at loop time ``played_at`` is in the capture."""
        duration = len(notice) / notice_rate
        got = self.capture(played_at - BEFORE_S, played_at + duration + AFTER_S)
        if got is None:
            return Heard(0.0, 0.0, None, "the microphone captured nothing during the notice")
        samples, captured, rate = got
        if captured < 0.5 * len(notice) * rate / notice_rate:
            return Heard(0.0, 0.0, None, f"the microphone captured {captured / rate:.1f} s of "
                                         f"the {duration:.1f} s notice")
        peak, at = correlate(resample(samples, rate), resample(notice, notice_rate))
        lag_ms = (at / COMPARE_RATE - BEFORE_S) * 1000.0
        return Heard(peak, lag_ms, peak >= HEARD_PEAK)
