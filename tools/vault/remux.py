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
from fractions import Fraction

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


@dataclass
class _Packet:
    kind: str  # "video" | "audio"
    pts: float  # seconds on the MP4 timeline
    dts: float
    duration: float
    keyframe: bool
    packet: av.Packet
    time_base: Fraction


def _demux(segment: SegmentInput) -> tuple[list[_Packet], dict[str, av.stream.Stream], av.container.InputContainer]:
    data = segment.data
    if not segment.complete:
        data = data[: len(data) - len(data) % TS_PACKET]
    try:
        container = av.open(io.BytesIO(data), format="mpegts")
    except av.error.FFmpegError as exc:
        raise VaultError(f"segment {segment.name}: not a readable MPEG-TS stream ({exc})") from None
    streams = {}
    for stream in container.streams:
        if stream.type in ("video", "audio") and stream.type not in streams:
            streams[stream.type] = stream
    if "video" not in streams:
        container.close()
        raise VaultError(f"segment {segment.name}: no video stream")
    packets: list[_Packet] = []
    try:
        for packet in container.demux(*streams.values()):
            if packet.dts is None or packet.size == 0:
                continue
            tb = packet.time_base
            pts = packet.pts if packet.pts is not None else packet.dts
            packets.append(_Packet(packet.stream.type, float(pts * tb), float(packet.dts * tb),
                                   float((packet.duration or 0) * tb), bool(packet.is_keyframe), packet, tb))
    except av.error.FFmpegError as exc:
        if segment.complete:
            container.close()
            raise VaultError(f"segment {segment.name}: damaged MPEG-TS ({exc})") from None
    if not segment.complete:
        # The last packet of each stream may have been cut by the power loss.
        for kind in ("video", "audio"):
            for i in range(len(packets) - 1, -1, -1):
                if packets[i].kind == kind:
                    del packets[i]
                    break
    return packets, streams, container


def remux_to_mp4(segments: list[SegmentInput], out_path, *, start_s: float | None = None,
                 end_s: float | None = None, keep_audio: bool = True) -> RemuxResult:
    """Write ``segments`` (in order) as one MP4 at ``out_path``; ``start_s``/``end_s`` cut
    the output on the joined timeline (the cut starts on the keyframe at or before
    ``start_s``). Raises VaultError when the range lies outside the media."""
    if not segments:
        raise VaultError("nothing to export: no segment")
    timeline: list[_Packet] = []
    templates: dict[str, av.stream.Stream] = {}
    containers = []
    spans = []
    truncated = []
    shift = None
    prev_end = 0.0
    try:
        for segment in segments:
            packets, streams, container = _demux(segment)
            containers.append(container)
            for kind, stream in streams.items():
                templates.setdefault(kind, stream)
            if not segment.complete:
                truncated.append(segment.name)
            if not packets:
                continue
            first = min(p.dts for p in packets)
            if shift is None:
                shift = -first
            elif abs(first + shift - prev_end) > CONTINUITY_TOLERANCE_S:
                shift = prev_end - first  # the device's clock restarted: join end to start
            for p in packets:
                p.pts += shift
                p.dts += shift
            end = max(p.dts + p.duration for p in packets)
            spans.append((segment.name, max(0.0, first + shift), end))
            prev_end = max(prev_end, end)
            timeline.extend(packets)
        if not timeline:
            raise VaultError("nothing to export: the segments hold no complete frame")
        total = prev_end
        cut_from, cut_to = 0.0, float("inf")
        if start_s is not None or end_s is not None:
            lo = 0.0 if start_s is None else start_s
            hi = total if end_s is None else end_s
            if lo < 0 or hi <= lo or lo >= total:
                raise VaultError(f"range {lo:.2f}s to {hi:.2f}s is outside the recording "
                                 f"(0 to {total:.2f}s)")
            keyframes = [p.pts for p in timeline if p.kind == "video" and p.keyframe and p.pts <= lo + 1e-6]
            cut_from = max(keyframes) if keyframes else 0.0
            cut_to = hi
        return _write(timeline, templates, out_path, cut_from, cut_to, keep_audio, spans, truncated,
                      (cut_from, min(cut_to, total)) if (start_s is not None or end_s is not None) else None)
    finally:
        for container in containers:
            container.close()


def _write(timeline, templates, out_path, cut_from, cut_to, keep_audio, spans, truncated, range_s) -> RemuxResult:
    out = av.open(str(out_path), "w", format="mp4")
    counts = {"video": 0, "audio": 0}
    keyframes = dropped = 0
    last_dts: dict[str, int] = {}
    end = 0.0
    try:
        outs = {}
        for kind, template in templates.items():
            if kind == "audio" and not keep_audio:
                continue
            outs[kind] = out.add_stream_from_template(template)
        started = False
        for p in timeline:
            if p.kind not in outs:
                continue
            if p.kind == "video":
                if not started:
                    if not p.keyframe or p.pts < cut_from - 1e-6:
                        continue
                    started = True
                if p.pts >= cut_to:
                    continue
            elif not started or p.pts < cut_from - 1e-6 or p.pts >= cut_to:
                continue
            tb = p.time_base
            dts = round((p.dts - cut_from) / tb)
            pts = round((p.pts - cut_from) / tb)
            if dts < 0 or (p.kind in last_dts and dts <= last_dts[p.kind]):
                dropped += 1
                continue
            last_dts[p.kind] = dts
            packet = p.packet
            packet.dts, packet.pts = dts, pts
            packet.stream = outs[p.kind]
            out.mux(packet)
            counts[p.kind] += 1
            keyframes += p.kind == "video" and p.keyframe
            end = max(end, p.pts - cut_from + p.duration)
    finally:
        out.close()
    if counts["video"] == 0:
        raise VaultError("nothing to export in that range: no complete video frame")
    shifted = [(name, round(a - cut_from, 3), round(b - cut_from, 3)) for name, a, b in spans
               if b > cut_from and a < cut_to]
    return RemuxResult(duration_s=round(end, 3), video_packets=counts["video"], audio_packets=counts["audio"],
                       keyframes=keyframes, dropped_packets=dropped, spans=shifted, range_s=range_s,
                       truncated_segments=truncated)
