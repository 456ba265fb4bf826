"""Recordings made by the media pipeline, decrypted and decoded: frames, counter, audio,
pre-event join, notice, faults, night mode."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import time

import av
import numpy as np
import pytest
from conftest import read_jsonl
from test_media_support import Rig, counters, read_recording

from drivers.speaker import SimulatedSpeaker
from recorder.config import DEFAULT_CONFIG
from recorder.notice import load_wav


@pytest.fixture
def rig(tmp_path):
    rigs = []

    def make(overrides=None):
        r = Rig(tmp_path / f"rig{len(rigs)}", overrides)
        rigs.append(r)
        return r

    yield make
    for r in rigs:
        r.close()


def record(r, seconds=5.0, before=3.0, during=None, reason="agent"):
    async def main():
        r.pipeline.arm()
        await asyncio.sleep(before)
        return await r.record(seconds, reason, during)
    return r.run(main())


def test_recording_decodes_with_pre_event_join_and_continuous_counter(rig):
    r = rig()
    rec, span, summary = record(r, seconds=5.0, before=3.0)
    segments = read_recording(rec.path, r.device.identity_file)
    fps = r.config.video.fps
    # 2 s of pre-event (from the keyframe 2 s before the press) + 5 s recorded, as the
    # recording's metadata says
    assert span == summary["pre_event_s"] == pytest.approx(2.0)
    frames = counters(segments)
    assert None not in frames, "every decoded frame carries a readable counter"
    assert frames == list(range(frames[0], frames[0] + len(frames))), "no frame missing or repeated"
    assert len(frames) == pytest.approx((5.0 + summary["pre_event_s"]) * fps, abs=2)
    assert frames[0] == 10  # the keyframe at t = 1 s: the ring starts on a keyframe
    assert all((s.width, s.height) == (320, 240) for s in segments)
    # segments of ~2 s, each starting on a keyframe; pts run on across segments
    assert all(19 <= s.meta["segment_info"]["video_frames"] <= 21 for s in segments[:-1])
    starts = [s.frames[0][0] for s in segments]
    assert starts == sorted(starts) and starts[1] == pytest.approx(2.0, abs=0.15)
    # the pre-event span is its own segment, ends at the press, is marked, and carries no
    # sound (audio in the ring is off by default)
    first = segments[0]
    assert first.meta["segment_info"]["pre_event_s"] == pytest.approx(2.0)
    assert first.meta["segment_info"]["ended_by"] == "press" and first.frames[-1][0] < 2.0
    # the press's first chunk was padded with MPEG-TS null packets and made durable at once
    assert 0 < segments[1].meta["segment_info"]["null_padding_bytes"] <= 65536 + 188
    assert summary["press_to_durable_s"] is not None
    # ... before the pre-event span's (larger) seal: the press's media matters most
    lines = read_jsonl(rec.path / "manifest.jsonl")
    order = [(x["event"], x.get("segment")) for x in lines]
    assert order.index(("progress", 2)) < order.index(("sealed", 1)) < order.index(("sealed", 2))
    media = [e for e in first.meta["events"] if e["event"] == "media"][0]
    assert media["pre_event_s"] == pytest.approx(2.0) and media["pre_event_audio"] is False
    assert len(first.audio) == 0
    # audio from the press on, on the video's timeline
    audio = np.concatenate([s.audio for s in segments])
    assert len(audio) == pytest.approx(5.0 * 48000, rel=0.03)
    assert segments[1].audio_start == pytest.approx(2.0, abs=0.03)
    assert summary["frames"]["dropped"] == 0 and summary["frames"]["late"] == 0


def test_the_pre_event_span_the_metadata_states_is_what_the_recording_holds_when_the_encoder_lags(rig):
    """A busy encoder has not yet put the frames of the press's instant into the ring when
    the press is taken: the metadata's pre_event_s is still the span the media holds."""
    r = rig()
    encode = r.pipeline.encode.video

    def slow_at_the_press(frame, wall_time, regained):
        if frame.capture_time >= 1003.0 - 1e-6:
            time.sleep(0.3)  # the worker is behind the loop thread at the press
        encode(frame, wall_time, regained)

    r.pipeline.encode.video = slow_at_the_press
    rec, span, summary = record(r, seconds=2.0, before=3.0)
    first = read_recording(rec.path, r.device.identity_file)[0]
    media = [e for e in first.meta["events"] if e["event"] == "media"][0]
    assert first.meta["recording"]["pre_event_s"] == span == media["pre_event_s"] == pytest.approx(2.0)
    assert first.meta["segment_info"]["pre_event_s"] == pytest.approx(2.0)


