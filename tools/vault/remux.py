"""Decrypted MPEG-TS segments to one MP4, without re-encoding.

Packets are copied as they are (H.264 and AAC), only their timestamps are moved so the
MP4 starts at zero and runs on without gaps: segments that already continue one another
keep the device's timeline; a segment whose clock restarts is placed after the previous
one. A truncated segment (a recovered ``.part``) gives its packets up to the last one that
is surely whole.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import av

from recorder.errors import VaultError

TS_PACKET = 188
# A segment that starts within this of where the previous one ended continues it.
CONTINUITY_TOLERANCE_S = 0.5


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
    pts: int  # in the stream's time base, on the MP4 timeline once shifted
    dts: int
    duration: int
    keyframe: bool
    packet: av.Packet


class _Joined(io.RawIOBase):
    """The segments read as one stream, without copying them into one buffer."""

    def __init__(self, parts: list[bytes]):
        self._parts = [memoryview(p) for p in parts if p]
        self._i = 0
        self._off = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        out = []
        while self._i < len(self._parts) and (n < 0 or n > 0):
            part = self._parts[self._i]
            take = len(part) - self._off if n < 0 else min(n, len(part) - self._off)
            out.append(part[self._off:self._off + take])
            self._off += take
            if n > 0:
                n -= take
            if self._off >= len(part):
                self._i += 1
                self._off = 0
        return b"".join(out)


def _demux_all(segments: list[SegmentInput]):
    """Packets of every segment, grouped by segment. The segments are demuxed as one
    joined MPEG-TS stream (each opens with its own PAT/PMT, so this is valid TS) because
    probing each 2-second segment on its own costs more than remuxing it; each packet is
    assigned back to its segment by its byte position."""
    import bisect
    datas, offsets, pos = [], [], 0
    for segment in segments:
        data = segment.data
        if not segment.complete:
            data = data[: len(data) - len(data) % TS_PACKET]
        offsets.append(pos)
        datas.append(data)
        pos += len(data)
    try:
        container = av.open(_Joined(datas), format="mpegts", buffer_size=1 << 20)
    except av.error.FFmpegError as exc:
        raise VaultError(f"segment {segments[0].name}: not a readable MPEG-TS stream ({exc})") from None
    streams: dict[str, av.stream.Stream] = {}
    for stream in container.streams:
        if stream.type in ("video", "audio") and stream.type not in streams:
            streams[stream.type] = stream
    if "video" not in streams:
        container.close()
        raise VaultError(f"segment {segments[0].name}: no video stream")
    groups: list[list[_Packet]] = [[] for _ in segments]
    current = 0
    try:
        for packet in container.demux():
            dts = packet.dts
            if dts is None or packet.size == 0:
                continue
            kind = packet.stream.type
            if kind not in streams:
                continue
            if packet.pos is not None and packet.pos >= 0:
                current = bisect.bisect_right(offsets, packet.pos) - 1
            pts = packet.pts
            groups[current].append(_Packet(kind, dts if pts is None else pts, dts,
                                           packet.duration or 0, packet.is_keyframe, packet))
    except av.error.FFmpegError as exc:
        if all(s.complete for s in segments):
            container.close()
            raise VaultError(f"segment {segments[current].name}: damaged MPEG-TS ({exc})") from None
    for segment, packets in zip(segments, groups, strict=True):
        if segment.complete:
            continue
        # The last packet of each stream may have been cut by the power loss.
        for kind in ("video", "audio"):
            for i in range(len(packets) - 1, -1, -1):
                if packets[i].kind == kind:
                    del packets[i]
                    break
    extra = []
    audio = streams.get("audio")
    if audio is not None and not audio.codec_context.sample_rate:
        # The first segments may hold no sound (the pre-event span is video only), so the
        # probe could not learn the audio's parameters: take them from a later segment.
        streams.pop("audio")
        for segment, packets in zip(segments[1:], groups[1:], strict=True):
            if not any(p.kind == "audio" for p in packets):
                continue
            try:
                other = av.open(io.BytesIO(segment.data[: len(segment.data) - len(segment.data) % TS_PACKET]),
                                format="mpegts")
            except av.error.FFmpegError:
                continue
            extra.append(other)
            if other.streams.audio and other.streams.audio[0].codec_context.sample_rate:
                streams["audio"] = other.streams.audio[0]
                break
        if "audio" not in streams:  # no sound anywhere: a silent MP4
            for packets in groups:
                packets[:] = [p for p in packets if p.kind != "audio"]
    return groups, streams, _Closer([container, *extra])


class _Closer:
    def __init__(self, containers):
        self.containers = containers

    def close(self) -> None:
        for c in self.containers:
            c.close()


def remux_to_mp4(segments: list[SegmentInput], out_path, *, start_s: float | None = None,
                 end_s: float | None = None, keep_audio: bool = True) -> RemuxResult:
    """Write ``segments`` (in order) as one MP4 at ``out_path``; ``start_s``/``end_s`` cut
    the output on the joined timeline (the cut starts on the keyframe at or before
    ``start_s``). Raises VaultError when the range lies outside the media."""
    if not segments:
        raise VaultError("nothing to export: no segment")
    timeline: list[_Packet] = []
    groups, templates, container = _demux_all(segments)
    bases = {kind: stream.time_base for kind, stream in templates.items()}
    spans = []
    truncated = []
    shift = None  # seconds
    prev_end = 0.0
    try:
        for segment, packets in zip(segments, groups, strict=True):
            if not segment.complete:
                truncated.append(segment.name)
            if not packets:
                continue
            firsts: dict[str, int] = {}
            for p in packets:
                if p.kind not in firsts or p.dts < firsts[p.kind]:
                    firsts[p.kind] = p.dts
            first = min(float(d * bases[k]) for k, d in firsts.items())
            if shift is None:
                shift = -first
            elif abs(first + shift - prev_end) > CONTINUITY_TOLERANCE_S:
                shift = prev_end - first  # the device's clock restarted: join end to start
            ticks = {kind: round(shift / tb) for kind, tb in bases.items()}
            ends: dict[str, int] = {}
            for p in packets:
                t = ticks[p.kind]
                p.pts += t
                p.dts += t
                if p.dts + p.duration > ends.get(p.kind, -(1 << 62)):
                    ends[p.kind] = p.dts + p.duration
            end = max(float(e * bases[k]) for k, e in ends.items())
            spans.append((segment.name, max(0.0, first + shift), end))
            prev_end = max(prev_end, end)
            timeline.extend(packets)
        if not timeline:
            raise VaultError("nothing to export: the segments hold no complete frame")
        total = prev_end
        cut_from, cut_to = 0.0, float("inf")
        ranged = start_s is not None or end_s is not None
        if ranged:
            lo = 0.0 if start_s is None else start_s
            hi = total if end_s is None else end_s
            if lo < 0 or hi <= lo or lo >= total:
                raise VaultError(f"range {lo:.2f}s to {hi:.2f}s is outside the recording "
                                 f"(0 to {total:.2f}s)")
            vb = bases["video"]
            keyframes = [p.pts * vb for p in timeline if p.kind == "video" and p.keyframe and p.pts * vb <= lo + 1e-6]
            cut_from = float(max(keyframes)) if keyframes else 0.0
            cut_to = hi
        return _write(timeline, templates, bases, out_path, cut_from, cut_to, keep_audio, spans, truncated,
                      (cut_from, min(cut_to, total)) if ranged else None)
    finally:
        container.close()


def _write(timeline, templates, bases, out_path, cut_from, cut_to, keep_audio, spans, truncated,
           range_s) -> RemuxResult:
    try:
        return _mux(timeline, templates, bases, out_path, cut_from, cut_to, keep_audio, spans, truncated,
                    range_s)
    except av.error.FFmpegError as exc:
        raise VaultError(f"cannot write the MP4: {exc}") from None


def _mux(timeline, templates, bases, out_path, cut_from, cut_to, keep_audio, spans, truncated,
         range_s) -> RemuxResult:
    out = av.open(str(out_path), "w", format="mp4")
    counts = {"video": 0, "audio": 0}
    keyframes = dropped = 0
    last_dts: dict[str, int] = {}
    ends: dict[str, int] = {}
    try:
        outs = {}
        for kind, template in templates.items():
            if kind == "audio" and not keep_audio:
                continue
            outs[kind] = out.add_stream_from_template(template)
        # Cut points in each stream's ticks.
        lo = {k: round(cut_from / tb) for k, tb in bases.items()}
        hi = {k: (round(cut_to / tb) if cut_to != float("inf") else None) for k, tb in bases.items()}
        started = False
        for p in timeline:
            kind = p.kind
            stream = outs.get(kind)
            if stream is None:
                continue
            if kind == "video":
                if not started:
                    if not p.keyframe or p.pts < lo[kind]:
                        continue
                    started = True
            elif not started or p.pts < lo[kind]:
                continue
            if hi[kind] is not None and p.pts >= hi[kind]:
                continue
            dts = p.dts - lo[kind]
            if dts < 0 or (kind in last_dts and dts <= last_dts[kind]):
                dropped += 1
                continue
            last_dts[kind] = dts
            packet = p.packet
            packet.dts, packet.pts = dts, p.pts - lo[kind]
            packet.stream = stream
            out.mux(packet)
            counts[kind] += 1
            keyframes += kind == "video" and p.keyframe
            if p.pts + p.duration - lo[kind] > ends.get(kind, 0):
                ends[kind] = p.pts + p.duration - lo[kind]
    finally:
        out.close()
    if counts["video"] == 0:
        raise VaultError("nothing to export in that range: no complete video frame")
    end = max(float(e * bases[k]) for k, e in ends.items())
    shifted = [(name, round(max(0.0, a - cut_from), 3), round(b - cut_from, 3)) for name, a, b in spans
               if b > cut_from and a < cut_to]
    return RemuxResult(duration_s=round(end, 3), video_packets=counts["video"], audio_packets=counts["audio"],
                       keyframes=keyframes, dropped_packets=dropped, spans=shifted, range_s=range_s,
                       truncated_segments=truncated)
