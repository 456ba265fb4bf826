"""Health watching: is the camera delivering, is the microphone, what went wrong.

Frame numbers tell a dropped frame (the pipeline could not keep up) from a lost one (the
camera was not delivering); the watchdogs notice a device that stops and the callbacks
notice it come back. Each change is noted on the recording and each fault is logged,
kept (the last ones show in the status) and reported through ``on_fault("kind: message")``
on the loop thread. Everything here runs on the loop thread except ``count`` (paired
counters, also bumped by the media worker) and ``fault_from_worker``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from recorder.media.nightmode import NightMode

log = logging.getLogger("pieton.media")


class FrameCounters:
    # unencoded: raw frames not encoded because nothing would keep them (armed, ring off)
    __slots__ = ("captured", "encoded", "unencoded", "dropped", "late", "lost", "encoder_errors", "audio_blocks")

    def __init__(self):
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}


class Health:
    AUDIO_TIMEOUT_S = 0.5

    def __init__(self, loop, *, has_camera: bool, has_audio: bool, fps: int, night: NightMode,
                 note: Callable[[dict], None], wall_at: Callable[[float], float],
                 wall_now: Callable[[], float], on_fault: Callable[[str], None] | None = None,
                 on_video_lost: Callable[[], None] | None = None):
        self.loop = loop
        self.has_camera, self.has_audio = has_camera, has_audio
        self.video_timeout = max(0.5, 5.0 / fps)
        self.night = night
        self._note, self._wall_at, self._wall_now = note, wall_at, wall_now
        self.on_fault = on_fault
        self.on_video_lost = on_video_lost
        self.video_ok: bool | None = None
        self.audio_ok: bool | None = None
        self.totals = FrameCounters()
        self.counters = FrameCounters()  # of the current (or last) recording
        self.faults: list[dict] = []
        self._last_index: int | None = None
        self._last_frame_time: float | None = None
        self._last_audio_time: float | None = None

    # -- counters -------------------------------------------------------------------------
    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the recording's counter and to the total since start."""
        setattr(self.counters, name, getattr(self.counters, name) + n)
        setattr(self.totals, name, getattr(self.totals, name) + n)

    def new_recording(self) -> None:
        self.counters = FrameCounters()

    def segment_figures(self) -> dict:
        """For each segment's metadata, at its seal (read from the media worker)."""
        counters = self.counters
        return {"frames_dropped": counters.dropped, "frames_late": counters.late,
                "frames_lost": counters.lost, "encoder_errors": counters.encoder_errors,
                "video_ok": self.video_ok, "audio_ok": self.audio_ok, "night_mode": self.night.night}

    # -- devices starting, delivering, stopping --------------------------------------------
    def armed(self, now: float) -> None:
        self._last_frame_time = self._last_audio_time = now
        self.audio_ok = True if self.has_audio else None
        if self.has_camera:
            self.video_ok = True

    def cannot_start(self, kind: str, exc: Exception) -> None:
        """A device that cannot start is a fault the agent is shown; the other one records."""
        if kind == "camera":
            self.video_ok = False
        else:
            self.audio_ok = False
        self.fault(kind, f"cannot start: {exc}")

    def frame(self, index: int, now: float, capture_time: float) -> bool:
        """A frame arrived; returns whether video was regained with it."""
        self.count("captured")
        if self._last_index is not None and index > self._last_index + 1:
            self.count("dropped" if self.video_ok else "lost", index - self._last_index - 1)
        self._last_index = index
        self._last_frame_time = now
        if self.video_ok is False:
            self.video_ok = True
            self._note({"event": "video_regained", "at": self._wall_at(capture_time)})
            return True
        return False

    def audio_block(self, now: float, capture_time: float) -> None:
        self._last_audio_time = now
        self.count("audio_blocks")
        if self.audio_ok is False:
            self.audio_ok = True
            self._note({"event": "audio_regained", "at": self._wall_at(capture_time)})

    def watch(self, now: float) -> None:
        """The watchdogs: a device silent for longer than its timeout is lost."""
        if self.has_camera and self.video_ok and now - self._last_frame_time > self.video_timeout:
            self.video_ok = False
            self._note({"event": "video_lost", "at": self._wall_at(self._last_frame_time)})
            if self.on_video_lost is not None:
                self.on_video_lost()
            self.fault("camera", f"no video frame for {now - self._last_frame_time:.1f} s")
        if self.audio_ok and now - self._last_audio_time > self.AUDIO_TIMEOUT_S:
            self.audio_ok = False
            self._note({"event": "audio_lost", "at": self._wall_at(self._last_audio_time)})
            self.fault("microphone", f"no audio for {now - self._last_audio_time:.1f} s")

    # -- the fault log ----------------------------------------------------------------------
    def fault(self, kind: str, message: str) -> None:
        log.warning("%s fault: %s", kind, message)
        self.faults.append({"event": "fault", "kind": kind, "message": message, "at": self._wall_now()})
        if self.on_fault is not None:
            self.on_fault(f"{kind}: {message}")

    def fault_from_worker(self, kind: str, message: str) -> None:
        try:
            self.loop.call_soon_threadsafe(self.fault, kind, message)
        except RuntimeError:  # the loop is closed
            log.warning("%s fault after shutdown: %s", kind, message)

    def status(self) -> dict:
        return {"frames": self.counters.as_dict(), "frames_total": self.totals.as_dict(),
                "faults": list(self.faults[-10:])}
