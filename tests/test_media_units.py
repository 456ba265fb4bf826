"""The media stages one by one: ring, night mode, drift correction, ADTS, overlay,
encoder, simulated camera and microphone, IR switches, backends, frame accounting."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime

import av
import numpy as np
import pytest
from conftest import write_config
from test_media_stall import status_after_stall

from drivers.camera import SimulatedCamera, draw_counter, open_camera, read_counter
from drivers.errors import DriverUnavailable, UnknownBackend
from drivers.gpio import pin_factory, reset_simulated_pins
from drivers.ir import open_ir
from drivers.microphone import SimulatedMicrophone
from recorder.clock import VirtualClockLoop, WallClock
from recorder.config import load_config
from recorder.errors import ConfigError, EncoderError, MediaError
from recorder.media.audio import AudioEncoder, DriftCorrector
from recorder.media.encoder import VideoEncoder
from recorder.media.nightmode import NightMode
from recorder.media.overlay import Overlay
from recorder.media.packets import Packet
from recorder.media.pipeline import MediaPipeline
from recorder.media.ring import PreEventRing


def video(t, key=False, size=1000, index=-1):
    return Packet("video", b"v" * size, t, key, 0.1, index)


# -- pre-event ring ------------------------------------------------------------------------

def test_ring_starts_on_a_keyframe_and_covers_its_span():
    ring = PreEventRing(3.0, max_bytes=10**9)
    ring.push(video(0.0))  # before any keyframe: undecodable, not kept
    for i in range(1, 100):
        ring.push(video(i / 10, key=i % 10 == 0, index=i))
    packets = ring.drain()
    assert packets[0].keyframe and packets[0].time == pytest.approx(6.0)  # 9.9 - 3 = 6.9 -> keyframe at 6.0
    assert [p.index for p in packets] == list(range(60, 100))
    assert ring.bytes == 0 and ring.drain() == []


def test_ring_memory_is_bounded_and_audio_kept_only_when_asked():
    ring = PreEventRing(30.0, max_bytes=50_000)
    for i in range(1000):
        ring.push(video(i / 10, key=i % 10 == 0, size=1000))
        ring.push(Packet("audio", b"a" * 100, i / 10 + 0.01, duration=0.02))
    assert ring.bytes <= 50_000 + 10 * 1000 and ring.peak_bytes <= 50_000 + 10 * 1000
    assert all(p.kind == "video" for p in ring.drain())
    with_audio = PreEventRing(1.0, max_bytes=10**9, audio=True)
    for i in range(30):
        with_audio.push(video(i / 10, key=i % 10 == 0))
        with_audio.push(Packet("audio", b"a", i / 10 + 0.05, duration=0.02))
    kinds = [p.kind for p in with_audio.drain()]
    assert kinds[0] == "video" and "audio" in kinds
    off = PreEventRing(0.0, max_bytes=10**9)
    off.push(video(0.0, key=True))
    assert not off.enabled and off.drain() == [] and off.span() == 0.0


# -- night mode ----------------------------------------------------------------------------

def test_night_mode_hysteresis_and_minimum_dwell():
    night = NightMode(8.0, 20.0, 5.0)
    assert night.update(100.0, 0.0) is None
    assert night.update(7.0, 1.0) is None  # the dwell since the last state (t=0) is not over
    assert night.update(7.0, 5.0) is True
    assert night.update(15.0, 11.0) is None  # between the thresholds: stays at night
    assert night.update(25.0, 12.0) is False
    assert night.update(2.0, 13.0) is None  # too soon after the last switch
    assert night.update(2.0, 17.5) is True and night.switches == 3
    with pytest.raises(ValueError, match="enter_lux"):
        NightMode(20.0, 8.0, 1.0)
    assert NightMode(8.0, 20.0, 0.0, enabled=False).update(0.0, 10.0) is None


# -- audio -----------------------------------------------------------------------------------

def test_drift_corrected_within_40_ms_over_an_hour_of_a_50_ppm_card():
    rate = 48000
    true_rate = rate * (1 + 50e-6)  # what the simulated microphone does
    corrector = DriftCorrector(rate)
    rng = np.random.default_rng(7)
    produced, worst, block_s = 0, 0.0, 0.1
    for k in range(1, int(3600 / block_s) + 1):
        now = k * block_s
        due = int(now * true_rate)
        n, produced = due - produced, due
        corrector.push(np.zeros(n, np.float32), now + rng.uniform(0, 0.005))  # arrival jitter
        worst = max(worst, abs(corrector.drift_s(now)))
    assert worst <= 0.040, worst
    uncorrected = 3600 * 50e-6
    assert uncorrected > 0.15  # what it would have been


def test_audio_encoder_writes_decodable_adts_on_the_loop_timeline():
    encoder = AudioEncoder(48000, 64)
    t = np.arange(48000 * 2) / 48000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    packets = []
    for i in range(100):  # 2 s in 20 ms blocks, arriving at loop time 10.02, 10.04, ...
        packets += encoder.push(tone[i * 960:(i + 1) * 960], 10.0 + (i + 1) * 0.02)
    packets += encoder.flush()
    assert all(p.data[:2] == b"\xff\xf1" for p in packets)
    assert packets[0].time == pytest.approx(10.0 - 1024 / 48000, abs=1e-3)  # AAC priming, then on time
    with av.open(io.BytesIO(b"".join(p.data for p in packets)), format="aac") as container:
        decoded = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    assert len(decoded) >= 2 * 48000
    assert np.sqrt(np.mean(decoded[4800:-4800] ** 2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.1)


def test_simulated_microphone_runs_fast_by_its_ppm_and_hears_the_room():
    loop = VirtualClockLoop(start=0.0)
    mic = SimulatedMicrophone(48000, ppm=50.0)
    blocks = []
    mic.start(loop, blocks.append)
    loop.run_until_complete(asyncio.sleep(20.0))
    mic.fail()
    loop.run_until_complete(asyncio.sleep(1.0))
    mic.close()
    loop.close()
    received = sum(len(b.samples) for b in blocks)
    assert received == pytest.approx(20.0 * 48000 * (1 + 50e-6), abs=1000)
    assert received - 20 * 48000 >= 40  # 50 ppm over 20 s = 48 samples
    assert blocks[-1].capture_time <= 20.0 + 1e-9  # nothing delivered while failed
    level = np.sqrt(np.mean(np.concatenate([b.samples for b in blocks]) ** 2))
    assert 0.001 < level < 0.05  # street ambience
    assert "closed" in repr(mic)


# -- video -----------------------------------------------------------------------------------

def test_overlay_burns_caption_top_left_only_when_enabled():
    overlay = Overlay("CAM-T-001")
    overlay.set_agent("4521")
    frame = np.full((360, 320), 128, np.uint8)
    overlay.apply(frame, 1_790_000_000.0)
    assert overlay.lines(1_790_000_000.0) == ["2026-09-21 14:13:20 UTC  CAM-T-001  AG 4521"]
    assert (frame[:40] != 128).any() and (frame[120:240] == 128).all()
    overlay.set_position((46.95105, 4.29876))
    assert overlay.lines(0.0)[1] == "46.95105N 4.29876E"
    off = Overlay("CAM-T-001", enabled=False)
    untouched = np.full((360, 320), 128, np.uint8)
    off.apply(untouched, 0.0)
    assert (untouched == 128).all()


def utc(*fields) -> float:
    return datetime(*fields, tzinfo=UTC).timestamp()


def test_caption_is_local_time_with_its_zone_across_summer_and_winter_time():
    overlay = Overlay("CAM-T-001", zone_name="Europe/Paris")
    assert overlay.lines(utc(2026, 11, 27, 17, 41, 11))[0] == "2026-11-27 18:41:11 CET  CAM-T-001"
    # spring: 02:00 CET does not exist, the clocks jump to 03:00 CEST
    assert overlay.lines(utc(2026, 3, 29, 0, 59, 59))[0].startswith("2026-03-29 01:59:59 CET ")
    assert overlay.lines(utc(2026, 3, 29, 1, 0, 0))[0].startswith("2026-03-29 03:00:00 CEST ")
    # autumn: 02:30 is lived twice, the zone tells which
    first = overlay.lines(utc(2026, 10, 25, 0, 30, 0))[0]
    second = overlay.lines(utc(2026, 10, 25, 1, 30, 0))[0]
    assert first.startswith("2026-10-25 02:30:00 CEST ") and second.startswith("2026-10-25 02:30:00 CET ")
    assert overlay.lines(utc(2026, 7, 14, 10, 0, 0))[0].startswith("2026-07-14 12:00:00 CEST ")


def test_caption_zone_comes_from_the_configuration_and_is_checked(tmp_path):
    assert load_config(write_config(tmp_path / "default")).device.timezone == "Europe/Paris"
    config = load_config(write_config(tmp_path / "guadeloupe", {"device": {"timezone": "America/Guadeloupe"}}))
    pipeline = MediaPipeline(config, None, None, None, loop=asyncio.new_event_loop(), wall_clock=WallClock())
    try:
        assert pipeline.overlay.lines(utc(2026, 11, 27, 17, 41, 11))[0].startswith("2026-11-27 13:41:11 AST ")
    finally:
        pipeline.worker.shutdown()
        pipeline.loop.close()
    for bad in ("Europe/Pariss", "Europe", "../etc/passwd", "", 1):
        with pytest.raises(ConfigError) as caught:
            load_config(write_config(tmp_path / "bad", {"device": {"timezone": bad}}))
        [problem] = caught.value.problems
        assert "[device] timezone" in problem and "Europe/Paris" in problem, problem


def test_frame_counter_reads_back_and_rejects_garbage():
    y = np.full((240, 320), 100, np.uint8)
    for n in (0, 1, 77, 2**24 - 1, 123456):
        draw_counter(y, n)
        assert read_counter(y) == n
    assert read_counter(np.full((240, 320), 128, np.uint8)) is None


def test_encoder_makes_keyframes_on_schedule_and_names_a_bad_frame():
    camera = SimulatedCamera(320, 240, 10)
    encoder = VideoEncoder(320, 240, 10, bitrate_kbps=500, keyframe_interval_s=1.0)
    keys = []
    for i in range(25):
        packets = encoder.encode(camera.render_still(i), i / 10, i)
        assert len(packets) == 1 and packets[0].index == i and packets[0].time == pytest.approx(i / 10)
        keys.append(packets[0].keyframe)
    assert [i for i, k in enumerate(keys) if k] == [0, 10, 20]
    encoder.request_keyframe()
    assert encoder.encode(camera.render_still(25), 2.5, 25)[0].keyframe
    with pytest.raises(EncoderError, match="frame 26"):
        encoder.encode(np.zeros((10, 10), np.uint8), 2.6, 26)


def test_simulated_camera_delivers_at_its_rate_and_stops_when_failed():
    loop = VirtualClockLoop(start=5.0)
    camera = SimulatedCamera(320, 240, 10)
    frames = []
    camera.start(loop, frames.append)
    loop.run_until_complete(asyncio.sleep(1.05))
    camera.fail()
    loop.run_until_complete(asyncio.sleep(1.0))
    camera.recover()
    loop.run_until_complete(asyncio.sleep(0.5))
    camera.close()
    camera.close()  # idempotent
    loop.close()
    indices = [f.index for f in frames]
    assert indices[:11] == list(range(11)) and indices[11] >= 20  # the sensor counted on
    assert frames[1].capture_time - frames[0].capture_time == pytest.approx(0.1)
    assert read_counter(frames[3].image()[:240]) == 3
    assert "closed" in repr(camera)


def test_night_image_is_monochrome_and_dark_scene_is_dark():
    camera = SimulatedCamera(320, 240, 10, lux=1.0)
    dark = camera.render_still(0)
    camera.set_night_mode(True)
    lit = camera.render_still(0)
    assert lit[:240].mean() > dark[:240].mean() + 20  # the illuminator lights the scene
    assert (lit[240:] == 128).all()
    assert camera.light_level() == pytest.approx(1.0, rel=0.05)


def test_backends_by_name(tmp_path):
    config = load_config(write_config(tmp_path))
    with pytest.raises(UnknownBackend, match="opencv, picamera2, simulated"):
        open_camera("webcam", config)
    if not _has("picamera2"):  # imported only when chosen; missing, it is a clear error
        with pytest.raises(DriverUnavailable, match="picamera2"):
            open_camera("picamera2", config)
    assert isinstance(open_camera("simulated", config), SimulatedCamera)


def _has(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


def test_ir_switches_are_gpiozero_devices_on_mock_pins(tmp_path):
    reset_simulated_pins()
    config = load_config(write_config(tmp_path))
    with open_ir("simulated", config) as ir:
        factory = pin_factory("simulated")
        cut, lamp = factory.pin(config.gpio.ir_cut), factory.pin(config.gpio.ir_illuminator)
        assert not ir.night and cut.state == 0 and lamp.state == 0
        ir.set_night(True)
        assert ir.night and cut.state == 1 and lamp.state == 1 and "night" in repr(ir)
        ir.set_night(False)
        assert not ir.night and cut.state == 0 and lamp.state == 0
    assert "closed" in repr(ir)
    ir.close()


# -- the pipeline's accounting ------------------------------------------------------------------

def test_pipeline_refuses_bad_order_and_counts_dropped_and_late_frames(tmp_path):
    """On a real-time loop, a stalled worker makes frames late, then dropped: both counted."""
    reset_simulated_pins()
    config = load_config(write_config(tmp_path, {"video": {"width": 320, "height": 240, "fps": 20},
                                                 "audio": {"enabled": False}}))
    loop = asyncio.new_event_loop()
    camera = SimulatedCamera(320, 240, 20)
    pipeline = MediaPipeline(config, camera, None, None, loop=loop, wall_clock=WallClock())
    with pytest.raises(MediaError, match="not armed"):
        pipeline.start_recording(object())
    status = status_after_stall(pipeline, loop, 1.2, 0.3)  # the worker stalls
    frames = status["frames_total"]
    assert frames["dropped"] >= 10  # 1.2 s stalled, backlog capped at 0.5 s of frames
    assert frames["late"] >= 5
    assert frames["encoded"] + frames["dropped"] == pytest.approx(frames["captured"], abs=2)
    assert status["prebuffer"]["bytes"] <= status["prebuffer"]["max_bytes"]


def test_a_camera_that_cannot_start_is_a_fault_and_sound_still_records(tmp_path):
    config = load_config(write_config(tmp_path, {"video": {"width": 320, "height": 240}}))
    loop = VirtualClockLoop(start=0.0)
    faults = []
    camera = SimulatedCamera(320, 240, 10)
    camera.close()  # a sensor gone before the start: start() raises DriverFault
    pipeline = MediaPipeline(config, camera, SimulatedMicrophone(48000), None, loop=loop,
                             wall_clock=WallClock(), on_fault=faults.append)
    pipeline.arm()
    loop.run_until_complete(asyncio.sleep(1.0))
    status = pipeline.status()
    loop.run_until_complete(pipeline.close())
    loop.close()
    assert faults and faults[0].startswith("camera: cannot start") and "closed" in faults[0]
    assert status["video"]["ok"] is False and status["audio"]["ok"] is True
    assert status["frames_total"]["audio_blocks"] >= 45
