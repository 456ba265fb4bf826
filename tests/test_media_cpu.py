"""What the CPU work on the media path (issue 16, item 3) must not change: the cached
caption still follows the clock, the agent and the position; the encoder reads a frame
without copying it and keeps nothing of it; the pipeline benchmark runs our side as the
daemon runs (the unit's environment, byte-compiled modules, a frame source that costs what
the peer's does)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import numpy as np

from recorder.media.encoder import VideoEncoder
from recorder.media.overlay import Overlay, second_shown
from tools.benchmarks import pipeline as bench

T0 = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC


def _captioned(overlay: Overlay, wall_time: float) -> np.ndarray:
    frame = np.full((360 * 3 // 2, 640), 90, np.uint8)
    overlay.apply(frame, wall_time)
    return frame


def _fresh(wall_time: float, agent: str | None = "4521", position=None) -> np.ndarray:
    """The caption drawn by an overlay that has never drawn anything (nothing cached)."""
    overlay = Overlay("CAM-T-001")
    overlay.set_agent(agent)
    overlay.set_position(position)
    return _captioned(overlay, wall_time)


def test_a_cached_caption_still_changes_every_second_and_with_the_agent_and_the_position():
    overlay = Overlay("CAM-T-001")
    overlay.set_agent("4521")
    shown = []
    # 30 frames a second for three seconds, and the instants around a second's change
    times = [T0 + i / 30 for i in range(90)] + [T0 + 3.4999999, T0 + 3.9999994, T0 + 3.9999996, T0 + 4.0]
    for t in times:
        frame = _captioned(overlay, t)
        assert np.array_equal(frame, _fresh(t)), f"at {t!r} the caption is not the one of its second"
        shown.append(frame[:60].tobytes())
    assert len(set(shown[:90])) == 3  # one caption per second, never frozen
    assert shown[92] != shown[91] and shown[92] == shown[93]  # 3.9999996 shows second 4, as its text does
    overlay.set_agent("7788")  # within the same second: the caption follows at once
    assert np.array_equal(_captioned(overlay, T0 + 4.0), _fresh(T0 + 4.0, "7788"))
    overlay.set_position((46.95105, 4.29876))
    assert np.array_equal(_captioned(overlay, T0 + 4.0), _fresh(T0 + 4.0, "7788", (46.95105, 4.29876)))
    overlay.set_position(None)
    assert np.array_equal(_captioned(overlay, T0 + 4.0), _fresh(T0 + 4.0, "7788"))


def test_the_second_a_caption_shows_is_the_one_its_text_shows():
    for t in (T0, T0 + 0.5, T0 + 0.9999994, T0 + 0.9999995, T0 + 0.9999996, 0.0, -0.25, -1e-7, 12.0000004):
        assert second_shown(t) == int(datetime.fromtimestamp(t, UTC).timestamp() // 1), t


def _frames(n: int, width: int = 320, height: int = 240) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    base = rng.integers(0, 255, (height * 3 // 2, width), np.uint8)
    return [np.roll(base, 3 * i, axis=1) for i in range(n)]


def _stream(encoder: VideoEncoder, images) -> bytes:
    return b"".join(p.data for i, image in enumerate(images) for p in encoder.encode(image, i / 10, i))


def test_the_encoder_keeps_nothing_of_a_frame_it_read_in_place():
    frames = _frames(12)
    reference = _stream(VideoEncoder(320, 240, 10, bitrate_kbps=800), frames)
    # one buffer reused for every frame, as a camera's ring of buffers is, overwritten with
    # noise as soon as encode() returns: had libav kept a pointer to it, the stream would differ
    buffer = np.empty_like(frames[0])
    encoder = VideoEncoder(320, 240, 10, bitrate_kbps=800)
    out = []
    for i, frame in enumerate(frames):
        buffer[:] = frame
        out.extend(p.data for p in encoder.encode(buffer, i / 10, i))
        buffer[:] = np.random.default_rng(i).integers(0, 255, buffer.shape, np.uint8)
    assert b"".join(out) == reference
    # a frame that is a view with gaps between its rows is read correctly too
    wide = np.zeros((frames[0].shape[0], 400), np.uint8)
    assert not wide[:, :320].flags.c_contiguous
    encoder = VideoEncoder(320, 240, 10, bitrate_kbps=800)
    gapped = b""
    for i, frame in enumerate(frames):
        wide[:, :320] = frame
        gapped += b"".join(p.data for p in encoder.encode(wide[:, :320], i / 10, i))
    assert gapped == reference


def test_the_bench_runs_our_side_with_the_daemons_environment_and_compiled_modules(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    env = bench.daemon_environment()
    assert env["OPENBLAS_NUM_THREADS"] == "1"  # as systemd/pieton-recorder.service sets it
    assert env["PYTHONUNBUFFERED"] == "1"
    child = bench._child_env(None)
    assert "PYTHONDONTWRITEBYTECODE" not in child and child["OPENBLAS_NUM_THREADS"] == "1"
    checkout = tmp_path / "other"
    (checkout / "systemd").mkdir(parents=True)
    (checkout / "systemd" / "pieton-recorder.service").write_text("[Service]\nEnvironment=PYTHONUNBUFFERED=1\n")
    baseline = bench._child_env(str(checkout))  # a baseline runs with its own unit's environment
    assert baseline["PYTHONPATH"] == str(checkout.resolve()) and "OPENBLAS_NUM_THREADS" not in baseline
    command = bench._child_command(str(checkout), tmp_path / "r", tmp_path / "w", tmp_path / "o", 1.0, "age1x")
    assert command[:2] == [sys.executable, "-c"] and command[3] == bench.__file__ and command[4] == "--child"


def test_the_replay_camera_reads_each_frame_into_a_few_buffers_in_turn(tmp_path):
    frame_bytes = bench.WIDTH * bench.HEIGHT * 3 // 2
    raw = tmp_path / "raw.yuv"
    raw.write_bytes(b"".join(bytes([i]) * frame_bytes for i in range(6)))
    wav = tmp_path / "a.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "0.1",
                    "-c:a", "pcm_s16le", str(wav)], check=True)
    camera, _ = bench._replay_devices(raw, wav)
    try:
        assert camera.count == 6
        images = [camera._read(i) for i in range(6)]
        assert [int(image[0, 0]) for image in images[-camera.BUFFERS:]] == list(range(6 - camera.BUFFERS, 6))
        assert images[0] is images[camera.BUFFERS]  # a ring of buffers, no memory per frame
        assert all(image.shape == (bench.HEIGHT * 3 // 2, bench.WIDTH) for image in images)
    finally:
        camera.file.close()
