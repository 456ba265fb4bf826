"""Segments of about ``segment_seconds``, each starting on a keyframe.

Packets are cut into segments here; each segment is muxed into its own MPEG-TS stream by
``mpegts.TsMuxer``, which hands every byte to the segment's sealer as soon as it is muxed.
Timestamps run on from one segment to the next (90 kHz, zero at the recording's first
packet), so the segments also join into one timeline.

The pre-event span (the ring, up to 120 s, handed over at the press) is one segment. Its
segment is opened at once, so segments stay numbered in time order, but its packets are
held in memory (where the ring kept them) and muxed only after the press's own first media
is durable: muxing and encrypting 30 s of video takes longer than the press may wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor, Future

from recorder.media.mpegts import TsMuxer
from recorder.media.packets import Packet
from recorder.media.stages import RecordingSealer, SegmentFigures, SegmentSealer

# Sound captured after the press waits with the held pre-event span until the press's
# keyframe; past this, with no keyframe, the span is muxed at once and the press cut later.
HOLD_AFTER_PRESS_S = 0.5


class _OpenSegment:
    def __init__(self, number: int, sealer: SegmentSealer | None, width: int, height: int, fps: int,
                 audio_rate: int | None):
        self.number = number
        self._format = (width, height, fps, audio_rate)
        self.sealer: SegmentSealer | None = None
        self.muxer: TsMuxer | None = None
        if sealer is not None:
            self.attach(sealer)
        self.start: float | None = None
        self.end: float | None = None
        self.frames = 0
        self.first_frame = None
        self.last_frame = None
        self.audio_packets = 0
        self.pre_event_s = 0.0
        self.last_pts = {"video": -1, "audio": -1}
        self.held: list[Packet] | None = None  # the pre-event span, not muxed yet

    def attach(self, sealer: SegmentSealer) -> None:
        """The sealer, once open (a held span's may be opened in the background)."""
        width, height, fps, audio_rate = self._format
        self.sealer = sealer
        self.muxer = TsMuxer(sealer, width=width, height=height, fps=fps, audio_rate=audio_rate)


class Segmenter:
    """Cuts packets from one recording into sealed segments.

    ``origin`` is the loop time that becomes pts 0. ``pre_event_end`` is the loop time of
    the press: packets before it belong to the pre-event span. ``figures`` adds the
    pipeline's own figures (frame accounting, device health) to each segment's metadata."""

    def __init__(self, recording: RecordingSealer, *, width: int, height: int, fps: int,
                 audio_rate: int | None, segment_seconds: float, origin: float,
                 pre_event_end: float | None = None, figures: SegmentFigures | None = None,
                 clock: Callable[[], float] | None = None, opener: Executor | None = None):
        self.recording = recording
        self.width, self.height, self.fps = width, height, fps
        self.audio_rate = audio_rate
        self.segment_seconds = segment_seconds
        self.origin = origin
        self.pre_event_end = pre_event_end
        self.figures = figures
        self.video_present = True
        # press -> first durable chunk holding media captured after the press (_make_durable)
        self.clock = clock or time.monotonic
        self.first_durable: float | None = None
        # the press, step by step (clock times): where the wait for durable media goes
        self.trace: dict[str, float] = {}
        self._watch_armed: _OpenSegment | None = None
        self.current: _OpenSegment | None = None
        self._deferred: tuple[_OpenSegment, str] | None = None   # the pre-event span, sealed after
        self._spare: SegmentSealer | None = None  # the press's segment, opened before its first frame
        # opens the held span's segment and the press's in the background (open_ahead)
        self._opener = opener
        self._opening: Future | None = None
        self._opening_span: _OpenSegment | None = None
        self._ahead = False
        self.sealed = 0
        self.skipped_before_keyframe = 0
        self.bytes = 0
        self.closed = False

    def add(self, packet: Packet) -> None:
        if self.closed or (packet.kind == "audio" and self.audio_rate is None):
            return
        if "received" not in self.trace and self._after_press(packet):
            self.trace["captured"] = packet.time
            self.mark("received")
        if self._holds(packet):
            return
        seg = self.current
        if packet.kind == "video":
            after = self._after_press(packet)
            if seg is not None and packet.keyframe and seg.frames:
                if seg.pre_event_s and after:
                    # The press, when the span was muxed before it (see _holds): the span is
                    # one segment ending here, sealed once the press's media is durable.
                    self.cut("press", defer_seal=True)
                    seg = None
                elif after and packet.time - seg.start >= self.segment_seconds - 0.5 / self.fps:
                    self.cut("duration")
                    seg = None
            if seg is None or seg.frames == 0:
                if not packet.keyframe:  # a segment's video must start on a keyframe
                    self.skipped_before_keyframe += 1
                    return
        elif packet.kind == "audio":
            if seg is not None and not self.video_present and packet.time - seg.start >= self.segment_seconds:
                self.cut("duration (no video)")
                seg = None
        if seg is None:
            seg = self._open()
        self._mux(seg, packet)

    def _holds(self, packet: Packet) -> bool:
        """Whether ``packet`` waits, unmuxed, with the held pre-event span.

        The span starts holding at the recording's first packet (the ring starts at its
        oldest keyframe, with the sound around it when kept) and ends at the press's
        keyframe: the span's segment is then set aside, sealed after the press's first media
        is durable (``_seal_deferred``)."""
        after = self._after_press(packet)
        seg = self.current
        opens = packet.kind == "audio" or packet.keyframe  # what may open a segment (add())
        if seg is None and not self.sealed and not after and opens:  # the ring's first packet
            if self._opener is not None and not self._ahead:  # its sealer comes with open_ahead
                seg = self.current = _OpenSegment(0, None, self.width, self.height, self.fps, self.audio_rate)
            else:
                seg = self._open()
            seg.held = []
        if seg is None or seg.held is None:
            return False
        if not after:
            seg.held.append(packet)
            return True
        if packet.kind == "video" and packet.keyframe:
            self.cut("press", defer_seal=True)
            return False
        if (packet.kind == "audio" and self.video_present
                and packet.time - self.pre_event_end < HOLD_AFTER_PRESS_S):
            seg.held.append(packet)
            return True
        # The press did not begin on a keyframe (or there is no camera): mux the span now;
        # the press is cut at the next keyframe, as add() does for a span muxed in order.
        self._fill(seg)
        return False

    def _after_press(self, packet: Packet) -> bool:
        return self.pre_event_end is None or packet.time >= self.pre_event_end

    def _fill(self, seg: _OpenSegment) -> None:
        """Mux the held pre-event span into its segment."""
        self._ready()
        held, seg.held = seg.held, None
        for packet in held:
            if packet.kind == "video" and not packet.keyframe and seg.frames == 0:
                self.skipped_before_keyframe += 1  # a segment's video starts on a keyframe
                continue
            self._mux(seg, packet, watch=False)

    def open_ahead(self) -> None:
        """Open the held span's segment and the one the press's media goes into now, while
        the press's first frame is still being captured and encoded: opening a segment (its
        header, provisional metadata, folder: three fsyncs) is then off the path from the
        press to durable media. With an ``opener`` (a thread) the worker encodes meanwhile.
        The press's segment unused at the close is discarded (no manifest line names it)."""
        if self._ahead or self.closed:
            return
        self._ahead = True
        span = self.current if self.current is not None and self.current.sealer is None else None

        def open_both() -> tuple[SegmentSealer | None, SegmentSealer | None]:
            span_sealer = self.recording.open_segment() if span is not None else None
            try:
                spare = self.recording.open_segment(overlap=self.current is not None or span is not None)
            except Exception:  # the press's first packet opens it, or reports the fault
                spare = None
            self.mark("segments_opened_ahead")
            return span_sealer, spare

        if self._opener is None:
            self._spare = open_both()[1]
        else:
            self._opening, self._opening_span = self._opener.submit(open_both), span

    def _ready(self) -> None:
        """Wait for the segments opened in the background, and take them."""
        opening, self._opening = self._opening, None
        if opening is not None:
            span, self._opening_span = self._opening_span, None
            span_sealer, self._spare = opening.result()
            if span is not None:
                span.attach(span_sealer)
        # a held span whose opening did not start (the press came before open_ahead)
        for seg in (self._deferred[0] if self._deferred else None, self.current):
            if seg is not None and seg.sealer is None:
                seg.attach(self.recording.open_segment())

    def _open(self) -> _OpenSegment:
        self._ready()
        overlap = self._deferred is not None  # the pre-event span, sealed after this one opens
        sealer, self._spare = self._spare, None
        if sealer is None:
            sealer = self.recording.open_segment(overlap=overlap)
        number = self.sealed + (1 if overlap else 0)
        self.current = _OpenSegment(number, sealer, self.width, self.height, self.fps, self.audio_rate)
        if "received" in self.trace:
            self.mark("segment_opened")
        return self.current

    def _mux(self, seg: _OpenSegment, packet: Packet, *, watch: bool = True) -> None:
        if seg.sealer is None:
            self._ready()
        pts = max(round((packet.time - self.origin) * 90000), seg.last_pts[packet.kind] + 1)
        seg.last_pts[packet.kind] = pts
        seg.muxer.mux(packet, pts)
        if seg.start is None:
            seg.start = packet.time
        seg.end = max(seg.end or packet.time, packet.time + packet.duration)
        if packet.kind == "video":
            seg.frames += 1
            seg.first_frame = packet.index if seg.first_frame is None else seg.first_frame
            seg.last_frame = packet.index
        else:
            seg.audio_packets += 1
        post_press = self._after_press(packet)
        if not post_press and packet.kind == "video":
            seg.pre_event_s += packet.duration
        if watch and self.first_durable is None:
            if self._watch_armed is seg:
                # no flush (see TsMuxer.flush): the muxer held the first post-press packet
                # until this one arrived; its bytes are in the sealer now
                self._make_durable(seg)
            elif post_press:
                self.mark("muxed")
                if seg.muxer.flush():  # the interleaver hands the press's packet over now
                    self.mark("flushed")
                    self._make_durable(seg)
                else:
                    self._watch_armed = seg

    def _make_durable(self, seg: _OpenSegment) -> None:
        # The sealer makes bytes durable only at its own points (a full age chunk), which
        # at a few Mbit/s can be a quarter second away. Fill up to the next one with the
        # container's filler (which every demuxer skips), then sync: from here a power cut
        # keeps media captured after the press. Once per recording.
        seg.muxer.pad(seg.sealer.bytes_until_durable())
        self.mark("padded")
        seg.sealer.sync()
        self.first_durable = self.clock()
        self.mark("durable")
        self._seal_deferred()
        self.mark("span_sealed")

    def mark(self, stage: str) -> None:
        """One step of the press on its way to durable media (``trace``, read by the benches)."""
        self.trace.setdefault(stage, self.clock())

    def cut(self, reason: str, *, defer_seal: bool = False) -> dict | None:
        """Seal the segment in progress (the next packet opens a new one); with
        ``defer_seal`` the seal waits for ``_seal_deferred``."""
        self._seal_deferred()   # segments are sealed in order
        seg = self.current
        if seg is None:
            return None
        self.current = None
        if defer_seal:
            self._deferred = (seg, reason)
            return None
        return self._seal(seg, reason)

    def _seal(self, seg: _OpenSegment, reason: str) -> dict:
        self._ready()
        if seg.held is not None:
            self._fill(seg)
        seg.muxer.close()
        extra = {
            "segment": seg.number,
            "start_s": round((seg.start or self.origin) - self.origin, 6),
            "duration_s": round((seg.end or self.origin) - (seg.start or self.origin), 6),
            "video_frames": seg.frames,
            "first_frame": seg.first_frame,
            "last_frame": seg.last_frame,
            "audio_packets": seg.audio_packets,
            "ended_by": reason,
            "ts_bytes": seg.muxer.bytes,
        }
        if seg.pre_event_s:
            extra["pre_event_s"] = round(seg.pre_event_s, 6)
        if seg.muxer.padding:
            extra["null_padding_bytes"] = seg.muxer.padding
        if self.figures is not None:
            extra.update(self.figures.segment_figures())
        seg.sealer.seal(extra)
        if self._watch_armed is seg and self.first_durable is None:
            self.first_durable = self.clock()  # the seal made it durable
        self.sealed += 1
        self.bytes += seg.muxer.bytes
        return extra

    def _seal_deferred(self) -> None:
        if self._deferred is not None:
            seg, reason = self._deferred
            self._seal(seg, reason)
            self._deferred = None  # only now: should the seal fail, abort() still finds it

    def _discard_spare(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:
            spare.discard()

    def abort(self, reason: str) -> None:
        """The sealer failed (disk full): keep what is durable, stop taking packets."""
        try:
            self._ready()
        except Exception:  # the background opening failed too: nothing of it to seal
            pass
        seg, self.current = self.current, None
        self.closed = True
        try:
            self._discard_spare()
        except Exception:  # the storage is what failed: recovery finds the empty segment
            pass
        if self._deferred is not None:
            deferred, self._deferred = self._deferred[0], None
            self._abort_segment(deferred, reason)
        if seg is not None:
            self._abort_segment(seg, reason)

    def _abort_segment(self, seg: _OpenSegment, reason: str) -> None:
        if seg.sealer is None:  # its opening failed: nothing was written
            return
        try:
            if seg.held is not None:
                self._fill(seg)  # a held span was never written: it may still fit
            seg.muxer.close()
        except Exception:  # the sealer is what failed; the muxer's tail is lost anyway
            pass
        seg.sealer.abort(reason)

    def close(self, reason: str = "stop") -> dict | None:
        self._ready()
        extra = self.cut(reason)
        self.closed = True
        self._discard_spare()
        return extra
