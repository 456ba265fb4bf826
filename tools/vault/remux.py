"""Decrypted MPEG-TS segments to one MP4, without re-encoding.

Packets are copied as they are (H.264 and AAC), only their timestamps are moved so the
MP4 starts at zero and runs on without gaps: segments that already continue one another
keep the device's timeline; a segment whose clock restarts is placed after the previous
one. A truncated segment (a recovered ``.part``) gives its packets up to the last one that
is surely whole.

It streams: segments are pulled one by one from an iterable (the vault decrypts them as
they are needed) and demuxed as one joined MPEG-TS stream (each segment opens with its own
PAT/PMT, so this is valid TS; probing each 2-second segment on its own would cost more
than remuxing it). Each packet is assigned back to its segment by its byte position, and
a segment's packets are written once the next segment begins, so memory stays at a few
segments whatever the length of the recording.
"""

from __future__ import annotations

import bisect
import io
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import av

from recorder.errors import VaultError

TS_PACKET = 188
# A segment that starts within this of where the previous one ended continues it.
CONTINUITY_TOLERANCE_S = 0.5
KINDS = ("video", "audio")
# Packets held in memory at once, whatever the recording: segments waiting for the sound's
# parameters, packets since the keyframe a cut will start on, a segment not yet written.
# Past it, the writer starts without sound, or the extraction stops with a clear error:
# before this bound a recording without sound was held whole (24 GB for a long one).
MAX_BUFFERED_BYTES = 64 * 1024 * 1024


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.3g} MiB"


class OutsideRecording(VaultError):
    """An extraction's range that starts past the recording's end (``total`` seconds)."""

    def __init__(self, start: float, end: float, total: float):
        super().__init__(f"range {start:.2f}s to {end:.2f}s is outside the recording (0 to {total:.2f}s)")
        self.start, self.end, self.total = start, end, total


@dataclass
class SegmentInput:
    """One decrypted segment: its name, its MPEG-TS bytes and whether they are whole."""

    name: str
    data: bytes
    complete: bool = True


@dataclass
class RemuxResult:
    duration_s: float
    video_packets: int
    audio_packets: int
    keyframes: int
    dropped_packets: int
    # Where each segment lies in the MP4, seconds: [(name, start, end), ...].
    spans: list[tuple[str, float, float]] = field(default_factory=list)
    range_s: tuple[float, float] | None = None
    truncated_segments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Packet:
    kind: str  # "video" | "audio"
    pts: int  # in the stream's time base; on the joined timeline once shifted
    dts: int
    duration: int
    keyframe: bool
    packet: av.Packet


class _Segments(io.RawIOBase):
    """The segments read as one stream, pulled from the iterable only when needed.
    Remembers where each segment starts; ``release(i)`` lets a written segment go."""

    def __init__(self, segments: Iterable[SegmentInput]):
        self._source: Iterator[SegmentInput] = iter(segments)
        self.offsets: list[int] = []
        self.inputs: list[SegmentInput] = []
        self._view = memoryview(b"")
        self._off = 0
        self._end = 0

    def readable(self) -> bool:
        return True

    def _next(self) -> bool:
        for segment in self._source:
            data = segment.data
            if not segment.complete:
                data = data[: len(data) - len(data) % TS_PACKET]
            self.offsets.append(self._end)
            self.inputs.append(segment)
            self._end += len(data)
            if data:
                self._view, self._off = memoryview(data), 0
                return True
        return False

    def read(self, n: int = -1) -> bytes:
        if self._off >= len(self._view) and not self._next():
            return b""
        take = len(self._view) - self._off if n < 0 else min(n, len(self._view) - self._off)
        out = self._view[self._off:self._off + take]
        self._off += take
        return bytes(out)

    def release(self, index: int) -> None:
        old = self.inputs[index]
        self.inputs[index] = SegmentInput(old.name, b"", old.complete)

    def segment_at(self, pos: int) -> int:
        return bisect.bisect_right(self.offsets, pos) - 1