@pytest.mark.integration
def test_each_segment_plays_alone_with_ffprobe(rig, tmp_path):
    r = rig()
    rec, _, _ = record(r, seconds=4.0, before=1.0)
    segments = read_recording(rec.path, r.device.identity_file)
    assert len(segments) >= 2
    for s in segments[1:]:
        path = tmp_path / (s.name + ".ts")
        path.write_bytes(s.plaintext)
        out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", str(path)],
                             capture_output=True, text=True, check=True)
        streams = {st["codec_type"]: st for st in json.loads(out.stdout)["streams"]}
        assert streams["video"]["codec_name"] == "h264" and streams["video"]["width"] == 320
        assert int(streams["video"]["nb_read_frames"]) == len(s.frames)
        assert streams["audio"]["codec_name"] == "aac" and streams["audio"]["sample_rate"] == "48000"
        # the first decodable frame is the segment's first: it starts on a keyframe
        assert s.frames[0][1] == s.meta["segment_info"]["first_frame"]


def _window(segments, t0, t1, rate=48000):
    """The recorded sound between t0 and t1 (seconds on the recording's timeline)."""
    pieces = []
    for s in segments:
        if s.audio_start is None:
            continue
        times = s.audio_start + np.arange(len(s.audio)) / rate
        pieces.append(s.audio[(times >= t0) & (times < t1)])
    return np.concatenate(pieces)


