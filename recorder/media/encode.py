"""The encoding stage, in the media worker: frames and sound blocks to packets for the router.

A frame the encoder refuses is counted, the encoder is reset (the next frame opens a new
one, on a keyframe) and the router cuts the segment; a frame that waited too long for the
worker is counted late. The video and audio encoders themselves are ``source`` and
``audio`` (``stages.VideoStage`` and ``stages.AudioStage``).
"""

from __future__ import annotations

from drivers.camera import EncodedFrame, RawFrame
from drivers.microphone import AudioBlock
from recorder.errors import EncoderError
from recorder.media.health import Health
from recorder.media.router import Router
from recorder.media.stages import AudioStage, VideoStage


class Encode:
    def __init__(self, source: VideoStage | None, audio: AudioStage | None, router: Router, health: Health,
                 *, fps: int, clock):
        self.source = source
        self.audio = audio
        self.router = router
        self.health = health
        self.late_after_s = 3.0 / fps
        self.clock = clock
        self._idle = False  # armed with the ring off: frames not encoded (see _wanted)

    def video(self, frame: RawFrame | EncodedFrame, wall_time: float, regained: bool) -> None:
        if self.clock() - frame.capture_time > self.late_after_s:
            self.health.count("late")
        if regained:
            self.source.request_keyframe()
            self.router.video_present(True)
        if isinstance(frame, RawFrame) and not self._wanted(frame.capture_time):
            self.health.count("unencoded")
            return
        self._idle = False
        try:
            packets = self.source.process(frame, wall_time)
        except EncoderError as exc:
            self.health.count("encoder_errors")
            self.health.count("dropped")
            self.source.reset()  # a new encoder: the next frame is a keyframe
            self.router.encoder_error(frame.index, frame.capture_time, exc)
            self.health.fault_from_worker("encoder", str(exc))
            return
        self.health.count("encoded", len(packets))
        self.router.route(packets)

    def _wanted(self, capture_time: float) -> bool:
        """Whether a raw frame needs encoding: not while armed with the pre-event ring off
        (nothing would keep it; on a Pi that is battery, in the soak it is most of the CPU),
        nor, then, a frame captured before the press. The encoder is kept open (opening
        libx264 at the press would delay the press's media); ``keyframe_from`` makes the
        press's first frame a keyframe."""
        if self.router.ring.enabled:
            return True
        segmenter = self.router.segmenter
        if segmenter is not None and (segmenter.pre_event_end is None or capture_time >= segmenter.pre_event_end):
            return True
        if not self._idle:
            self._idle = True
            self.source.warm()
        return False

    def sound(self, blocks: list[AudioBlock]) -> None:
        for block in blocks:
            try:
                packets = self.audio.push(block.samples, block.capture_time)
            except EncoderError as exc:
                self.health.fault_from_worker("audio-encoder", str(exc))
                continue
            self.router.route_audio(packets)

    def keyframe_from(self, press: float) -> None:
        """The first frame captured after the press is a keyframe: a clean join, and (being
        large) it fills much of its sealer chunk at once, so the press's media is durable quickly."""
        if self.source is not None:
            self.source.request_keyframe(at=press)

    def sound_until(self, stop: float) -> list:
        """What the audio encoder still holds, up to ``stop``: the recording's last sound."""
        if self.audio is None:
            return []
        try:
            return [p for p in self.audio.flush() if p.time < stop]
        except EncoderError as exc:
            self.health.fault_from_worker("audio-encoder", str(exc))
            return []

    def __repr__(self) -> str:
        return f"<Encode video={self.source is not None} audio={self.audio is not None}>"