def _audio_template(segment: SegmentInput):
    """A container opened on one segment alone, when it knows the audio's parameters."""
    data = segment.data[: len(segment.data) - len(segment.data) % TS_PACKET]
    try:
        other = av.open(io.BytesIO(data), format="mpegts")
    except av.error.FFmpegError:
        return None
    if other.streams.audio and other.streams.audio[0].codec_context.sample_rate:
        return other
    other.close()
    return None


class _Writer:
    """Places each finished segment on the joined timeline, cuts the range, and muxes."""

    def __init__(self, out_path, start_s, end_s, keep_audio, options=None):
        self.out_path = out_path
        self.options = options
        self.start_s, self.end_s = start_s, end_s
        self.keep_audio = keep_audio
        self.bases: dict = {}
        self.out = None
        self.outs: dict = {}
        self.waiting: list[tuple[SegmentInput, list[_Packet]]] = []  # until the streams are known
        self.waiting_bytes = 0
        self.held_bytes = 0
        self.shift = None
        self.prev_end = 0.0
        self.spans: list[tuple[str, float, float]] = []
        self.truncated: list[str] = []
        # Cutting: packets since the last keyframe at or before start_s wait here.
        self.started = False
        self.held: list[_Packet] = []
        self.cut_from = 0.0
        self.lo: dict[str, int] = {}
        self.hi: dict[str, int | None] = {}
        self.last_dts: dict[str, int] = {}
        self.ends: dict[str, int] = {}
        self.counts = {"video": 0, "audio": 0}
        self.keyframes = self.dropped = 0
        self.done = False  # past end_s: nothing more to write

    def ready(self) -> bool:
        return self.out is not None

    def open(self, templates: dict) -> None:
        self.bases = {k: s.time_base for k, s in templates.items()}
        target = self.out_path if hasattr(self.out_path, "write") else str(self.out_path)
        self.out = av.open(target, "w", format="mp4", options=self.options or {})
        for kind, template in templates.items():
            if kind == "audio" and not self.keep_audio:
                continue
            self.outs[kind] = self.out.add_stream_from_template(template)
        self.hi = {k: (round(self.end_s / tb) if self.end_s is not None else None) for k, tb in self.bases.items()}
        waiting, self.waiting, self.waiting_bytes = self.waiting, [], 0
        for segment, packets in waiting:
            self._segment(segment, packets)

    def segment(self, segment: SegmentInput, packets: list[_Packet]) -> None:
        if not segment.complete:
            self.truncated.append(segment.name)
            # The last packet of each stream may have been cut by the power loss.
            for kind in KINDS:
                for i in range(len(packets) - 1, -1, -1):
                    if packets[i].kind == kind:
                        del packets[i]
                        break
        if self.out is None:
            self.waiting.append((segment, packets))
            self.waiting_bytes += sum(p.packet.size for p in packets)
        else:
            self._segment(segment, packets)

    def _segment(self, segment: SegmentInput, packets: list[_Packet]) -> None:
        packets = [p for p in packets if p.kind in self.bases]
        if not packets:
            return
        bases = self.bases
        firsts: dict[str, int] = {}
        for p in packets:
            if p.kind not in firsts or p.dts < firsts[p.kind]:
                firsts[p.kind] = p.dts
        first = min(float(d * bases[k]) for k, d in firsts.items())
        if self.shift is None:
            self.shift = -first
        elif abs(first + self.shift - self.prev_end) > CONTINUITY_TOLERANCE_S:
            self.shift = self.prev_end - first  # the device's clock restarted: join end to start
        ticks = {kind: round(self.shift / tb) for kind, tb in bases.items()}
        ends: dict[str, int] = {}
        for p in packets:
            t = ticks[p.kind]
            p.pts += t
            p.dts += t
            if p.dts + p.duration > ends.get(p.kind, -(1 << 62)):
                ends[p.kind] = p.dts + p.duration
        end = max(float(e * bases[k]) for k, e in ends.items())
        self.spans.append((segment.name, max(0.0, first + self.shift), end))
        self.prev_end = max(self.prev_end, end)
        for p in packets:
            self._packet(p)

    def _packet(self, p: _Packet) -> None:
        if self.done:
            return
        if not self.started:
            if p.kind != "video":
                if self.held:
                    self._hold(p)  # sound since the keyframe the cut will start on
                return
            t = float(p.pts * self.bases["video"])
            start = self.start_s or 0.0
            if p.keyframe and t <= start + 1e-6:
                self.held, self.held_bytes = [p], p.packet.size  # the latest keyframe at or before the start
                return
            if self.held and t <= start + 1e-6:
                self._hold(p)
                return
            if not self.held and not p.keyframe:
                return  # before the first keyframe: nothing decodes from it
            self._start()  # first video after the start: begin on the held keyframe (or this one)
        self._write(p)

    def _hold(self, p: _Packet) -> None:
        self.held.append(p)
        self.held_bytes += p.packet.size
        if self.held_bytes > MAX_BUFFERED_BYTES:
            raise VaultError(f"no keyframe in the {_mib(MAX_BUFFERED_BYTES)} before the range "
                             f"start {self.start_s or 0.0:.2f}s: cannot cut there (damaged or altered video)")

    def _start(self) -> None:
        self.started = True
        first = self.held[0] if self.held else None
        self.cut_from = float(first.pts * self.bases["video"]) if first else 0.0
        self.lo = {k: round(self.cut_from / tb) for k, tb in self.bases.items()}
        held, self.held, self.held_bytes = self.held, [], 0
        for p in held:
            self._write(p)

    def _write(self, p: _Packet) -> None:
        kind = p.kind
        stream = self.outs.get(kind)
        if stream is None:
            return
        lo = self.lo[kind]
        if p.pts < lo:
            return
        hi = self.hi.get(kind)
        if hi is not None and p.pts >= hi:
            # Sound interleaves within about a second of the picture: past that, stop reading.
            self.done = kind == "video" and p.pts >= hi + round(1.0 / self.bases[kind])
            return
        dts = p.dts - lo
        if dts < 0 or (kind in self.last_dts and dts <= self.last_dts[kind]):
            self.dropped += 1
            return
        self.last_dts[kind] = dts
        packet = p.packet
        packet.dts, packet.pts = dts, p.pts - lo
        packet.stream = stream
        self.out.mux(packet)
        self.counts[kind] += 1
        self.keyframes += kind == "video" and p.keyframe
        if p.pts + p.duration - lo > self.ends.get(kind, 0):
            self.ends[kind] = p.pts + p.duration - lo

    def finish(self) -> RemuxResult:
        if not self.started and self.held:
            self._start()
        if self.out is not None:
            self.out.close()
        total = self.prev_end
        ranged = self.start_s is not None or self.end_s is not None
        if ranged and (self.start_s or 0.0) >= total:
            raise OutsideRecording(self.start_s or 0.0, self.end_s if self.end_s is not None else total, total)
        if self.counts["video"] == 0:
            raise VaultError("nothing to export: no complete video frame (in that range)")
        end = max(float(e * self.bases[k]) for k, e in self.ends.items())
        cut_from, cut_to = self.cut_from, self.end_s if self.end_s is not None else float("inf")
        spans = [(name, round(max(0.0, a - cut_from), 3), round(b - cut_from, 3)) for name, a, b in self.spans
                 if b > cut_from and a < cut_to]
        return RemuxResult(duration_s=round(end, 3), video_packets=self.counts["video"],
                           audio_packets=self.counts["audio"], keyframes=self.keyframes,
                           dropped_packets=self.dropped, spans=spans,
                           range_s=(cut_from, min(cut_to, total)) if ranged else None,
                           truncated_segments=self.truncated)

    def close(self) -> None:
        if self.out is not None:
            try:
                self.out.close()
            except av.error.FFmpegError:
                pass


