"""The press, in the segmenter: the press's own first media is durable before the
pre-event span (held in memory) is written, and however the press falls (on a keyframe,
between keyframes, or a stop before any keyframe) no frame is lost or reordered."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import read_jsonl
from test_evidence_support import Device
from test_media_support import counters, read_recording

from drivers.camera import draw_counter
from recorder.evidence.age import header_info, load_identities
from recorder.evidence.verify import verify_recording
from recorder.media.encoder import VideoEncoder
from recorder.media.segmenter import Segmenter

W, H, FPS = 320, 240, 10  # wide enough for the burnt-in counter
PRESS = 3.05  # between the frames of 3.0 s and 3.1 s; keyframes every second


def frames(encoder: VideoEncoder, first: int, last: int) -> list:
    """Encoded packets of frames ``first``..``last`` (captured at index / FPS)."""
    packets = []
    rng = np.random.default_rng(first)
    for index in range(first, last + 1):
        i420 = np.full((H * 3 // 2, W), 128, dtype=np.uint8)
        i420[:H // 2] = rng.integers(0, 256, (H // 2, W))  # noise: the span fills many age chunks
        draw_counter(i420[:H], index)
        packets += encoder.encode(i420, index / FPS, index)
    return packets


@pytest.fixture
def device(tmp_path):
    return Device(tmp_path)


def record(device, ring_from: int, post: list, *, keyframe_at_press: bool = True, watch=None):
    """The ring (frames ``ring_from``..30, before the press) then ``post`` frame ranges;
    ``watch(recording)`` is called once the recording is open."""
    spool = device.spool()
    rec = spool.open_recording(device.clock.now(), "agent", {})
    if watch is not None:
        watch(rec)
    encoder = VideoEncoder(W, H, FPS, keyframe_interval_s=1.0)
    if keyframe_at_press:
        # asked before the frames of the ring are encoded, as frames captured before the
        # press may still wait for the encoder: the keyframe goes to the press's own frame
        encoder.request_keyframe(at=PRESS)
    ring = [p for p in frames(encoder, 0, 30) if p.index >= ring_from]
    assert ring[0].keyframe
    assert [p.index for p in ring if p.keyframe] == list(range(ring_from, 31, FPS))
    segmenter = Segmenter(rec, width=W, height=H, fps=FPS, audio_rate=None, segment_seconds=2.0,
                          origin=ring[0].time, pre_event_end=PRESS)
    for packet in ring:
        segmenter.add(packet)
    for first, last in post:
        for packet in frames(encoder, first, last):
            segmenter.add(packet)
    segmenter.close("stop")
    rec.close("stop")
    spool.close()
    lines = read_jsonl(rec.path / "manifest.jsonl")
    segments = read_recording(rec.path, device.identity_file)
    report = verify_recording(rec.path, device_key=device.signer.public_key,
                              identities=load_identities(device.identity_file))
    assert report.ok and report.status == "intact", report.problems
    return segmenter, lines, segments


def test_press_media_is_durable_before_the_held_span_is_written(device):
    seen = []

    def watch(rec):
        append = rec.manifest.append

        def spy(record):
            if record["event"] == "progress" and record["segment"] == 2 and not seen:
                # the press's first chunk is durable: what of the span is on disk by then?
                span = rec.path / "seg-000001.ts.age.part"
                seen.append((span.stat().st_size, header_info(span).header_size))
            return append(record)
        rec.manifest.append = spy

    segmenter, lines, segments = record(device, 20, [(31, 45)], watch=watch)
    [(span_size, span_header)] = seen
    # the span's segment is open (numbered first) but holds only its header and nonce
    assert span_size == span_header + 16
    writes = [(line["event"], line["segment"]) for line in lines if line["event"] in ("progress", "sealed")]
    assert writes[0] == ("progress", 2)
    assert writes.index(("sealed", 1)) < writes.index(("sealed", 2))
    assert segmenter.first_durable is not None
    assert counters(segments) == list(range(20, 46))          # none lost, none reordered
    span, press = segments[0], segments[1]
    assert [c for _, c in span.frames] == list(range(20, 31))  # the span ends at the press
    assert span.meta["segment_info"]["ended_by"] == "press" and span.meta["segment_info"]["pre_event_s"] == pytest.approx(1.1)
    assert press.frames[0][1] == 31                            # the press's keyframe opens it


def test_an_encoder_that_ignores_the_press_still_loses_nothing(device):
    # A camera's own encoder may not honour the request: the press's first frames are not
    # keyframes. The span is written at once and the press is cut at the next keyframe.
    segmenter, lines, segments = record(device, 10, [(31, 52)], keyframe_at_press=False)
    assert counters(segments) == list(range(10, 53))
    assert segments[0].meta["segment_info"]["ended_by"] == "press"
    assert segments[1].frames[0][1] == 40                      # the next scheduled keyframe
    assert segmenter.first_durable is not None


def test_a_stop_before_the_press_keyframe_writes_the_held_span(device):
    _, _, segments = record(device, 20, [])
    assert len(segments) == 1
    assert counters(segments) == list(range(20, 31))
    assert segments[0].meta["segment_info"]["ended_by"] == "stop"


def test_frames_before_the_press_without_their_keyframe_are_not_written(device):
    # No ring (prebuffer off, or a press just after arming), and frames 25..30, captured
    # before the press, still reach the segmenter after it: 25..29 depend on a keyframe
    # never written, so they are skipped; the span starts at keyframe 30.
    spool = device.spool()
    rec = spool.open_recording(device.clock.now(), "agent", {})
    encoder = VideoEncoder(W, H, FPS, keyframe_interval_s=1.0)
    encoder.request_keyframe(at=PRESS)
    packets = frames(encoder, 0, 40)[25:]
    segmenter = Segmenter(rec, width=W, height=H, fps=FPS, audio_rate=None, segment_seconds=2.0,
                          origin=PRESS, pre_event_end=PRESS)
    for packet in packets:
        segmenter.add(packet)
    segmenter.close("stop")
    rec.close("stop")
    spool.close()
    segments = read_recording(rec.path, device.identity_file)
    assert segmenter.skipped_before_keyframe == 5
    assert counters(segments) == list(range(30, 41))
    assert segments[0].meta["segment_info"]["first_frame"] == 30
    assert segments[1].frames[0][1] == 31
