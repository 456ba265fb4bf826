"""The container layer: one MPEG-TS stream per segment, muxed by PyAV into the sealer.

PyAV muxes into a file-like sink that forwards every byte to the sealer as soon as it is
muxed: nothing waits for the end of a segment. Each stream is complete on its own
(PAT/PMT, SPS/PPS on its first keyframe, ADTS audio), so a segment plays alone. This
module also knows the filler that is valid in the format (null packets), so the
segmenter can reach the sealer's next durable point without knowing what it is.
"""

from __future__ import annotations

import ctypes
import logging
from fractions import Fraction

import av

from recorder.media.packets import Packet
from recorder.media.stages import SegmentSealer

log = logging.getLogger("pieton.media")

TIME_BASE = Fraction(1, 90000)
TS_PACKET = 188
# sync byte, PID 0x1FFF (null: every demuxer skips it), payload only, then stuffing
NULL_TS_PACKET = bytes([0x47, 0x1F, 0xFF, 0x10]) + b"\xff" * 184


def filler(at_least: int) -> bytes:
    """Whole null packets covering at least ``at_least`` bytes."""
    return NULL_TS_PACKET * -(-max(0, at_least) // TS_PACKET)


class _InterleaveFlush:
    """libavformat's documented flush of its interleaving queue,
    ``av_interleaved_write_frame(ctx, NULL)``, which PyAV does not expose.

    The interleaver holds the last packet muxed until a later one arrives; at the press
    that is the press's own keyframe, which must reach the sealer now. The library is the
    libavformat PyAV loaded, among those mapped in the process (OpenCV brings its own); the
    AVFormatContext pointer is PyAV's ``Container.ptr``, its first C field, and is used only
    if it points at an AVFormatContext of that library (its ``av_class`` is the library's).
    Unavailable (another platform, another PyAV layout): ``__call__`` returns False and the
    caller waits for the next packet, as before."""

    def __init__(self):
        self._libs: list[tuple[ctypes.CDLL, int]] = []
        try:
            with open("/proc/self/maps") as maps:
                paths = sorted({line.split()[-1] for line in maps if "/libavformat" in line})
            for path in paths:
                lib = ctypes.CDLL(path)
                lib.avformat_get_class.restype = ctypes.c_void_p
                lib.av_interleaved_write_frame.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
                lib.av_interleaved_write_frame.restype = ctypes.c_int
                self._libs.append((lib, lib.avformat_get_class()))
        except (OSError, AttributeError) as exc:
            log.warning("muxer flush unavailable (press media waits for the next packet): %s", exc)

    def context(self, container) -> tuple[ctypes.CDLL, int] | None:
        """The container's libavformat and AVFormatContext, or None when not found safely."""
        word = ctypes.sizeof(ctypes.c_void_p)
        # a Cython object: PyObject header (refcount, type), vtable, then Container.ptr
        pointer = ctypes.c_void_p.from_address(id(container) + 3 * word).value
        if not pointer:
            return None
        av_class = ctypes.c_void_p.from_address(pointer).value
        for lib, lib_class in self._libs:
            if av_class == lib_class:
                return lib, pointer
        return None

    def __call__(self, context: tuple[ctypes.CDLL, int] | None) -> bool:
        if context is None:
            return False
        lib, pointer = context
        return lib.av_interleaved_write_frame(pointer, None) >= 0


_flush_interleaver = _InterleaveFlush()


class _Sink:
    """What PyAV writes into: the sealer's segment. Write-only (no seek), and no close:
    PyAV would call it."""

    def __init__(self, sealer: SegmentSealer):
        self.sealer = sealer
        self.bytes = 0

    def write(self, data) -> int:
        data = bytes(data)
        self.sealer.write(data)
        self.bytes += len(data)
        return len(data)


class TsMuxer:
    """One segment's MPEG-TS stream, written into ``sealer`` as it is muxed.

    Timestamps are 90 kHz, given by the caller, so the segments of a recording join into
    one timeline."""

    def __init__(self, sealer: SegmentSealer, *, width: int, height: int, fps: int, audio_rate: int | None):
        self.sealer = sealer
        self.sink = _Sink(sealer)
        self.padding = 0
        # PyAV always interleaves; a 1 us interleave window makes the muxer hand each
        # packet to the sink as soon as the next one arrives, instead of holding up to 10 s
        # waiting for a stream that is silent (no audio in a pre-event span, a lost camera).
        self.container = av.open(self.sink, "w", format="mpegts",
                                 options={"flush_packets": "1", "max_interleave_delta": "1"})
        self.video = self.container.add_mux_stream("h264", rate=fps, width=width, height=height)
        self.video.time_base = TIME_BASE
        self.audio = None
        if audio_rate:
            self.audio = self.container.add_mux_stream("aac", rate=audio_rate)
            self.audio.time_base = TIME_BASE
        self.closed = False
        self._context = None  # libavformat and the AVFormatContext, once the header is written

    @property
    def bytes(self) -> int:
        """What reached the sealer, filler included."""
        return self.sink.bytes

    def mux(self, packet: Packet, pts: int) -> None:
        av_packet = av.Packet(packet.data)
        av_packet.stream = self.video if packet.kind == "video" else self.audio
        av_packet.pts = av_packet.dts = pts
        av_packet.time_base = TIME_BASE
        av_packet.duration = round(packet.duration * 90000)
        av_packet.is_keyframe = packet.keyframe
        self.container.mux_one(av_packet)
        if self._context is None:
            self._context = _flush_interleaver.context(self.container)

    def flush(self) -> bool:
        """Hand what the interleaver holds (the last packet muxed) to the sealer now;
        False when this build of PyAV gives no way to (the packet then waits for the next)."""
        return not self.closed and _flush_interleaver(self._context)

    def pad(self, at_least: int) -> None:
        """Write null packets (at least ``at_least`` bytes) between two muxed packets."""
        data = filler(at_least)
        self.sink.write(data)
        self.padding += len(data)

    def close(self) -> None:
        """Write what the muxer still holds into the sealer (once)."""
        if not self.closed:
            self.closed = True
            self.container.close()