def remux_to_mp4(segments: Iterable[SegmentInput], out_path, *, start_s: float | None = None,
                 end_s: float | None = None, keep_audio: bool = True, options: dict | None = None) -> RemuxResult:
    """Write ``segments`` (in order) as one MP4 at ``out_path``; ``start_s``/``end_s`` cut
    the output on the joined timeline (the cut starts on the keyframe at or before
    ``start_s``). ``out_path`` may be a writable file object and ``options`` the muxer's
    (the desk streams fragmented MP4 so). Raises VaultError when the range lies outside the media."""
    if start_s is not None and start_s < 0:
        raise VaultError(f"range start {start_s:.2f}s is before the recording")
    if end_s is not None and end_s <= (start_s or 0.0):
        raise VaultError(f"range end {end_s:.2f}s is not after its start {start_s or 0.0:.2f}s")
    it = iter(segments)
    first = next(it, None)
    if first is None:
        raise VaultError("nothing to export: no segment")
    source = _Segments(itertools.chain([first], it))
    try:
        container = av.open(source, format="mpegts", buffer_size=1 << 20)
    except av.error.FFmpegError as exc:
        name = source.inputs[0].name if source.inputs else "first segment"
        raise VaultError(f"segment {name}: not a readable MPEG-TS stream ({exc})") from None
    writer = _Writer(out_path, start_s, end_s, keep_audio, options)
    extra = []
    try:
        streams = {}
        for stream in container.streams:
            if stream.type in KINDS and stream.type not in streams:
                streams[stream.type] = stream
        if "video" not in streams:
            raise VaultError(f"segment {source.inputs[0].name}: no video stream")
        # The first segments may hold no sound (the pre-event span is video only): then the
        # probe knows no audio parameters, and they come from the first segment with sound.
        audio_known = "audio" in streams and bool(streams["audio"].codec_context.sample_rate)
        if not audio_known:
            streams.pop("audio", None)
        else:
            writer.open(streams)
        # A segment's last packets come out of the demuxer after the next segment's first
        # ones (a PES ends when the next begins), so a segment is written only once the
        # segment after the next has begun.
        groups: dict[int, list[_Packet]] = {0: []}
        current = 0
        flushed = -1
        tried: set[int] = set()

        grouped = 0  # bytes of the packets in ``groups``

        def flush(upto: int) -> None:
            nonlocal flushed, grouped
            for index in range(flushed + 1, upto + 1):
                packets = groups.pop(index, [])
                grouped -= sum(p.packet.size for p in packets)
                writer.segment(source.inputs[index], packets)
                source.release(index)
                flushed = index

        try:
            for packet in container.demux():
                dts = packet.dts
                if dts is None or packet.size == 0:
                    continue
                kind = packet.stream.type
                if kind not in KINDS:
                    continue
                index = current
                if packet.pos is not None and packet.pos >= 0:
                    index = source.segment_at(packet.pos)
                    if index > current:
                        current = index
                        flush(current - 2)
                if kind == "audio" and not writer.ready() and index not in tried:
                    tried.add(index)
                    found = _audio_template(source.inputs[index])
                    if found is not None:
                        extra.append(found)
                        streams["audio"] = found.streams.audio[0]
                        writer.open(streams)
                pts = packet.pts
                # A straggler of a segment already written goes with the oldest one still open.
                target = index if index > flushed else min(groups, default=flushed + 1)
                groups.setdefault(target, []).append(
                    _Packet(kind, dts if pts is None else pts, dts, packet.duration or 0, packet.is_keyframe, packet))
                grouped += packet.size
                if grouped > MAX_BUFFERED_BYTES:
                    raise VaultError(f"segment {source.inputs[current].name}: more than "
                                     f"{_mib(MAX_BUFFERED_BYTES)} of packets that cannot be placed "
                                     "(damaged or altered MPEG-TS)")
                if not writer.ready() and writer.waiting_bytes > MAX_BUFFERED_BYTES:
                    writer.open({"video": streams["video"]})  # no sound parameters so far: none will wait
                if writer.done:
                    break
        except av.error.FFmpegError as exc:
            if all(s.complete for s in source.inputs):
                raise VaultError(f"segment {source.inputs[current].name}: damaged MPEG-TS ({exc})") from None
        flush(len(source.inputs) - 1)
        if not writer.ready():  # no sound anywhere: a silent MP4
            writer.open({"video": streams["video"]})
        return writer.finish()
    except av.error.FFmpegError as exc:
        raise VaultError(f"cannot write the MP4: {exc}") from None
    finally:
        writer.close()
        container.close()
        for c in extra:
            c.close()
