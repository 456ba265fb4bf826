"""MediaPipeline: the daemon's one handle on video and audio; it composes the stages.

    camera -> VideoSource (overlay, H.264) --+
    microphone -> AudioEncoder (AAC) --------+--> Router --> PreEventRing (armed)
                                                        \\-> Segmenter -> MPEG-TS -> sealer

The camera and microphone call back on the loop thread; ``MediaWorker`` hands their
frames and sound to one worker thread, where ``Encode`` and ``Router`` run in arrival
order; notes for the recording go through it too (``note``), so they never race a seal.
``Health`` (watchdogs, frame accounting, fault log) and ``NightSwitch`` (light, IR) watch
on the side, from one timer on the loop.

Faults are reported, never swallowed: a camera that stops, a microphone that stops, an
encoder that refuses a frame, a sealer that cannot write each call ``on_fault("kind:
message")`` on the loop thread and are noted in the recording's metadata.
"""

from __future__ import annotations

from drivers.camera import EncodedFrame, RawFrame
from drivers.microphone import AudioBlock
from recorder.clock import wall_at, wall_now
from recorder.errors import DriverError, MediaError
from recorder.media.audio import AudioEncoder
from recorder.media.encode import Encode
from recorder.media.health import Health
from recorder.media.nightmode import NightMode, NightSwitch
from recorder.media.overlay import Overlay
from recorder.media.ring import PreEventRing
from recorder.media.router import Router
from recorder.media.source import VideoSource
from recorder.media.stages import RecordingSealer
from recorder.media.worker import MediaWorker


