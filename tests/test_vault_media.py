"""Remux of decrypted MPEG-TS segments to one MP4; also the tiny media other vault tests use."""

import io
import json
import subprocess
from fractions import Fraction

import av
import numpy as np
import pytest

from recorder.errors import VaultError
from tools.vault.remux import SegmentInput, remux_to_mp4

WIDTH, HEIGHT, FPS, RATE = 320, 240, 10, 48000


def make_segments(count=3, seconds=2.0, *, restart_clock=False, face=False):
    """MPEG-TS segments (libx264 + AAC, 320x240) as a segmenter writes them: each starts
    on a keyframe, timestamps continue from one to the next unless ``restart_clock``."""
    segments = []
    frames = int(seconds * FPS)
    samples = 1024
    for index in range(count):
        buf = io.BytesIO()
        out = av.open(buf, "w", format="mpegts")
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(FPS)}
        video.codec_context.time_base = Fraction(1, FPS)
        audio = out.add_stream("aac", rate=RATE)
        audio.codec_context.layout = "mono"
        base = 0 if restart_clock else index * frames
        for i in range(frames):
            img = np.full((HEIGHT, WIDTH, 3), (index * 60 + i * 3) % 255, dtype=np.uint8)
            img[:, (i * 8) % WIDTH: (i * 8) % WIDTH + 20] = 255  # something that moves
            if face:
                _draw_face(img)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = base + i
            frame.time_base = Fraction(1, FPS)
            for packet in video.encode(frame):
                out.mux(packet)
        abase = 0 if restart_clock else int(index * seconds * RATE)
        for j in range(int(seconds * RATE) // samples):
            t = (abase + j * samples + np.arange(samples)) / RATE
            pcm = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="mono")
            frame.sample_rate = RATE
            frame.pts = abase + j * samples
            frame.time_base = Fraction(1, RATE)
            for packet in audio.encode(frame):
                out.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                out.mux(packet)
        out.close()
        segments.append(buf.getvalue())
    return segments


def _draw_face(img):
    """A drawn face that OpenCV's frontal Haar cascade detects (eyes, brows, nose, mouth)."""
    import cv2
    cx, cy = WIDTH // 2, HEIGHT // 2 + 10
    grey = np.full((HEIGHT, WIDTH), 100, np.uint8)
    cv2.ellipse(grey, (cx, cy), (40, 52), 0, 0, 360, 190, -1)
    for dx in (-16, 16):
        cv2.ellipse(grey, (cx + dx, cy - 14), (10, 5), 0, 0, 360, 40, -1)
        cv2.line(grey, (cx + dx - 11, cy - 26), (cx + dx + 11, cy - 26), 60, 4)
    cv2.line(grey, (cx, cy - 8), (cx, cy + 10), 215, 5)
    cv2.ellipse(grey, (cx, cy + 14), (8, 3), 0, 0, 360, 120, -1)
    cv2.ellipse(grey, (cx, cy + 28), (15, 4), 0, 0, 360, 70, -1)
    grey = cv2.GaussianBlur(grey, (5, 5), 0)
    box = (slice(cy - 60, cy + 60), slice(cx - 50, cx + 50))
    img[box] = grey[box][..., None]


def ffprobe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_segments_become_one_mp4_with_continuous_timestamps(tmp_path):
    segs = make_segments(3)
    out = tmp_path / "out.mp4"
    result = remux_to_mp4([SegmentInput(f"seg-{i:06d}", d) for i, d in enumerate(segs)], out)
    info = ffprobe(out)
    kinds = sorted(s["codec_name"] for s in info["streams"])
    assert kinds == ["aac", "h264"]
    assert 5.5 < float(info["format"]["duration"]) < 6.5
    assert result.video_packets == 60 and result.keyframes >= 3
    starts = [a for _, a, _ in result.spans]
    assert starts[0] == 0.0 and abs(starts[1] - 2.0) < 0.1 and abs(starts[2] - 4.0) < 0.1
    # No re-encoding: the video packets are byte for byte those of the segments.
    with av.open(io.BytesIO(segs[0]), format="mpegts") as src, av.open(str(out)) as dst:
        a = [bytes(p) for p in src.demux(src.streams.video[0]) if p.size][:3]
        b = [bytes(p) for p in dst.demux(dst.streams.video[0]) if p.size][:3]
    assert [_slices_annexb(x) for x in a] == [_slices_avcc(x) for x in b]


def _slices_annexb(data):
    import re
    return [n for n in re.split(rb"\x00\x00\x00\x01|\x00\x00\x01", data) if n and n[0] & 0x1F in (1, 5)]


def _slices_avcc(data):
    nals, i = [], 0
    while i + 4 <= len(data):
        size = int.from_bytes(data[i:i + 4], "big")
        nals.append(data[i + 4:i + 4 + size])
        i += 4 + size
    return [n for n in nals if n[0] & 0x1F in (1, 5)]


def test_restarted_clock_is_joined_end_to_start(tmp_path):
    segs = make_segments(2, restart_clock=True)
    result = remux_to_mp4([SegmentInput(str(i), d) for i, d in enumerate(segs)], tmp_path / "o.mp4")
    assert abs(result.spans[1][1] - 2.0) < 0.15
    assert 3.8 < float(ffprobe(tmp_path / "o.mp4")["format"]["duration"]) < 4.3


def test_range_starts_on_keyframe_and_outside_range_is_refused(tmp_path):
    segs = [SegmentInput(str(i), d) for i, d in enumerate(make_segments(3))]
    result = remux_to_mp4(segs, tmp_path / "r.mp4", start_s=2.5, end_s=4.0)
    assert result.range_s[0] == pytest.approx(2.0, abs=0.05)  # keyframe at 2 s
    assert 1.8 < result.duration_s < 2.2
    with pytest.raises(VaultError, match="outside the recording"):
        remux_to_mp4(segs, tmp_path / "x.mp4", start_s=30, end_s=40)


def test_truncated_segment_gives_its_whole_frames(tmp_path):
    segs = make_segments(2)
    cut = segs[1][: len(segs[1]) // 2 + 77]
    result = remux_to_mp4([SegmentInput("a", segs[0]), SegmentInput("b", cut, complete=False)],
                          tmp_path / "t.mp4")
    assert result.truncated_segments == ["b"]
    assert 2.2 < result.duration_s < 4.0
    assert ffprobe(tmp_path / "t.mp4")["streams"]


def test_streaming_stops_reading_after_the_range(tmp_path):
    pulled = []

    def lazy():
        for i, data in enumerate(make_segments(6)):
            pulled.append(i)
            yield SegmentInput(str(i), data)
    result = remux_to_mp4(lazy(), tmp_path / "s.mp4", start_s=0.5, end_s=2.5)
    assert result.range_s[0] == pytest.approx(0.0, abs=0.05) and 2.3 < result.duration_s < 2.7
    assert max(pulled) < 5  # the last segments were never decrypted