def _envelope(x, n=960):
    x = x[: len(x) // n * n].reshape(-1, n)
    return np.sqrt((x.astype(np.float64) ** 2).mean(axis=1))


def test_notice_heard_in_an_intervention_and_absent_from_a_flagrant_delit(rig):
    notice, notice_rate = load_wav(DEFAULT_CONFIG.with_name("notice-fr.wav"))
    notice_s = len(notice) / notice_rate

    def run(play_notice: bool, reason: str):
        r = rig({"prebuffer": {"seconds": 0.0}})

        async def during(rig_, rec):
            if play_notice:  # as the daemon does: the notice as soon as the gesture is known
                speaker = SimulatedSpeaker(rig_.loop, rig_.room)
                speaker.play(notice, notice_rate, label="notice")
                rec.note({"event": "notice", "played": True})

        rec, span, _ = record(r, seconds=notice_s + 1.0, before=1.0, during=during, reason=reason)
        assert span == 0.0
        return read_recording(rec.path, r.device.identity_file)

    # the press is at t = 0 of a recording without pre-event; the notice starts with it
    heard = _window(run(True, "agent"), 0.0, notice_s)
    silent = _window(run(False, "flagrant_delit"), 0.0, notice_s)
    assert len(heard) > 0.95 * notice_s * 48000 and len(silent) > 0.95 * notice_s * 48000
    reference = _envelope(notice, round(notice_rate * 0.02))  # 20 ms windows, like 960 at 48 kHz
    n = min(len(reference), len(_envelope(heard)), len(_envelope(silent)))
    heard_corr = np.corrcoef(_envelope(heard)[:n], reference[:n])[0, 1]
    silent_corr = np.corrcoef(_envelope(silent)[:n], reference[:n])[0, 1]
    assert heard_corr > 0.8, heard_corr  # the notice's own loudness contour is in the recording
    assert abs(silent_corr) < 0.3, silent_corr
    assert np.sqrt(np.mean(heard ** 2)) > 4 * np.sqrt(np.mean(silent ** 2))


def test_camera_stops_recording_goes_on_with_audio_and_says_so(rig):
    r = rig({"prebuffer": {"seconds": 0.0}})

    async def during(rig_, rec):
        await asyncio.sleep(1.0)
        rig_.camera.fail()
        await asyncio.sleep(3.0)
        rig_.camera.recover()

    rec, _, summary = record(r, seconds=2.0, before=1.0, during=during)
    assert [k for k, _ in r.faults] == ["camera"]
    segments = read_recording(rec.path, r.device.identity_file)
    events = [e for s in segments for e in s.meta["events"]]
    kinds = [e["event"] for e in events]
    assert "video_lost" in kinds and "video_regained" in kinds
    lost = next(e for e in events if e["event"] == "video_lost")
    regained = next(e for e in events if e["event"] == "video_regained")
    assert 2.5 <= regained["at"] - lost["at"] <= 3.5
    # sound all along, video before and after the gap
    audio = np.concatenate([s.audio for s in segments])
    assert len(audio) == pytest.approx(6.0 * 48000, rel=0.03)
    assert any(s.frames == [] and len(s.audio) > 0 for s in segments), "an audio-only segment in the gap"
    frames = counters(segments)
    assert None not in frames and frames[-1] - frames[0] >= 55
    assert summary["frames"]["lost"] >= 25
    # after the gap, video is whole again: nothing skipped waiting for a keyframe
    back = frames[frames.index(next(f for f in frames if f > frames[0] + 20)):]
    assert back == list(range(back[0], back[0] + len(back)))
    assert summary["skipped_before_keyframe"] == 0


def test_pre_event_audio_when_configured_and_audio_only_without_camera(rig):
    r = rig({"prebuffer": {"seconds": 2.0, "audio": True}})
    rec, _, _ = record(r, seconds=2.0, before=3.0)
    first = read_recording(rec.path, r.device.identity_file)[0]
    assert first.meta["segment_info"]["pre_event_s"] > 1.5
    assert len(first.audio) > 1.5 * 48000 and first.audio_start < 0.1

    from recorder.media.pipeline import MediaPipeline
    r2 = rig()
    r2.pipeline = MediaPipeline(r2.config, None, r2.microphone, r2.ir, loop=r2.loop, wall_clock=r2.wall)
    rec2, span, _ = record(r2, seconds=3.0, before=1.0)
    segments = read_recording(rec2.path, r2.device.identity_file)
    assert span == 0.0 and all(s.frames == [] for s in segments)
    assert sum(len(s.audio) for s in segments) == pytest.approx(3.0 * 48000, rel=0.05)


def test_microphone_fails_video_goes_on_and_metadata_says_so(rig):
    r = rig({"prebuffer": {"seconds": 0.0}})

    async def during(rig_, rec):
        await asyncio.sleep(1.0)
        rig_.microphone.fail()

    rec, _, _ = record(r, seconds=3.0, before=1.0, during=during)
    assert [k for k, _ in r.faults] == ["microphone"]
    segments = read_recording(rec.path, r.device.identity_file)
    kinds = [e["event"] for s in segments for e in s.meta["events"]]
    assert "audio_lost" in kinds
    assert segments[-1].meta["segment_info"]["audio_ok"] is False
    frames = counters(segments)
    assert frames == list(range(frames[0], frames[0] + len(frames))) and len(frames) >= 29


def test_encoder_error_seals_the_segment_and_recording_goes_on(rig):
    r = rig()

    async def during(rig_, rec):
        await asyncio.sleep(0.55)
        rig_.camera.corrupt_next()

    rec, _, summary = record(r, seconds=3.0, before=2.5, during=during)
    assert [k for k, _ in r.faults] == ["encoder"]
    segments = read_recording(rec.path, r.device.identity_file)
    ended = [s.meta["segment_info"]["ended_by"] for s in segments]
    assert "encoder_error" in ended
    frames = counters(segments)
    missing = sorted(set(range(frames[0], frames[-1] + 1)) - set(frames))
    assert len(missing) == 1, "only the refused frame is lost"
    broken = segments[ended.index("encoder_error")]
    assert broken.frames[-1][1] == missing[0] - 1  # everything before it was sealed
    after = segments[ended.index("encoder_error") + 1]
    assert after.frames[0][1] == missing[0] + 1  # a new segment, on a fresh keyframe
    assert summary["frames"]["encoder_errors"] == 1 and summary["frames"]["dropped"] == 1


def test_night_mode_switches_ir_and_image_and_is_noted(rig):
    r = rig({"nightmode": {"min_dwell_s": 2.0}})

    async def during(rig_, rec):
        await asyncio.sleep(1.0)
        rig_.camera.set_light(1.0)  # dusk falls fast in a test
        await asyncio.sleep(4.0)
        rig_.camera.set_light(2000.0)

    rec, _, _ = record(r, seconds=4.0, before=1.0, during=during)
    segments = read_recording(rec.path, r.device.identity_file)
    switches = [e for s in segments for e in s.meta["events"] if e["event"] == "night_mode"]
    assert [e["on"] for e in switches] == [True, False]
    assert switches[1]["at"] - switches[0]["at"] >= 2.0  # the minimum dwell
    # the IR pins followed, through gpiozero's mock pins
    assert r.pipeline.night.switches == 2 and not r.ir.night
    # a night frame is monochrome (neutral chroma): decode one from the middle
    with av.open(io.BytesIO(segments[2].plaintext), format="mpegts") as container:
        frame = next(container.decode(video=0))
    planes = frame.to_ndarray()  # I420
    chroma = planes[240:].astype(int)
    assert abs(chroma.mean() - 128) < 2 and chroma.std() < 3


def test_power_cut_leaves_what_was_durable_for_recovery(rig):
    from test_media_support import decode_ts

    from recorder.evidence.age import decrypt, load_identities

    r = rig({"prebuffer": {"seconds": 0.0}})

    async def main():
        r.pipeline.arm()
        await asyncio.sleep(0.5)
        rec = r.spool.open_recording(r.wall.now(), "agent", {"clock_source": "gps"})
        r.pipeline.start_recording(rec)
        await asyncio.sleep(3.2)
        r.pipeline.power_cut()  # nothing sealed, nothing closed
        return rec

    rec = r.run(main())
    assert r.pipeline.status()["state"] == "idle" and r.pipeline.ring.bytes == 0
    parts = sorted(rec.path.glob("*.ts.age.part"))
    assert len(parts) == 1
    report = r.device.spool().recover()
    assert report, "recovery found the cut recording"
    kept = decrypt(parts[0], load_identities(r.device.identity_file))
    assert not kept.complete and kept.plaintext
    frames = [c for _, c in decode_ts(parts[0].name, kept.plaintext).frames]
    # the last frame may be cut inside its access unit (the decoder conceals the rest)
    whole = frames[:-1]
    assert len(whole) >= 4 and None not in whole and whole == list(range(whole[0], whole[0] + len(whole)))
