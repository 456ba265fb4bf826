"""The camera: a video source with a light reading and a day/night mode.

A camera delivers either raw frames (``RawFrame``, I420 planes; the pipeline overlays and
encodes them: the simulated and OpenCV backends) or encoded H.264 access units
(``EncodedFrame``, with keyframe flag: picamera2's hardware encoder, whose overlay runs in
its pre-callback). Downstream of ``recorder.media.source`` the pipeline is one code path.

Callbacks always run on the asyncio loop thread; real backends capture in their own
thread and hand over with ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from drivers.device import Source
from drivers.errors import DriverUnavailable
from drivers.registry import pick_backend

BACKENDS = {
    "simulated": "drivers.camera:SimulatedCamera",
    "picamera2": "drivers.camera:Picamera2Camera",
    "opencv": "drivers.camera:OpenCvCamera",
}

# Luma of black and white in limited-range video.
BLACK, WHITE = 16, 235
COUNTER_BITS = 24


@dataclass
class RawFrame:
    """One uncompressed frame: ``image()`` is I420, shape (height * 3 // 2, width), uint8.

    ``render`` lets a simulated sensor draw the frame lazily, in the pipeline's worker
    thread rather than on the loop thread."""

    index: int
    capture_time: float  # the loop's monotonic clock
    width: int
    height: int
    render: Callable[[], np.ndarray] = field(repr=False)
    _image: np.ndarray | None = field(default=None, repr=False)

    def image(self) -> np.ndarray:
        if self._image is None:
            self._image = self.render()
        return self._image


@dataclass
class EncodedFrame:
    """One H.264 access unit (Annex B, parameter sets inline on keyframes)."""

    data: bytes = field(repr=False)
    keyframe: bool
    capture_time: float
    index: int


class Camera(Source, ABC):
    """A video source. ``encodes`` says whether it delivers EncodedFrame or RawFrame."""

    kind = "camera"
    encodes = False
    backend = "abstract"

    def __init__(self, width: int, height: int, fps: int):
        if width % 2 or height % 4:
            raise ValueError(f"frame size must have an even width and a height divisible by 4, "
                             f"got {width}x{height}")
        super().__init__()
        self.width, self.height, self.fps = int(width), int(height), int(fps)
        self.night_mode = False
        self.pre_callback: Callable[[np.ndarray, float], None] | None = None

    @abstractmethod
    def start(self, loop, callback: Callable[[RawFrame | EncodedFrame], None]) -> None:
        """Begin delivering frames to ``callback`` on the loop thread."""

    def light_level(self) -> float:
        """Scene illuminance estimate in lux (the last frame's, or 0 before any)."""
        return 0.0

    def set_night_mode(self, on: bool) -> None:
        """Monochrome, IR-sensitive image (the IR switches themselves are drivers.ir)."""
        self.night_mode = bool(on)

    def set_pre_callback(self, fn: Callable[[np.ndarray, float], None] | None) -> None:
        """For encoding cameras: draw on each I420 frame (at its capture time) before encoding."""
        self.pre_callback = fn

    def request_keyframe(self) -> None:
        """Ask the encoder for a keyframe soon (after a fault); best effort."""
        return None

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.width}x{self.height}@{self.fps} {self._run_state()} "
                f"{'night' if self.night_mode else 'day'}>")


# -- the burnt-in frame counter of the simulated sensor ---------------------------------

