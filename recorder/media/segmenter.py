"""MPEG-TS segments of about ``segment_seconds``, each starting on a keyframe.

Each segment is its own MPEG-TS stream (PAT/PMT, SPS/PPS on its first keyframe, ADTS
audio), so it plays alone once decrypted. PyAV muxes into a file-like sink that forwards
every byte to ``SegmentWriter.write`` as soon as it is muxed: nothing waits for the end of
a segment to reach the sealer. Timestamps run on from one segment to the next (90 kHz,
zero at the recording's first packet), so the segments also join into one timeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from fractions import Fraction

import av

from recorder.media.packets import Packet

TIME_BASE = Fraction(1, 90000)


class _Sink:
    """What PyAV writes into: the sealer's segment. Write-only, never seeks."""

    def __init__(self, segment):
        self.segment = segment
        self.bytes = 0

    def write(self, data) -> int:
        data = bytes(data)
        self.segment.write(data)
        self.bytes += len(data)
        return len(data)


class _OpenSegment:
    def __init__(self, number: int, writer, width: int, height: int, fps: int, audio_rate: int | None):
        self.number = number
        self.writer = writer
        self.sink = _Sink(writer)
        self.container = av.open(self.sink, "w", format="mpegts", options={"flush_packets": "1"})
        self.video = self.container.add_mux_stream("h264", rate=fps, width=width, height=height)
        self.video.time_base = TIME_BASE
        self.audio = None
        if audio_rate:
            self.audio = self.container.add_mux_stream("aac", rate=audio_rate)
            self.audio.time_base = TIME_BASE
        self.start: float | None = None
        self.end: float | None = None
        self.frames = 0
        self.first_frame = None
        self.last_frame = None
        self.audio_packets = 0
        self.pre_event_s = 0.0
        self.last_pts = {"video": -1, "audio": -1}


class Segmenter:
    """Cuts packets from one recording into sealed segments.

    ``origin`` is the loop time that becomes pts 0. ``pre_event_end`` is the loop time of
    the press: packets before it belong to the pre-event span. ``describe()`` is called at
    each seal for the pipeline's own figures (frame accounting, faults)."""

    def __init__(self, recording, *, width: int, height: int, fps: int, audio_rate: int | None,
                 segment_seconds: float, origin: float, pre_event_end: float | None = None,
                 describe: Callable[[], dict] | None = None, clock: Callable[[], float] | None = None):
        self.recording = recording
        self.width, self.height, self.fps = width, height, fps
        self.audio_rate = audio_rate
        self.segment_seconds = segment_seconds
        self.origin = origin
        self.pre_event_end = pre_event_end
        self.describe = describe
        self.video_present = True
        # press -> first durable chunk holding media captured after the press (see _watch)
        self.clock = clock or time.monotonic
        self.first_durable: float | None = None
        self._watch: tuple[_OpenSegment, int] | None = None
        self.current: _OpenSegment | None = None
        self.sealed = 0
        self.skipped_before_keyframe = 0
        self.bytes = 0
        self.closed = False

    def add(self, packet: Packet) -> None:
        if self.closed:
            return
        seg = self.current
        if packet.kind == "video":
            if seg is not None and packet.keyframe and seg.frames and \
                    packet.time - seg.start >= self.segment_seconds - 0.5 / self.fps:
                self.cut("duration")
                seg = None
            if seg is None or seg.frames == 0:
                if not packet.keyframe:  # a segment's video must start on a keyframe
                    self.skipped_before_keyframe += 1
                    return
        elif packet.kind == "audio":
            if self.audio_rate is None:
                return
            if seg is not None and not self.video_present and packet.time - seg.start >= self.segment_seconds:
                self.cut("duration (no video)")
                seg = None
        if seg is None:
            seg = self._open()
        self._mux(seg, packet)

    def _open(self) -> _OpenSegment:
        writer = self.recording.open_segment()
        self.current = _OpenSegment(self.sealed, writer, self.width, self.height, self.fps, self.audio_rate)
        return self.current

    def _mux(self, seg: _OpenSegment, packet: Packet) -> None:
        stream = seg.video if packet.kind == "video" else seg.audio
        pts = max(round((packet.time - self.origin) * 90000), seg.last_pts[packet.kind] + 1)
        seg.last_pts[packet.kind] = pts
        av_packet = av.Packet(packet.data)
        av_packet.stream = stream
        av_packet.pts = av_packet.dts = pts
        av_packet.time_base = TIME_BASE
        av_packet.duration = round(packet.duration * 90000)
        av_packet.is_keyframe = packet.keyframe
        seg.container.mux_one(av_packet)
        if seg.start is None:
            seg.start = packet.time
        seg.end = max(seg.end or packet.time, packet.time + packet.duration)
        if packet.kind == "video":
            seg.frames += 1
            seg.first_frame = packet.index if seg.first_frame is None else seg.first_frame
            seg.last_frame = packet.index
        else:
            seg.audio_packets += 1
        if self.pre_event_end is not None and packet.time < self.pre_event_end and packet.kind == "video":
            seg.pre_event_s += packet.duration
        elif self.first_durable is None:
            if self._watch is None:
                self._watch = (seg, seg.sink.bytes)
            self._check_durable()

    def _check_durable(self) -> None:
        # An age chunk reaches the disk only once full (64 KiB); as soon as the one holding
        # the first post-press packet is written, make it durable now rather than at the
        # next periodic fsync: that is when a power cut would keep the press's media.
        seg, end = self._watch
        chunk = 65536
        if seg is not self.current:
            return
        written = getattr(seg.writer, "plaintext_size", None)
        sync = getattr(seg.writer, "sync", None)
        if written is None or sync is None:
            return
        if written > ((end - 1) // chunk + 1) * chunk:
            sync()
            self.first_durable = self.clock()

    def cut(self, reason: str) -> dict | None:
        """Seal the segment in progress (the next packet opens a new one)."""
        seg = self.current
        if seg is None:
            return None
        self.current = None
        seg.container.close()  # writes what the muxer still holds into the sink
        extra = {
            "segment": seg.number,
            "start_s": round((seg.start or self.origin) - self.origin, 6),
            "duration_s": round((seg.end or self.origin) - (seg.start or self.origin), 6),
            "video_frames": seg.frames,
            "first_frame": seg.first_frame,
            "last_frame": seg.last_frame,
            "audio_packets": seg.audio_packets,
            "ended_by": reason,
            "ts_bytes": seg.sink.bytes,
        }
        if seg.pre_event_s:
            extra["pre_event_s"] = round(seg.pre_event_s, 6)
        if self.describe is not None:
            extra.update(self.describe())
        seg.writer.seal(extra)
        if self._watch is not None and self._watch[0] is seg and self.first_durable is None:
            self.first_durable = self.clock()  # the seal made it durable
        self.sealed += 1
        self.bytes += seg.sink.bytes
        return extra

    def abort(self, reason: str) -> None:
        """The sealer failed (disk full): keep what is durable, stop taking packets."""
        seg, self.current = self.current, None
        self.closed = True
        if seg is not None:
            try:
                seg.container.close()
            except Exception:  # the sink is what failed; the muxer's tail is lost anyway
                pass
            seg.writer.abort(reason)

    def close(self, reason: str = "stop") -> dict | None:
        extra = self.cut(reason)
        self.closed = True
        return extra
