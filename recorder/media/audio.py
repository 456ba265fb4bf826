"""Microphone samples to AAC on the loop's timeline.

A sound card's clock is off by tens of ppm (the simulated one by 50 ppm): left alone, its
sample count drifts from the video by about 180 ms an hour. ``DriftCorrector`` follows the
error between samples received and loop time elapsed and stretches or squeezes blocks by
one sample at a time (inaudible), so sample position = time. ``AudioEncoder`` encodes
48 kHz mono AAC-LC, framed as ADTS so each segment is self-describing.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from recorder.errors import EncoderError
from recorder.media.packets import Packet

_ADTS_RATES = {96000: 0, 88200: 1, 64000: 2, 48000: 3, 44100: 4, 32000: 5, 24000: 6, 22050: 7,
               16000: 8, 12000: 9, 11025: 10, 8000: 11}


def adts_header(payload_size: int, rate: int, channels: int = 1) -> bytes:
    """The 7-byte ADTS header of one AAC-LC frame (ISO 14496-3, no CRC)."""
    length = payload_size + 7
    profile = 1  # AAC LC (object type 2, minus one)
    sf = _ADTS_RATES[rate]
    return bytes([
        0xFF, 0xF1,
        (profile << 6) | (sf << 2) | (channels >> 2),
        ((channels & 3) << 6) | (length >> 11),
        (length >> 3) & 0xFF,
        ((length & 7) << 5) | 0x1F,
        0xFC,
    ])


class DriftCorrector:
    """Maps blocks from the card's clock onto the loop's clock.

    ``push`` returns the corrected samples and the loop time of their first sample. The
    error is smoothed (block arrival times jitter by milliseconds on real hardware) and
    corrected by at most ``max_step`` samples per block, only beyond ``tolerance_s``. A gap
    bigger than ``resync_s`` (the card stalled, then came back) restarts the timeline there.
    """

    def __init__(self, rate: int, *, tolerance_s: float = 0.002, max_step: int = 1, resync_s: float = 0.25):
        self.rate = rate
        self.tolerance = tolerance_s * rate
        self.max_step = max_step
        self.resync = resync_s * rate
        self.origin: float | None = None
        self.position = 0  # samples output since origin
        self.smoothed_error = 0.0
        self.corrections = 0
        self.resyncs = 0

    def push(self, samples: np.ndarray, capture_time: float) -> tuple[np.ndarray, float]:
        n = len(samples)
        if self.origin is None:
            self.origin = capture_time - n / self.rate
        expected_end = (capture_time - self.origin) * self.rate
        error = self.position + n - expected_end  # > 0: the card runs fast
        if error < -self.resync:  # samples missing: the timeline jumps forward (a gap)
            self.position = round(expected_end - n)
            self.smoothed_error = error = 0.0
            self.resyncs += 1
        elif error > self.resync:  # a burst of stale samples: drop them, never go back in time
            samples = samples[min(n, round(error)):]
            n = len(samples)
            self.smoothed_error = error = 0.0
            self.resyncs += 1
            if n == 0:
                return samples, self.origin + self.position / self.rate
        self.smoothed_error += 0.05 * (error - self.smoothed_error)
        step = 0
        if self.smoothed_error > self.tolerance:
            step = -self.max_step
        elif self.smoothed_error < -self.tolerance:
            step = self.max_step
        if step and n > 1:
            self.corrections += 1
            out_n = n + step
            # linear interpolation over the block: a 1-sample stretch is inaudible
            samples = np.interp(np.linspace(0, n - 1, out_n), np.arange(n), samples).astype(np.float32)
            self.smoothed_error += step
        first_time = self.origin + self.position / self.rate
        self.position += len(samples)
        return samples, first_time

    def drift_s(self, capture_time: float) -> float:
        """Current error between samples output and loop time, in seconds."""
        if self.origin is None:
            return 0.0
        return self.position / self.rate - (capture_time - self.origin)


class AudioEncoder:
    """Corrected mono samples to ADTS AAC-LC packets with loop-clock times."""

    def __init__(self, rate: int = 48000, bitrate_kbps: int = 64):
        self.rate = rate
        self.bitrate_kbps = bitrate_kbps
        self.corrector = DriftCorrector(rate)
        self._time_base = Fraction(1, rate)
        self._context = None
        self._buffer = np.zeros(0, np.float32)
        self._buffer_start = 0  # sample position (corrector timeline) of _buffer[0]
        self.packets = 0

    def _open(self):
        context = av.CodecContext.create("aac", "w")
        context.sample_rate = self.rate
        context.layout = "mono"
        context.format = "fltp"
        context.bit_rate = self.bitrate_kbps * 1000
        context.time_base = self._time_base
        context.open()
        return context

    def push(self, samples: np.ndarray, capture_time: float) -> list[Packet]:
        samples, first_time = self.corrector.push(np.asarray(samples, np.float32), capture_time)
        position = round((first_time - self.corrector.origin) * self.rate)
        if self._context is None:
            self._context = self._open()
            self._buffer_start = position
        if position != self._buffer_start + len(self._buffer):
            # a gap (the microphone stalled): restart the encoder on the new timeline
            packets = self.flush()
            self._context = self._open()
            self._buffer_start = position
        else:
            packets = []
        self._buffer = np.concatenate([self._buffer, samples])
        size = self._context.frame_size or 1024
        while len(self._buffer) >= size:
            packets.extend(self._encode(self._buffer[:size], self._buffer_start))
            self._buffer = self._buffer[size:]
            self._buffer_start += size
        return packets

    def _encode(self, chunk, pts) -> list[Packet]:
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = pts
        frame.time_base = self._time_base
        try:
            encoded = self._context.encode(frame)
        except (av.FFmpegError, ValueError) as exc:
            raise EncoderError(f"AAC encoder refused samples at {pts}: {exc}") from exc
        return self._wrap(encoded)

    def _wrap(self, encoded) -> list[Packet]:
        out = []
        origin = self.corrector.origin or 0.0
        for packet in encoded:
            data = bytes(packet)
            pts = packet.pts if packet.pts is not None else 0
            out.append(Packet("audio", adts_header(len(data), self.rate) + data, origin + pts / self.rate,
                              False, (packet.duration or 1024) / self.rate))
            self.packets += 1
        return out

    def flush(self) -> list[Packet]:
        """Encode what is buffered (padded) and drain the encoder."""
        if self._context is None:
            return []
        packets = []
        if len(self._buffer):
            size = self._context.frame_size or 1024
            chunk = np.zeros(size, np.float32)
            chunk[:len(self._buffer)] = self._buffer
            packets.extend(self._encode(chunk, self._buffer_start))
            self._buffer_start += len(self._buffer)
            self._buffer = np.zeros(0, np.float32)
        try:
            packets.extend(self._wrap(self._context.encode(None)))
        except (av.FFmpegError, ValueError) as exc:
            raise EncoderError(f"AAC encoder failed to drain: {exc}") from exc
        self._context = None
        return packets

    def __repr__(self) -> str:
        return f"<AudioEncoder AAC {self.rate} Hz mono {self.bitrate_kbps} kb/s packets={self.packets}>"
