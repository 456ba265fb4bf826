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
# a Pi's card, a few hundred through a sound server.
BEFORE_S = 0.25
AFTER_S = 0.5
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


def resample(samples: np.ndarray, rate: int, to_rate: int) -> np.ndarray:
    """Linear interpolation: enough for a correlation over the speech band."""
    if rate == to_rate:
        return np.asarray(samples, dtype=np.float64)
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

    def capture(self, t0: float, t1: float) -> tuple[np.ndarray, float, int] | None:
        """The samples captured over about [t0, t1] (loop time), the loop time of their
        first sample and their rate; None when nothing was captured then."""
        if self.microphone is None:
            return None
        rate = self.microphone.rate
        chosen = [b for b in self.blocks
                  if b.capture_time >= t0 and b.capture_time - len(b.samples) / rate <= t1]
        if not chosen:
            return None
        samples = np.concatenate([b.samples for b in chosen])
        first = chosen[0]
        return samples, first.capture_time - (len(first.samples) - 1) / rate, rate

    def heard(self, notice: np.ndarray, notice_rate: int, played_at: float) -> Heard:
        """Whether the notice played at loop time ``played_at`` is in the capture."""
        duration = len(notice) / notice_rate
        got = self.capture(played_at - BEFORE_S, played_at + duration + AFTER_S)
        if got is None:
            return Heard(0.0, 0.0, None, "the microphone captured nothing during the notice")
        samples, first_time, rate = got
        template = resample(notice, notice_rate, rate)
        if len(samples) < 0.9 * len(template):
            return Heard(0.0, 0.0, None, f"the microphone captured {len(samples) / rate:.1f} s of "
                                         f"the {duration:.1f} s notice")
        if len(samples) < len(template):  # the capture stopped a little early: the rest is silence
            samples = np.concatenate([samples, np.zeros(len(template) - len(samples), np.float32)])
        peak, at = correlate(samples, template)
        lag_ms = (first_time + at / rate - played_at) * 1000.0
        return Heard(peak, lag_ms, peak >= HEARD_PEAK)
