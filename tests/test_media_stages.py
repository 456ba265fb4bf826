"""The seams between the media stages: the sealer alone knows where its durable points
are, the container alone knows its filler, the video source alone sets up the overlay."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from conftest import write_config
from test_evidence_support import Device
from test_media_press import FPS, PRESS, H, W, frames

from drivers.camera import Camera, SimulatedCamera
from recorder.config import load_config
from recorder.evidence.age import CHUNK_SIZE, ENCRYPTED_CHUNK, NONCE_SIZE, header_info
from recorder.media.audio import AudioEncoder
from recorder.media.encoder import VideoEncoder
from recorder.media.health import Health
from recorder.media.mpegts import TS_PACKET, TsMuxer, filler
from recorder.media.nightmode import NightMode
from recorder.media.overlay import Overlay
from recorder.media.segmenter import Segmenter
from recorder.media.source import VideoSource
from recorder.media.stages import AudioStage, RecordingSealer, SegmentFigures, SegmentSealer, VideoStage

# -- the typed seams ------------------------------------------------------------------------

def test_each_stage_offers_the_interface_the_next_one_expects(tmp_path):
    device = Device(tmp_path)
    spool = device.spool()
    rec = spool.open_recording(device.clock.now(), "agent", {})
    seg = rec.open_segment()
    assert isinstance(rec, RecordingSealer) and isinstance(seg, SegmentSealer)
    config = load_config(write_config(tmp_path / "cfg"))
    camera = SimulatedCamera(320, 240, 10)
    assert isinstance(VideoSource.for_camera(camera, Overlay("CAM-T-001"), config.video, float), VideoStage)
    assert isinstance(AudioEncoder(48000), AudioStage)
    assert isinstance(Health(None, has_camera=True, has_audio=False, fps=10, night=NightMode.from_config(config),
                             note=print, wall_at=float, wall_now=float), SegmentFigures)
    seg.seal()
    rec.close("stop")
    spool.close()


# -- the sealer: its durable points ------------------------------------------------------

@pytest.mark.parametrize("size", [1, 1000, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 777])
def test_the_segment_writer_says_how_many_bytes_to_its_next_durable_point(tmp_path, size):
    device = Device(tmp_path)
    spool = device.spool(monotonic=lambda: 0.0)  # no timed fsync: only the ones asked here
    rec = spool.open_recording(device.clock.now(), "agent", {})
    seg = rec.open_segment()
    header = header_info(seg.part_path).header_size + NONCE_SIZE

    def durable_plaintext() -> int:
        seg.sync()
        return (seg.durable_size - header) // ENCRYPTED_CHUNK * CHUNK_SIZE

    seg.write(b"\x47" * size)
    need = seg.bytes_until_durable()
    assert 1 <= need <= CHUNK_SIZE + 1
    seg.write(b"\x47" * (need - 1))
    assert durable_plaintext() < size          # one byte short: the last byte is not durable yet
    seg.write(b"\x47")
    assert durable_plaintext() >= size          # everything written before is now durable
    seg.seal()
    rec.close("stop")
    spool.close()


# -- the container: its filler ---------------------------------------------------------------

class MemorySealer:
    """A sealer in RAM whose durable points fall every ``step`` bytes (not age's 64 KiB)."""

    def __init__(self, step: int):
        self.step = step
        self.data = bytearray()
        self.synced_at: list[int] = []
        self.sealed = None

    def write(self, data: bytes) -> None:
        self.data += data

    def bytes_until_durable(self) -> int:
        return -len(self.data) % self.step

    def sync(self) -> int:
        self.synced_at.append(len(self.data))
        return len(self.data)

    def seal(self, extra=None):
        self.sealed = extra
        return extra

    def abort(self, reason):
        return None


class MemoryRecording:
    id = "memory"

    def __init__(self, step: int):
        self.step = step
        self.segments: list[MemorySealer] = []
        self.events: list[dict] = []

    def open_segment(self, *, overlap: bool = False) -> MemorySealer:
        self.segments.append(MemorySealer(self.step))
        return self.segments[-1]

    def note(self, event: dict) -> None:
        self.events.append(event)


def video_packets(n: int) -> list:
    encoder = VideoEncoder(W, H, FPS, keyframe_interval_s=1.0)
    rng = np.random.default_rng(1)
    packets = []
    for index in range(n):
        i420 = rng.integers(0, 256, (H * 3 // 2, W), dtype=np.uint8)
        packets += encoder.encode(i420, index / FPS, index)
    return packets


def demuxed_video(ts: bytes) -> int:
    with av.open(io.BytesIO(ts), format="mpegts") as container:
        return sum(1 for p in container.demux(video=0) if p.size)


@pytest.mark.parametrize("at_least", [0, 1, 187, 188, 189, 65537])
def test_filler_is_whole_null_packets(at_least):
    data = filler(at_least)
    assert len(data) >= at_least and len(data) % TS_PACKET == 0 and len(data) < at_least + TS_PACKET
    for i in range(0, len(data), TS_PACKET):
        packet = data[i:i + TS_PACKET]
        assert packet[0] == 0x47 and ((packet[1] & 0x1F) << 8 | packet[2]) == 0x1FFF  # the null PID


def test_filler_between_packets_is_skipped_by_a_demuxer():
    packets = video_packets(12)
    streams = []
    for pad in (0, 5000):
        sealer = MemorySealer(1)
        muxer = TsMuxer(sealer, width=W, height=H, fps=FPS, audio_rate=None)
        for n, packet in enumerate(packets):
            muxer.mux(packet, round(packet.time * 90000))
            if n == 5 and pad:
                muxer.pad(pad)
        muxer.close()
        assert muxer.bytes == len(sealer.data) and muxer.padding == len(filler(pad))
        streams.append(bytes(sealer.data))
    assert len(streams[1]) == len(streams[0]) + len(filler(5000))
    assert demuxed_video(streams[1]) == demuxed_video(streams[0]) == len(packets)


# -- the segmenter pads to the sealer's point, whatever it is -------------------------------

@pytest.mark.parametrize("step", [4096, 10_000])
def test_the_press_is_padded_to_the_sealers_own_durable_point(step):
    encoder = VideoEncoder(W, H, FPS, keyframe_interval_s=1.0)
    encoder.request_keyframe(at=PRESS)
    packets = frames(encoder, 0, 45)
    recording = MemoryRecording(step)
    segmenter = Segmenter(recording, width=W, height=H, fps=FPS, audio_rate=None, segment_seconds=2.0,
                          origin=packets[0].time, pre_event_end=PRESS, clock=lambda: 1.0)
    for packet in packets:
        segmenter.add(packet)
    assert segmenter.first_durable == 1.0
    segmenter.close("stop")
    span, press = recording.segments[0], recording.segments[1]
    # the press's segment: synced once, with everything before the filler up to a durable
    # point of its sealer (whole steps), padded by less than a step
    [synced] = press.synced_at
    padding = press.sealed["null_padding_bytes"]
    assert 0 < padding < step + TS_PACKET
    assert synced // step * step >= synced - padding
    assert span.sealed["ended_by"] == "press" and span.synced_at == []
    assert demuxed_video(bytes(press.data)) == press.sealed["video_frames"]


# -- the video source: the overlay of an encoding camera ------------------------------------

class EncodingCamera(Camera):
    """A camera with its own encoder (as picamera2's): only its pre-callback matters here."""

    encodes = True
    backend = "test-encoding"

    def start(self, loop, callback) -> None:
        pass


def test_the_source_gives_an_encoding_camera_the_overlay_with_wall_time(tmp_path):
    config = load_config(write_config(tmp_path))
    camera = EncodingCamera(320, 240, 10)
    overlay = Overlay("CAM-T-001")
    VideoSource.for_camera(camera, overlay, config.video, lambda t: 1_790_000_000.0 + t)
    image = np.full((360, 320), 128, np.uint8)
    camera.pre_callback(image, 0.0)
    assert (image[:40] != 128).any()
    assert overlay._cache[0][0] == tuple(overlay.lines(1_790_000_000.0))  # drawn at the wall time

    off = EncodingCamera(320, 240, 10)
    VideoSource.for_camera(off, Overlay("CAM-T-001", enabled=False), config.video, lambda t: t)
    assert off.pre_callback is None