class MediaPipeline:
    """``config``: the device configuration; ``camera``, ``microphone``, ``ir``: drivers
    (each may be None: the others still record); ``loop``: the daemon's event loop;
    ``wall_clock``: what turns loop time into UTC; ``on_fault("kind: message")``: called on
    the loop thread; ``executor``: the media worker (one thread), made here when None."""

    WATCH_INTERVAL_S = 0.25

    def __init__(self, config, camera, microphone, ir, *, loop, wall_clock, on_fault=None, executor=None):
        self.config = config
        self.camera = camera
        self.microphone = microphone if config.audio.enabled else None
        self.loop = loop
        self._wall_now = wall_now(wall_clock)
        video = config.video
        # without a camera (it failed to open) the pipeline still records sound
        self.fps = camera.fps if camera is not None else video.fps
        self.width = camera.width if camera is not None else video.width
        self.height = camera.height if camera is not None else video.height
        self.overlay = Overlay(config.device.camera_id, enabled=video.overlay,
                               zone_name=config.device.timezone)
        self.source = (VideoSource.for_camera(camera, self.overlay, video, self.wall_at)
                       if camera is not None else None)
        self.audio = AudioEncoder(config.audio.sample_rate, config.audio.bitrate_kbps) if self.microphone else None
        pre = config.prebuffer
        # the encoder's VBV holds the rate; leave room for one extra group of pictures and slack
        per_s = video.bitrate_kbps * 125 + (config.audio.bitrate_kbps * 125 if pre.audio else 0)
        max_bytes = int(per_s * (pre.seconds + 2 * video.keyframe_interval_s) * 1.5) + (1 << 20)
        self.ring = PreEventRing(pre.seconds, max_bytes=max_bytes, audio=pre.audio and self.audio is not None)
        self.night = NightMode.from_config(config)
        self.health = Health(loop, has_camera=camera is not None, has_audio=self.audio is not None,
                             fps=self.fps, night=self.night, note=self.note, wall_at=self.wall_at,
                             wall_now=self._wall_now, on_fault=on_fault, on_video_lost=self._video_lost)
        self.night_switch = NightSwitch(self.night, camera, ir, note=self.note, wall_at=self.wall_at,
                                        fault=self.health.fault)
        self.router = Router(self.ring, self.health, width=self.width, height=self.height, fps=self.fps,
                             audio_rate=self.audio.rate if self.audio else None,
                             segment_seconds=video.segment_seconds, clock=loop.time, wall_at=self.wall_at)
        self.encode = Encode(self.source, self.audio, self.router, self.health, fps=self.fps, clock=loop.time)
        self.worker = MediaWorker(loop, self.encode, self.health, fps=self.fps, executor=executor)
        self.armed = False
        self.closed = False
        self._recording: RecordingSealer | None = None  # the loop thread's view
        self._watch_handle = None
        self._last_capture = float("-inf")  # of the last frame handed to the worker

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
        self.health.armed(self.loop.time())
        if self.camera is not None:
            try:
                self.camera.start(self.loop, self._on_frame)
            except DriverError as exc:
                self.health.cannot_start("camera", exc)
        if self.audio is not None:
            try:
                self.microphone.start(self.loop, self._on_audio)
            except DriverError as exc:
                self.health.cannot_start("microphone", exc)
        self._watch_handle = self.loop.call_later(self.WATCH_INTERVAL_S, self._watch)

    def start_recording(self, recording: RecordingSealer, *, pressed: float | None = None) -> None:
        """Begin a recording from the oldest keyframe in the ring. The worker's router sets
        the recording's ``pre_event_s`` once it has caught up to the press: what the ring
        holds now may lag behind the camera while the encoder is busy.

        ``pressed``: the loop time of the press when it was taken before ``recording`` was
        opened (opening it takes fsyncs): media captured from then on is the press's. It is
        used only if no frame captured after it has reached the encoder yet (such a frame
        would have been encoded without the press's keyframe); otherwise the press is now."""
        if not self.armed:
            raise MediaError("media pipeline is not armed")
        if self._recording is not None:
            raise MediaError(f"already recording {getattr(self._recording, 'id', '?')}")
        press = self.loop.time()
        if pressed is not None and self._last_capture < pressed <= press:
            press = pressed
        self._recording = recording
        self.health.new_recording()
        self.worker.flush_sound()  # sound before the press goes to the ring (or nowhere), in order
        self.worker.submit(self._job_begin, recording, press)

    async def stop_recording(self) -> dict:
        """Seal the last segment (media captured up to now included); returns a summary."""
        if self._recording is None:
            return {}
        stop = self.loop.time()
        self.worker.flush_sound()
        try:
            summary = await self.worker.submit(self._job_end, stop)
        finally:
            self._recording = None
        return summary or {}

    @property
    def recording(self) -> RecordingSealer | None:
        """The recording being fed, or None."""
        return self._recording

    def note(self, event: dict) -> None:
        """Note an event on the current recording, in order with the media (via the worker)."""
        if self._recording is not None:
            self.worker.submit(self.router.note, dict(event))

    def set_agent(self, agent: str | None) -> None:
        self.overlay.set_agent(agent)

    def set_position(self, position: tuple[float, float] | None) -> None:
        """(lat, lon) of the last fresh fix, or None when the position is unknown."""
        self.overlay.set_position(position)

    def status(self) -> dict:
        health, lux = self.health, self.night_switch.lux
        return {
            "state": self._state(),
            "recording": getattr(self._recording, "id", None),
            "video": {"width": self.width, "height": self.height, "fps": self.fps,
                      "ok": health.video_ok, "backend": getattr(self.camera, "backend", None)},
            "audio": {"ok": health.audio_ok, "enabled": self.audio is not None},
            "night_mode": self.night.night, "lux": None if lux is None else round(lux, 2),
            "prebuffer": self.ring.status(),
            "segments": self.router.segments,
            "pre_event_s": round(self.router.pre_event_s, 3),
            "backlog": self.worker.queued,
            **health.status(),
        }

    async def close(self) -> None:
        if self.closed:
            return
        if self._recording is not None:
            await self.stop_recording()
        self.closed = True
        self.armed = False
        self._stop_hardware()
        await self.worker.drain()
        self.ring.clear()  # RAM only: nothing of the pre-event buffer outlives the pipeline
        self.worker.shutdown()
        self.router.close()

    def power_cut(self) -> None:
        """Simulated loss of power: stop where we are, seal nothing (recovery at the next
        start deals with what is on the card); the RAM ring is simply gone."""
        self.closed = True
        self.armed = False
        self.router.drop()
        self._recording = None
        self._stop_hardware()
        self.ring.clear()
        self.worker.shutdown(now=True)
        self.router.close()

    def _stop_hardware(self) -> None:
        if self._watch_handle is not None:
            self._watch_handle.cancel()
            self._watch_handle = None
        if self.camera is not None:
            self.camera.close()
        if self.microphone is not None:
            self.microphone.close()

    def _state(self) -> str:
        return "recording" if self._recording is not None else ("armed" if self.armed else "idle")

    # -- loop thread: the devices' callbacks --------------------------------------------
    def _on_frame(self, frame: RawFrame | EncodedFrame) -> None:
        if self.closed:
            return
        regained = self.health.frame(frame.index, self.loop.time(), frame.capture_time)
        self._last_capture = max(self._last_capture, frame.capture_time)
        self.worker.frame(frame, self.wall_at(frame.capture_time), regained)

    def _on_audio(self, block: AudioBlock) -> None:
        if self.closed:
            return
        self.health.audio_block(self.loop.time(), block.capture_time)
        # without video flowing no frame takes the sound along
        self.worker.sound(block, alone=self.camera is None or not self.health.video_ok)

    def _watch(self) -> None:
        if self.closed:
            return
        now = self.loop.time()
        self.health.watch(now)
        self.night_switch.watch(now)
        self._watch_handle = self.loop.call_later(self.WATCH_INTERVAL_S, self._watch)

    def _video_lost(self) -> None:
        self.worker.submit(self.router.video_present, False)

    # -- worker jobs (one thread, in order) ----------------------------------------------
    def _job_begin(self, recording: RecordingSealer, press: float) -> None:
        health = self.health
        self.router.begin(recording, press, {
            "width": self.width, "height": self.height, "fps": self.fps,
            "camera": getattr(self.camera, "backend", None), "audio": self.audio is not None,
            "night_mode": self.night.night, "video_ok": health.video_ok, "audio_ok": health.audio_ok})
        self.encode.keyframe_from(press)

    def _job_end(self, stop: float) -> dict:
        if self.router.recording is None:
            return {}
        return self.router.end(self.encode.sound_until(stop))

    def __repr__(self) -> str:
        return f"<MediaPipeline {self._state()} {self.camera!r} segments={self.router.segments}>"
