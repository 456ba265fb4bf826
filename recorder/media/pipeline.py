"""MediaPipeline: the daemon's one handle on video and audio.

The camera and microphone call back on the loop thread; those callbacks only count and
hand the work to one media worker thread (``loop.run_in_executor``), so the button, LED
and notice path never waits for an encoder, and in a simulation the virtual clock holds
still while a frame is encoded. Every stage after the callbacks (overlay, encoders, ring,
segmenter, sealer) runs in that single worker, in arrival order; notes for the recording
go through it too, so they never race a seal.

Faults are reported, never swallowed: a camera that stops, a microphone that stops, an
encoder that refuses a frame, a sealer that cannot write each call ``on_fault("kind:
message")`` on the loop thread and are noted in the recording's metadata.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from drivers.camera import EncodedFrame, RawFrame
from drivers.microphone import AudioBlock
from recorder.clock import wall_at, wall_now
from recorder.errors import DriverError, EncoderError, MediaError
from recorder.media.audio import AudioEncoder
from recorder.media.nightmode import NightMode
from recorder.media.overlay import Overlay
from recorder.media.ring import PreEventRing
from recorder.media.segmenter import Segmenter
from recorder.media.source import VideoSource

log = logging.getLogger("pieton.media")


class _Counters:
    __slots__ = ("captured", "encoded", "dropped", "late", "lost", "encoder_errors", "audio_blocks")

    def __init__(self):
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}


class MediaPipeline:
    WATCH_INTERVAL_S = 0.25
    LIGHT_INTERVAL_S = 1.0
    AUDIO_TIMEOUT_S = 0.5
    MAX_BACKLOG_S = 0.5  # frames waiting longer than this for the worker are dropped, and counted

    def __init__(self, config, camera, microphone, ir, *, loop, wall_clock, on_fault=None, executor=None):
        self.config = config
        self.camera = camera
        self.microphone = microphone if config.audio.enabled else None
        self.ir = ir
        self.loop = loop
        self._wall_now = wall_now(wall_clock)
        self.on_fault = on_fault
        video = config.video
        # without a camera (it failed to open) the pipeline still records sound
        self.fps = camera.fps if camera is not None else video.fps
        self.width = camera.width if camera is not None else video.width
        self.height = camera.height if camera is not None else video.height
        self.segment_seconds = video.segment_seconds
        self.overlay = Overlay(config.device.camera_id, enabled=video.overlay)
        self.source = VideoSource.for_camera(camera, self.overlay, video) if camera is not None else None
        self.audio = AudioEncoder(config.audio.sample_rate, config.audio.bitrate_kbps) if self.microphone else None
        pre = config.prebuffer
        # the encoder's VBV holds the rate; leave room for one extra group of pictures and slack
        per_s = video.bitrate_kbps * 125 + (config.audio.bitrate_kbps * 125 if pre.audio else 0)
        max_bytes = int(per_s * (pre.seconds + 2 * video.keyframe_interval_s) * 1.5) + (1 << 20)
        self.ring = PreEventRing(pre.seconds, max_bytes=max_bytes, audio=pre.audio and self.audio is not None)
        self.night = NightMode.from_config(config)
        self._worker = executor or ThreadPoolExecutor(1, thread_name_prefix="pieton-media")
        self._own_worker = executor is None
        self.armed = False
        self.closed = False
        self._recording = None  # the loop thread's view
        self._segmenter: Segmenter | None = None  # the worker's view
        self.totals = _Counters()
        self.counters = _Counters()  # of the current (or last) recording
        self._queued = 0
        self._max_queue = max(2, round(self.fps * self.MAX_BACKLOG_S))
        self._last_index: int | None = None
        self._last_frame_time: float | None = None
        self._last_audio_time: float | None = None
        self.video_ok: bool | None = None
        self.audio_ok: bool | None = None
        self._watch_handle = None
        self._last_light = -1e9
        self.lux: float | None = None
        self.faults: list[dict] = []
        self.pre_event_s = 0.0
        self.press_to_durable_s: float | None = None
        self.first_durable_at: float | None = None  # loop time; `bench latency` subtracts the press edge
        self.segments = 0
        self._jobs: set[asyncio.Future] = set()
        self._audio_pending: list[AudioBlock] = []

    # -- time -------------------------------------------------------------------------------
    def wall_at(self, loop_time: float) -> float:
        return wall_at(self._wall_now(), self.loop, loop_time)

    # -- daemon interface -------------------------------------------------------------------
    def arm(self) -> None:
        """Start capture into the RAM pre-event ring."""
        if self.closed:
            raise MediaError("media pipeline is closed")
        if self.armed:
            return
        self.armed = True
        now = self.loop.time()
        self._last_frame_time = self._last_audio_time = now
        self.audio_ok = True if self.audio else None
        # A device that cannot start is a fault the agent is shown, not a reason to record
        # nothing: the other one still records.
        if self.camera is not None:
            if self.camera.encodes:
                self.camera.set_pre_callback(lambda image, t: self.overlay.apply(image, self.wall_at(t)))
            self.video_ok = True
            try:
                self.camera.start(self.loop, self._on_frame)
            except DriverError as exc:
                self.video_ok = False
                self._fault("camera", f"cannot start: {exc}")
        if self.audio is not None:
            try:
                self.microphone.start(self.loop, self._on_audio)
            except DriverError as exc:
                self.audio_ok = False
                self._fault("microphone", f"cannot start: {exc}")
        self._watch_handle = self.loop.call_later(self.WATCH_INTERVAL_S, self._watch)

    def start_recording(self, recording) -> float:
        """Begin a recording from the oldest keyframe in the ring; returns the pre-event span."""
        if not self.armed:
            raise MediaError("media pipeline is not armed")
        if self._recording is not None:
            raise MediaError(f"already recording {getattr(self._recording, 'id', '?')}")
        press = self.loop.time()
        self._recording = recording
        self.counters = _Counters()
        self.segments = 0
        self.press_to_durable_s = None
        self.first_durable_at = None
        span = self.ring.span()
        self._flush_audio()  # sound before the press goes to the ring (or nowhere), in order
        self._submit(self._job_begin, recording, press)
        return span

    async def stop_recording(self) -> dict:
        """Seal the last segment (media captured up to now included); returns a summary."""
        if self._recording is None:
            return {}
        stop = self.loop.time()
        self._flush_audio()
        try:
            summary = await self._submit(self._job_end, stop)
        finally:
            self._recording = None
        return summary or {}

    def status(self) -> dict:
        state = "recording" if self._recording is not None else ("armed" if self.armed else "idle")
        return {
            "state": state,
            "recording": getattr(self._recording, "id", None),
            "video": {"width": self.width, "height": self.height, "fps": self.fps,
                      "ok": self.video_ok, "backend": getattr(self.camera, "backend", None)},
            "audio": {"ok": self.audio_ok, "enabled": self.audio is not None},
            "night_mode": self.night.night, "lux": None if self.lux is None else round(self.lux, 2),
            "prebuffer": self.ring.status(),
            "frames": self.counters.as_dict(),
            "frames_total": self.totals.as_dict(),
            "segments": self.segments,
            "pre_event_s": round(self.pre_event_s, 3),
            "backlog": self._queued,
            "faults": list(self.faults[-10:]),
        }

    async def close(self) -> None:
        if self.closed:
            return
        if self._recording is not None:
            await self.stop_recording()
        self.closed = True
        self.armed = False
        self._stop_hardware()
        if self._jobs:
            await asyncio.gather(*list(self._jobs), return_exceptions=True)
        self.ring.clear()  # RAM only: nothing of the pre-event buffer outlives the pipeline
        if self._own_worker:
            self._worker.shutdown(wait=True)

    def power_cut(self) -> None:
        """Simulated loss of power: stop where we are, seal nothing (recovery at the next
        start deals with what is on the card); the RAM ring is simply gone."""
        self.closed = True
        self.armed = False
        self._segmenter = None
        self._recording = None
        self._stop_hardware()
        self.ring.clear()
        if self._own_worker:
            self._worker.shutdown(wait=False, cancel_futures=True)

    def _stop_hardware(self) -> None:
        if self._watch_handle is not None:
            self._watch_handle.cancel()
            self._watch_handle = None
        if self.camera is not None:
            self.camera.close()
        if self.microphone is not None:
            self.microphone.close()

    # -- what the overlay shows ------------------------------------------------------------
    def set_agent(self, agent: str | None) -> None:
        self.overlay.set_agent(agent)

    def set_position(self, position: tuple[float, float] | None) -> None:
        """(lat, lon) of the last fresh fix, or None when the position is unknown."""
        self.overlay.set_position(position)

    @property
    def recording(self):
        """The RecordingWriter being fed, or None."""
        return self._recording

    def note(self, event: dict) -> None:
        """Note an event on the current recording, in order with the media (via the worker)."""
        if self._recording is not None:
            self._submit(self._job_note, self._recording, dict(event))

    # -- loop-thread callbacks ---------------------------------------------------------------
    def _submit(self, fn, *args) -> asyncio.Future:
        future = self.loop.run_in_executor(self._worker, fn, *args)
        self._jobs.add(future)
        future.add_done_callback(self._job_done)
        return future

    def _job_done(self, future: asyncio.Future) -> None:
        self._jobs.discard(future)
        if not future.cancelled() and future.exception() is not None:
            exc = future.exception()
            log.error("media worker job failed: %s", exc)
            self._fault("media", f"media worker failed: {exc}")

    def _on_frame(self, frame: RawFrame | EncodedFrame) -> None:
        if self.closed:
            return
        now = self.loop.time()
        self.totals.captured += 1
        self.counters.captured += 1
        if self._last_index is not None and frame.index > self._last_index + 1:
            missing = frame.index - self._last_index - 1
            if self.video_ok:
                self.counters.dropped += missing
                self.totals.dropped += missing
            else:
                self.counters.lost += missing
                self.totals.lost += missing
        self._last_index = frame.index
        self._last_frame_time = now
        regained = self.video_ok is False
        if regained:
            self.video_ok = True
            self.note({"event": "video_regained", "at": self.wall_at(frame.capture_time)})
        if self._queued >= self._max_queue:
            self.counters.dropped += 1
            self.totals.dropped += 1
            return
        self._queued += 1
        blocks, self._audio_pending = self._audio_pending, []
        self._submit(self._job_video, frame, self.wall_at(frame.capture_time), regained, blocks)

    def _on_audio(self, block: AudioBlock) -> None:
        if self.closed:
            return
        self._last_audio_time = self.loop.time()
        self.totals.audio_blocks += 1
        self.counters.audio_blocks += 1
        if self.audio_ok is False:
            self.audio_ok = True
            self.note({"event": "audio_regained", "at": self.wall_at(block.capture_time)})
        # Audio rides with the next frame's job (one hand-over instead of two); without
        # video flowing, or after 100 ms, it goes on its own.
        self._audio_pending.append(block)
        if self.camera is None or not self.video_ok or len(self._audio_pending) >= 5:
            self._flush_audio()

    def _flush_audio(self) -> None:
        if self._audio_pending:
            blocks, self._audio_pending = self._audio_pending, []
            self._submit(self._job_audio, blocks)

    def _watch(self) -> None:
        if self.closed:
            return
        now = self.loop.time()
        video_timeout = max(0.5, 5.0 / self.fps)
        if self.camera is not None and self.video_ok and now - self._last_frame_time > video_timeout:
            self.video_ok = False
            self.note({"event": "video_lost", "at": self.wall_at(self._last_frame_time)})
            self._submit(self._job_video_present, False)
            self._fault("camera", f"no video frame for {now - self._last_frame_time:.1f} s")
        if self.audio_ok and now - self._last_audio_time > self.AUDIO_TIMEOUT_S:
            self.audio_ok = False
            self.note({"event": "audio_lost", "at": self.wall_at(self._last_audio_time)})
            self._fault("microphone", f"no audio for {now - self._last_audio_time:.1f} s")
        if self.camera is not None and now - self._last_light >= self.LIGHT_INTERVAL_S:
            self._last_light = now
            self._check_light(now)
        self._watch_handle = self.loop.call_later(self.WATCH_INTERVAL_S, self._watch)

    def _check_light(self, now: float) -> None:
        try:
            self.lux = float(self.camera.light_level())
        except Exception as exc:  # a light reading is never worth stopping the pipeline for
            log.warning("light reading failed: %s", exc)
            return
        switch = self.night.update(self.lux, now)
        if switch is None:
            return
        try:
            if self.ir is not None:
                self.ir.set_night(switch)
            self.camera.set_night_mode(switch)
        except Exception as exc:
            self._fault("ir", f"cannot switch night mode {'on' if switch else 'off'}: {exc}")
            return
        self.note({"event": "night_mode", "on": switch, "lux": round(self.lux, 2), "at": self.wall_at(now)})

    def _fault(self, kind: str, message: str) -> None:
        log.warning("%s fault: %s", kind, message)
        self.faults.append({"event": "fault", "kind": kind, "message": message,
                            "at": self._wall_now()})
        if self.on_fault is not None:
            self.on_fault(f"{kind}: {message}")

    def _fault_from_worker(self, kind: str, message: str) -> None:
        try:
            self.loop.call_soon_threadsafe(self._fault, kind, message)
        except RuntimeError:  # the loop is closed
            log.warning("%s fault after shutdown: %s", kind, message)

    # -- worker jobs (one thread, in order) ----------------------------------------------
    def _describe(self) -> dict:
        return {"frames_dropped": self.counters.dropped, "frames_late": self.counters.late,
                "frames_lost": self.counters.lost, "encoder_errors": self.counters.encoder_errors,
                "video_ok": self.video_ok, "audio_ok": self.audio_ok, "night_mode": self.night.night}

    def _job_begin(self, recording, press: float) -> None:
        packets = self.ring.drain()
        origin = packets[0].time if packets else press
        segmenter = Segmenter(recording, width=self.width, height=self.height, fps=self.fps,
                              audio_rate=self.audio.rate if self.audio else None,
                              segment_seconds=self.segment_seconds, origin=origin,
                              pre_event_end=press, describe=self._describe, clock=self.loop.time)
        segmenter.video_present = bool(self.video_ok)
        self._segmenter = segmenter
        self.pre_event_s = press - origin
        recording.note({"event": "media", "pre_event_s": round(self.pre_event_s, 6),
                        "pre_event_from": self.wall_at(origin), "pre_event_audio": self.ring.audio,
                        "width": self.width, "height": self.height, "fps": self.fps,
                        "camera": getattr(self.camera, "backend", None), "audio": self.audio is not None,
                        "night_mode": self.night.night, "video_ok": self.video_ok, "audio_ok": self.audio_ok})
        # The first frame captured after the press is a keyframe: a clean join, and (being
        # large) it completes its age chunk at once, so the press's media is durable quickly.
        if self.source is not None:
            self.source.request_keyframe(at=press)
        self._feed(packets)

    def _feed(self, packets) -> None:
        segmenter = self._segmenter
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
                self._fault_from_worker("storage", f"cannot write the segment: {exc}")
                return
        self.segments = segmenter.sealed

    def _job_video(self, frame, wall_time: float, regained: bool, audio_blocks: list) -> None:
        if audio_blocks:
            self._job_audio(audio_blocks)
        try:
            if self.loop.time() - frame.capture_time > 3.0 / self.fps:
                self.counters.late += 1
                self.totals.late += 1
            if regained:
                self.source.request_keyframe()
                if self._segmenter is not None:
                    self._segmenter.video_present = True
            try:
                packets = self.source.process(frame, wall_time)
            except EncoderError as exc:
                self._encoder_error(frame, exc)
                return
            self.counters.encoded += len(packets)
            self.totals.encoded += len(packets)
            self._feed(packets)
        finally:
            self._queued -= 1

    def _encoder_error(self, frame, exc: Exception) -> None:
        self.counters.encoder_errors += 1
        self.counters.dropped += 1
        self.totals.dropped += 1
        self.source.reset()  # a new encoder: the next frame is a keyframe
        segmenter = self._segmenter
        if segmenter is not None and not segmenter.closed:
            segmenter.recording.note({"event": "encoder_error", "frame": frame.index, "error": str(exc),
                                      "at": self.wall_at(frame.capture_time)})
            try:
                segmenter.cut("encoder_error")
            except Exception as exc2:
                segmenter.abort(f"seal after encoder error failed: {exc2}")
                self._fault_from_worker("storage", f"cannot seal the segment: {exc2}")
            self.segments = segmenter.sealed
        self._fault_from_worker("encoder", str(exc))

    def _job_audio(self, blocks: list[AudioBlock]) -> None:
        for block in blocks:
            try:
                packets = self.audio.push(block.samples, block.capture_time)
            except EncoderError as exc:
                self._fault_from_worker("audio-encoder", str(exc))
                continue
            self._route_audio(packets)

    def _route_audio(self, packets) -> None:
        segmenter = self._segmenter
        if segmenter is not None and not self.ring.audio:  # sound before the press only if the ring keeps it
            packets = [p for p in packets if p.time >= segmenter.pre_event_end]
        self._feed(packets)

    def _job_video_present(self, present: bool) -> None:
        if self._segmenter is not None:
            self._segmenter.video_present = present

    def _job_note(self, recording, event: dict) -> None:
        recording.note(event)

    def _job_end(self, stop: float) -> dict:
        segmenter = self._segmenter
        if segmenter is None:
            return {}
        if self.audio is not None:
            try:
                self._route_audio([p for p in self.audio.flush() if p.time < stop])
            except EncoderError as exc:
                self._fault_from_worker("audio-encoder", str(exc))
        last = None
        if not segmenter.closed:
            try:
                last = segmenter.close("stop")
            except Exception as exc:
                segmenter.abort(f"seal at stop failed: {exc}")
                self._fault_from_worker("storage", f"cannot seal the last segment: {exc}")
        self._segmenter = None
        self.segments = segmenter.sealed
        if segmenter.first_durable is not None:
            self.first_durable_at = segmenter.first_durable
            self.press_to_durable_s = segmenter.first_durable - segmenter.pre_event_end
        return {"segments": segmenter.sealed, "pre_event_s": round(self.pre_event_s, 6),
                "press_to_durable_s": self.press_to_durable_s,
                "frames": self.counters.as_dict(), "skipped_before_keyframe": segmenter.skipped_before_keyframe,
                "ts_bytes": segmenter.bytes, "last_segment": last}

    def __repr__(self) -> str:
        state = "recording" if self._recording is not None else ("armed" if self.armed else "idle")
        return f"<MediaPipeline {state} {self.camera!r} segments={self.segments}>"
