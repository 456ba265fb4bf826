"""The video source stage: whatever the camera delivers, out come encoded packets.

Raw frames (simulated, OpenCV) get the overlay and go through libx264 here; an encoding
camera (picamera2) draws the overlay in the pre-callback this stage gives it and hands
over H.264, so its frames pass straight through. Either way the overlay is set up here
and only here. After this stage the pipeline is one code path.
"""

from __future__ import annotations

from collections.abc import Callable

from drivers.camera import Camera, EncodedFrame, RawFrame
from recorder.media.encoder import VideoEncoder
from recorder.media.overlay import Overlay
from recorder.media.packets import Packet


class VideoSource:
    """``wall_at(capture_time)`` turns a frame's loop-clock capture time into the wall time
    the overlay shows."""

    def __init__(self, camera: Camera, overlay: Overlay, encoder: VideoEncoder | None,
                 wall_at: Callable[[float], float]):
        self.camera = camera
        self.overlay = overlay
        self.encoder = encoder
        if camera.encodes:
            camera.set_pre_callback(
                (lambda image, t: overlay.apply(image, wall_at(t))) if overlay.enabled else None)

    @classmethod
    def for_camera(cls, camera: Camera, overlay: Overlay, video_config,
                   wall_at: Callable[[float], float]) -> VideoSource:
        encoder = None
        if not camera.encodes:
            encoder = VideoEncoder(camera.width, camera.height, camera.fps, preset=video_config.preset,
                                   bitrate_kbps=video_config.bitrate_kbps,
                                   keyframe_interval_s=video_config.keyframe_interval_s)
        return cls(camera, overlay, encoder, wall_at)

    def process(self, frame: RawFrame | EncodedFrame, wall_time: float) -> list[Packet]:
        """Encode one frame (in the worker thread); raises EncoderError on a bad frame."""
        if isinstance(frame, EncodedFrame):
            return [Packet("video", frame.data, frame.capture_time, frame.keyframe, 1.0 / self.camera.fps,
                           frame.index)]
        image = frame.image()
        if self.overlay.enabled and image.ndim == 2 and image.shape[0] == frame.height * 3 // 2:
            self.overlay.apply(image, wall_time)
        return self.encoder.encode(image, frame.capture_time, frame.index)

    def request_keyframe(self, at: float = float("-inf")) -> None:
        """A keyframe from capture time ``at`` on (an encoding camera: its next frame)."""
        if self.encoder is not None:
            self.encoder.request_keyframe(at)
        else:
            self.camera.request_keyframe()

    def warm(self) -> None:
        """Open the encoder now, off the press's path, if it is not open yet."""
        if self.encoder is not None:
            self.encoder.warm()

    def reset(self) -> None:
        if self.encoder is not None:
            self.encoder.reset()
