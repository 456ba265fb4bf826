"""Where encoded packets go: the pre-event ring while armed, the segmenter while recording.

Runs in the media worker only (one thread, in arrival order), so a note, a packet and a
seal never race. It is also the one route by which anything reaches the recording's
metadata from the media side (``note``): in order with the media it describes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from recorder.media.health import Health
from recorder.media.packets import Packet
from recorder.media.ring import PreEventRing
from recorder.media.segmenter import Segmenter
from recorder.media.stages import RecordingSealer

log = logging.getLogger("pieton.media")


class Router:
    def __init__(self, ring: PreEventRing, health: Health, *, width: int, height: int, fps: int,
                 audio_rate: int | None, segment_seconds: float, clock: Callable[[], float],
                 wall_at: Callable[[float], float]):
        self.ring = ring
        self.health = health
        self.width, self.height, self.fps = width, height, fps
        self.audio_rate = audio_rate
        self.segment_seconds = segment_seconds
        self.clock = clock
        self.wall_at = wall_at
        self.recording: RecordingSealer | None = None
        self.segmenter: Segmenter | None = None
        # opens the press's segments (fsyncs) while the worker encodes its first frame
        self.opener = ThreadPoolExecutor(1, thread_name_prefix="pieton-open")
        # figures of the current (or last) recording; `bench latency` reads first_durable_at
        self.segments = 0
        self.pre_event_s = 0.0
        self.press_to_durable_s: float | None = None
        self.first_durable_at: float | None = None  # loop time
        self.press_trace: dict[str, float] = {}     # the press step by step (Segmenter.trace)

    def begin(self, recording: RecordingSealer, press: float, media: dict) -> None:
        """Start ``recording`` from the oldest keyframe in the ring; ``media`` describes the
        devices for the recording's metadata."""
        begun = self.clock()
        packets = self.ring.drain()
        origin = packets[0].time if packets else press
        self.recording = recording
        self.segments = 0
        self.press_to_durable_s = self.first_durable_at = None
        self.press_trace = {}
        self.segmenter = Segmenter(recording, width=self.width, height=self.height, fps=self.fps,
                                   audio_rate=self.audio_rate, segment_seconds=self.segment_seconds,
                                   origin=origin, pre_event_end=press, figures=self.health, clock=self.clock,
                                   opener=self.opener)
        self.segmenter.video_present = bool(self.health.video_ok)
        self.segmenter.trace.update(press=press, worker_began=begun)
        self.pre_event_s = press - origin
        recording.static["pre_event_s"] = round(self.pre_event_s, 6)  # before any segment is written
        self.note({"event": "media", "pre_event_s": round(self.pre_event_s, 6),
                   "pre_event_from": self.wall_at(origin), "pre_event_audio": self.ring.audio, **media})
        self.route(packets)
        self.segmenter.mark("ring_handed")
        self.segmenter.open_ahead()

    def note(self, event: dict) -> None:
        """Note an event on the recording being fed (the media worker's one route)."""
        if self.recording is not None:
            self.recording.note(event)

    def route(self, packets: list[Packet]) -> None:
        segmenter = self.segmenter
        if segmenter is None:  # not recording: into the pre-event ring
            for packet in packets:
                self.ring.push(packet)
            return
        for packet in packets:
            try:
                segmenter.add(packet)
            except Exception as exc:  # the sealer cannot write: keep what is durable
                log.error("segment write failed: %s", exc)
                try:
                    segmenter.abort(f"write failed: {exc}")
                except Exception as exc2:
                    log.error("segment abort failed: %s", exc2)
                self.health.fault_from_worker("storage", f"cannot write the segment: {exc}")
                return
        self.segments = segmenter.sealed

    def route_audio(self, packets: list[Packet]) -> None:
        segmenter = self.segmenter
        if segmenter is not None and not self.ring.audio:  # sound before the press only if the ring keeps it
            packets = [p for p in packets if p.time >= segmenter.pre_event_end]
        self.route(packets)

    def video_present(self, present: bool) -> None:
        if self.segmenter is not None:
            self.segmenter.video_present = present

    def encoder_error(self, frame_index: int, capture_time: float, exc: Exception) -> None:
        """A frame the encoder refused: noted, and the segment cut so the next (on a new
        encoder's keyframe) starts clean."""
        segmenter = self.segmenter
        if segmenter is None or segmenter.closed:
            return
        self.note({"event": "encoder_error", "frame": frame_index, "error": str(exc),
                   "at": self.wall_at(capture_time)})
        try:
            segmenter.cut("encoder_error")
        except Exception as exc2:
            segmenter.abort(f"seal after encoder error failed: {exc2}")
            self.health.fault_from_worker("storage", f"cannot seal the segment: {exc2}")
        self.segments = segmenter.sealed

    def end(self, audio_tail: list[Packet]) -> dict:
        """Seal the last segment (with the sound flushed up to the stop); returns a summary."""
        segmenter = self.segmenter
        if segmenter is None:
            return {}
        self.route_audio(audio_tail)
        last = None
        if not segmenter.closed:
            try:
                last = segmenter.close("stop")
            except Exception as exc:
                segmenter.abort(f"seal at stop failed: {exc}")
                self.health.fault_from_worker("storage", f"cannot seal the last segment: {exc}")
        self.segmenter = None
        self.recording = None
        self.segments = segmenter.sealed
        self.press_trace = dict(segmenter.trace)
        if segmenter.first_durable is not None:
            self.first_durable_at = segmenter.first_durable
            self.press_to_durable_s = segmenter.first_durable - segmenter.pre_event_end
        return {"segments": segmenter.sealed, "pre_event_s": round(self.pre_event_s, 6),
                "press_to_durable_s": self.press_to_durable_s,
                "frames": self.health.counters.as_dict(),
                "skipped_before_keyframe": segmenter.skipped_before_keyframe,
                "ts_bytes": segmenter.bytes, "last_segment": last}

    def drop(self) -> None:
        """Power cut: stop where we are, seal nothing."""
        self.segmenter = None
        self.recording = None

    def close(self) -> None:
        self.opener.shutdown(wait=False)

    def __repr__(self) -> str:
        return f"<Router {'segmenter' if self.segmenter is not None else 'ring'} segments={self.segments}>"