def counter_block(width: int) -> int:
    return max(10, width // 40) // 2 * 2


def draw_counter(y: np.ndarray, index: int) -> None:
    """Draw ``index`` as a row of black/white blocks (start guard white, then 24 bits MSB
    first, end guard black), readable back after lossy compression."""
    height, width = y.shape
    b = counter_block(width)
    top = height - 2 * b
    bits = [1] + [(index >> (COUNTER_BITS - 1 - i)) & 1 for i in range(COUNTER_BITS)] + [0]
    x = b
    for bit in bits:
        y[top:top + b, x:x + b] = WHITE if bit else BLACK
        x += b


def read_counter(y: np.ndarray) -> int | None:
    """The frame counter drawn by ``draw_counter`` in a decoded luma plane, or None."""
    height, width = y.shape
    b = counter_block(width)
    top = height - 2 * b
    q = b // 4
    values = []
    x = b
    for _ in range(COUNTER_BITS + 2):
        values.append(float(y[top + q:top + b - q, x + q:x + b - q].mean()))
        x += b
    bits = [1 if v > 125 else 0 for v in values]
    if bits[0] != 1 or bits[-1] != 0 or any(40 < v < 210 for v in values):
        return None
    number = 0
    for bit in bits[1:-1]:
        number = number << 1 | bit
    return number


def _lux_to_gain(lux: float) -> float:
    # Sensor response with the auto-exposure at its limit: daylight saturates the gain.
    return float(min(1.0, max(0.0, lux) / 200.0) ** 0.5)


def _gain_to_lux(gain: float) -> float:
    return 200.0 * max(0.0, gain) ** 2


class SimulatedCamera(Camera):
    """A street scene panning past (the agent walks), a pedestrian crossing it, a
    burnt-in frame counter (text and blocks). Brightness follows the scene's light level
    (``set_light``); night mode gives a monochrome, IR-lit image.

    Fault injection for tests and scenarios: ``fail()`` stops the sensor delivering frames
    (the counter keeps counting, as a real sensor's sequence does), ``recover()`` resumes;
    ``corrupt_next()`` makes the next frame malformed, which the encoder rejects.
    """

    backend = "simulated"
    IR_GAIN = 0.8

    def __init__(self, width: int, height: int, fps: int, *, lux: float = 300.0, seed: int = 0):
        super().__init__(width, height, fps)
        self.lux = float(lux)
        self.failed = False
        self._corrupt = False
        self._loop = None
        self._callback = None
        self._handle = None
        self._t0 = 0.0
        self._index = 0
        self._measured_mean = None
        self._build_scene(seed)

    # -- the scene ----------------------------------------------------------------------
    def _build_scene(self, seed: int) -> None:
        # Built in uint8/float32 with broadcasting: a 720p scene must not cost 100 MB of
        # peak memory on a device with little of it.
        rng = np.random.default_rng(seed)
        w, h = self.width, self.height
        strip = 3 * w  # the street is three screens wide; the view pans along it
        rows = np.arange(h, dtype=np.float32)
        sky = h * 0.35
        column = np.where(rows < sky, 170 + 40 * (1 - rows / sky), 90 + 50 * (rows / h)).astype(np.uint8)
        y = np.empty((h, strip), np.uint8)
        y[:] = column[:, None]  # sky and pavement
        x = 0
        while x < strip:  # facades: blocks of different brightness with windows
            bw = int(rng.integers(w // 8, w // 3))
            top = int(rng.integers(h // 10, int(sky)))
            y[top:int(h * 0.75), x:x + bw] = rng.integers(60, 200)
            for wy in range(top + 8, int(h * 0.7) - 12, max(12, h // 12)):
                for wx in range(x + 6, x + bw - 10, max(14, w // 24)):
                    y[wy:wy + max(4, h // 40), wx:wx + max(5, w // 60)] = rng.integers(20, 60)
            x += bw + int(rng.integers(2, w // 20))
        noise = rng.integers(-6, 7, size=y.shape, dtype=np.int8)
        self._scene_y = np.clip(y.astype(np.int16) + noise, BLACK, WHITE).astype(np.uint8)
        del noise, y
        xs = np.arange(0, strip, 2, dtype=np.float32)
        half_rows = np.arange(h // 2, dtype=np.float32)[:, None]
        self._scene_u = np.clip(128 + 30 * np.sin(xs / 37.0)[None, :] + 0 * half_rows, 16, 240).astype(np.uint8)
        self._scene_v = np.clip(128 + 30 * np.cos(xs / 53.0)[None, :] * (half_rows / h), 16, 240).astype(np.uint8)
        # IR illumination falls off from the centre of the image
        gx = (np.arange(w, dtype=np.float32) - w / 2) / (w / 2)
        gy = (np.arange(h, dtype=np.float32) - h / 2) / (h / 2)
        self._ir_dark = np.clip(np.hypot(gx[None, :], gy[:, None]) * 90, 0, 120).astype(np.uint8)
        self._strip = strip

    def _render(self, index: int, gain: float, night: bool, corrupt: bool) -> np.ndarray:
        import cv2

        w, h = self.width, self.height
        pan = (index * max(1, w // 320)) % (self._strip - w)
        # luma through a look-up table: ambient light, plus the IR illuminator at night
        levels = np.arange(256, dtype=np.float32) - BLACK
        lut_gain = gain + (self.IR_GAIN if night else 0.0)
        lut = np.clip(BLACK + levels * lut_gain, BLACK, WHITE).astype(np.uint8)
        out = np.empty((h * 3 // 2, w), np.uint8)
        y = out[:h]
        cv2.LUT(self._scene_y[:, pan:pan + w], lut, dst=y)
        if night:
            cv2.subtract(y, self._ir_dark, dst=y)
        # a pedestrian crossing the street
        px = int((index * max(2, w // 160)) % (w + 60)) - 30
        body = int(BLACK + 60 * min(1.0, lut_gain))
        cv2.rectangle(y, (px, int(h * 0.45)), (px + max(8, w // 40), int(h * 0.85)), body, -1)
        cv2.circle(y, (px + max(4, w // 80), int(h * 0.42)), max(5, h // 40), body + 20, -1)
        # the exposure meter: mean luminance of the ambient light alone (the sensor knows
        # its own illuminator's share), over the scene in view
        sample = self._scene_y[::8, pan:pan + w:8]
        ambient = np.clip(BLACK + (sample.astype(np.float32) - BLACK) * gain, BLACK, WHITE)
        self._measured_mean = (float(ambient.mean()), float(sample.mean()))
        # I420: the U then V planes follow the luma, each (h/2, w/2), packed in w-wide rows
        u = out[h:h + h // 4].reshape(h // 2, w // 2)
        v = out[h + h // 4:].reshape(h // 2, w // 2)
        if night:
            u[:] = 128
            v[:] = 128
        else:
            half = pan // 2
            # chroma fades toward grey in the dark, as on a real sensor
            cv2.addWeighted(self._scene_u[:, half:half + w // 2], gain, u, 0, 128 * (1 - gain), dst=u)
            cv2.addWeighted(self._scene_v[:, half:half + w // 2], gain, v, 0, 128 * (1 - gain), dst=v)
        draw_counter(y, index)
        b = counter_block(w)
        # neutral chroma under the counter, so colour bleeding never blurs its blocks
        u[(h - 3 * b) // 2:(h - b) // 2, : (COUNTER_BITS + 3) * b // 2] = 128
        v[(h - 3 * b) // 2:(h - b) // 2, : (COUNTER_BITS + 3) * b // 2] = 128
        cv2.putText(y, f"#{index:07d}", (b, h - 2 * b - b // 2), cv2.FONT_HERSHEY_SIMPLEX,
                    max(0.35, b / 28), WHITE, max(1, b // 10), cv2.LINE_AA)
        if corrupt:  # a torn buffer: the encoder must refuse it
            return out[: h // 2]
        return out

    # -- driver interface -----------------------------------------------------------------
    def set_light(self, lux: float) -> None:
        """The scene's illuminance (day ~ 1000+, dusk ~ 10-50, night ~ 1)."""
        self.lux = max(0.0, float(lux))

    def light_level(self) -> float:
        """Lux from the last frame's mean ambient luminance (relative to the scene's own
        reflectance), the way a sensor meters with its exposure known."""
        if self._measured_mean is None:
            return _gain_to_lux(_lux_to_gain(self.lux))
        ambient, scene = self._measured_mean
        gain = (ambient - BLACK) / (scene - BLACK) if scene > BLACK else 0.0
        return _gain_to_lux(min(1.0, gain))

    def start(self, loop, callback) -> None:
        if not self._begin(loop, callback):
            return
        self._t0 = loop.time()
        self._index = 0
        self._started = True
        self._schedule()

    def _schedule(self) -> None:
        self._handle = self._loop.call_at(self._t0 + self._index / self.fps, self._tick)

    def _tick(self) -> None:
        if self._closed:
            return
        index = self._index
        self._index += 1
        if not self.failed:
            gain = _lux_to_gain(self.lux)
            night, corrupt = self.night_mode, self._corrupt
            self._corrupt = False
            frame = RawFrame(index, self._t0 + index / self.fps, self.width, self.height,
                             lambda: self._render(index, gain, night, corrupt))
            self._callback(frame)
        self._schedule()

    def fail(self) -> None:
        self.failed = True

    def recover(self) -> None:
        self.failed = False

    def corrupt_next(self) -> None:
        self._corrupt = True

    def render_still(self, index: int = 0) -> np.ndarray:
        """One frame as the sensor would deliver it now (benchmarks, tests)."""
        return self._render(index, _lux_to_gain(self.lux), self.night_mode, False)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        super().close()


class _ThreadedCamera(Camera):
    """Common part of the real backends: a capture thread handing frames to the loop."""

    def __init__(self, width, height, fps):
        super().__init__(width, height, fps)
        self._thread = None
        self._stop = threading.Event()
        self._mean_luma = None

    def start(self, loop, callback) -> None:
        if not self._begin(loop, callback):
            return
        self._started = True
        self._thread = threading.Thread(target=self._run, name=f"{self.backend}-capture", daemon=True)
        self._thread.start()

    def _deliver(self, frame) -> None:
        try:
            self._loop.call_soon_threadsafe(self._callback, frame)
        except RuntimeError:  # the loop is closed: we are shutting down
            self._stop.set()

    def light_level(self) -> float:
        if self._mean_luma is None:
            return 0.0
        return _gain_to_lux(min(1.0, max(0.0, (self._mean_luma - BLACK) / 110.0)))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self._thread = None
        self._release()
        super().close()

    def _open(self) -> None: ...

    def _release(self) -> None: ...

    def _run(self) -> None: ...


class OpenCvCamera(_ThreadedCamera):
    """A V4L2 USB camera through OpenCV; the pipeline encodes its frames."""

    backend = "opencv"

    def __init__(self, width, height, fps, *, device: int | str = 0):
        super().__init__(width, height, fps)
        self.device = device
        self._capture = None
        self._open()  # a missing camera fails here, where the hardware layer reports it

    def _open(self) -> None:
        import cv2

        capture = cv2.VideoCapture(self.device, cv2.CAP_V4L2)
        if not capture.isOpened():
            raise DriverUnavailable(f"cannot open V4L2 camera {self.device!r}")
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        capture.set(cv2.CAP_PROP_FPS, self.fps)
        self._capture = capture

    def _run(self) -> None:
        import cv2

        index = 0
        while not self._stop.is_set():
            ok, bgr = self._capture.read()
            now = time.monotonic()
            if not ok:
                time.sleep(0.05)  # unplugged or stalled: the pipeline's watchdog reports it
                continue
            if bgr.shape[1] != self.width or bgr.shape[0] != self.height:
                bgr = cv2.resize(bgr, (self.width, self.height), interpolation=cv2.INTER_AREA)
            i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
            if self.night_mode:
                i420[self.height:] = 128
            self._mean_luma = float(i420[:self.height:8, ::8].mean())
            self._deliver(RawFrame(index, now, self.width, self.height, lambda img=i420: img))
            index += 1

    def _release(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class Picamera2Camera(_ThreadedCamera):
    """The Raspberry Pi camera with its H.264 encoder (hardware on Pi 4 / Zero 2).

    The whole sensor array is used (ScalerCrop on the full array, a full-field binned
    mode) because the module is wide-angle; the overlay is drawn by picamera2's
    pre-callback; ``Lux`` comes from each request's metadata."""

    backend = "picamera2"
    encodes = True

    def __init__(self, width, height, fps, *, bitrate_kbps: int = 4000, keyframe_interval_s: float = 1.0):
        super().__init__(width, height, fps)
        self.bitrate = int(bitrate_kbps) * 1000
        self.keyframe_interval = max(1, round(keyframe_interval_s * fps))
        self._picam = None
        self._encoder = None
        self._lux = None
        self._open()  # a missing library or camera fails here, where the hardware layer reports it

    def _open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise DriverUnavailable(f"picamera2 is not installed: {exc}") from None
        try:
            self._picam = Picamera2()
        except Exception as exc:  # libcamera raises plain errors when no camera is attached
            raise DriverUnavailable(f"no Raspberry Pi camera: {exc}") from None

    def start(self, loop, callback) -> None:
        if not self._begin(loop, callback):
            return
        from picamera2 import MappedArray
        from picamera2.encoders import H264Encoder
        from picamera2.outputs import Output

        picam = self._picam
        full = picam.camera_properties["PixelArraySize"]
        # the fastest mode that still covers the whole array (binned), for the full field of view
        modes = [m for m in picam.sensor_modes if tuple(m.get("crop_limits", (0, 0, 0, 0))[2:]) == tuple(full)
                 and m.get("fps", 0) >= self.fps]
        sensor = {"output_size": min(modes, key=lambda m: m["size"][0])["size"]} if modes else {}
        config = picam.create_video_configuration(
            main={"size": (self.width, self.height), "format": "YUV420"}, sensor=sensor,
            controls={"FrameRate": self.fps, "ScalerCrop": (0, 0, full[0], full[1])})
        picam.configure(config)
        camera = self

        def pre_callback(request):
            metadata = request.get_metadata()
            camera._lux = metadata.get("Lux")
            if camera.pre_callback is not None:
                with MappedArray(request, "main") as mapped:
                    camera.pre_callback(mapped.array, time.monotonic())

        picam.pre_callback = pre_callback

        class PacketOutput(Output):
            def __init__(self):
                super().__init__()
                self.index = 0

            def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
                if audio:
                    return
                camera._deliver(EncodedFrame(bytes(frame), bool(keyframe), time.monotonic(), self.index))
                self.index += 1

        self._encoder = H264Encoder(bitrate=self.bitrate, repeat=True, iperiod=self.keyframe_interval)
        picam.start_recording(self._encoder, PacketOutput())
        self._started = True

    def light_level(self) -> float:
        return float(self._lux) if self._lux is not None else 0.0

    def set_night_mode(self, on: bool) -> None:
        super().set_night_mode(on)
        if self._picam is not None:
            self._picam.set_controls({"Saturation": 0.0 if on else 1.0})

    def _release(self) -> None:
        if self._picam is not None:
            try:
                if self._started:
                    self._picam.stop_recording()
            finally:
                self._picam.close()
                self._picam = None


def open_camera(backend: str, config, **kw) -> Camera:
    """The camera for ``backend`` at the configuration's [video] size and rate."""
    cls = pick_backend("camera", backend, BACKENDS)
    video = config.video
    if backend == "picamera2":
        kw.setdefault("bitrate_kbps", video.bitrate_kbps)
        kw.setdefault("keyframe_interval_s", video.keyframe_interval_s)
    return cls(video.width, video.height, video.fps, **kw)
