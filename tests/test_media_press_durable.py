"""The press's own first frame is durable without waiting for the next one, and the
segment it goes into is opened before it arrives (off the path from press to durable).

Checked as a power cut would leave the card: the press's segment cut back to the length
of its first progress line, decrypted with the real ``age`` and read by ffprobe alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import av
import pytest
from test_evidence_support import Device
from test_media_press import FPS, PRESS, H, W, frames

from drivers.camera import read_counter
from recorder.evidence.age import load_identities
from recorder.evidence.verify import verify_recording
from recorder.media.encoder import VideoEncoder
from recorder.media.segmenter import Segmenter

pytestmark = pytest.mark.integration


@pytest.fixture
def device(tmp_path):
    return Device(tmp_path)


def _start(device, *, opener=None, watch=None):
    """A recording with a ring of frames 20..30, the press at 3.05 s (frame 31 its keyframe)."""
    spool = device.spool()
    rec = spool.open_recording(device.clock.now(), "agent", {})
    if watch is not None:
        watch(rec)
    encoder = VideoEncoder(W, H, FPS, keyframe_interval_s=1.0)
    encoder.request_keyframe(at=PRESS)
    ring = [p for p in frames(encoder, 0, 30) if p.index >= 20]
    segmenter = Segmenter(rec, width=W, height=H, fps=FPS, audio_rate=None, segment_seconds=2.0,
                          origin=ring[0].time, pre_event_end=PRESS, opener=opener)
    for packet in ring:
        segmenter.add(packet)
    return spool, rec, encoder, segmenter


def test_the_press_keyframe_alone_is_on_disk_at_its_sync(device, tmp_path):
    spool, rec, encoder, segmenter = _start(device)
    cut = tmp_path / "cut.ts.age"
    append = rec.manifest.append

    def at_first_progress(record):
        if record["event"] == "progress" and record["segment"] == 2 and not cut.exists():
            # what a power cut now keeps: the segment up to its durable length
            shutil.copyfile(rec.path / record["file"], cut)
            with open(cut, "r+b") as f:
                f.truncate(record["durable_bytes"])
        return append(record)

    rec.manifest.append = at_first_progress
    [press] = frames(encoder, 31, 31)
    assert press.keyframe
    segmenter.add(press)  # nothing after it: no later packet pushes it out of the muxer
    assert segmenter.first_durable is not None and cut.exists()

    out = subprocess.run(["age", "-d", "-i", str(device.identity_file), str(cut)], capture_output=True)
    assert out.returncode == 1 and b"unexpected EOF" in out.stderr  # a .part: no last chunk
    ts = tmp_path / "durable.ts"
    ts.write_bytes(out.stdout)
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-show_streams", "-of", "json", str(ts)],
        capture_output=True, check=True).stdout)
    video = [s for s in probe["streams"] if s["codec_type"] == "video"]
    assert video and video[0]["codec_name"] == "h264" and int(video[0]["nb_read_packets"]) == 1
    with av.open(str(ts)) as container:
        [frame] = list(container.decode(video=0))
    assert read_counter(frame.to_ndarray(format="gray")[:H]) == 31  # the press's own frame

    segmenter.close("stop")
    rec.close("stop")
    spool.close()


def test_the_press_segment_is_opened_before_its_first_frame(device):
    with ThreadPoolExecutor(1, thread_name_prefix="opener") as opener:
        opened = []

        def watch(rec):
            open_segment = rec.open_segment
            rec.open_segment = lambda **kw: opened.append(threading.current_thread().name) or open_segment(**kw)

        spool, rec, encoder, segmenter = _start(device, opener=opener, watch=watch)
        segmenter.open_ahead()
        segmenter.add(frames(encoder, 31, 31)[0])
        # the span's segment and the press's, both opened by the opener: none by the worker
        assert len(opened) == 2 and all(name.startswith("opener") for name in opened)
        assert (rec.path / "seg-000002.ts.age.part").exists()
        for packet in frames(encoder, 32, 45):
            segmenter.add(packet)
        segmenter.close("stop")
    rec.close("stop")
    spool.close()
    report = verify_recording(rec.path, device_key=device.signer.public_key,
                              identities=load_identities(device.identity_file))
    assert report.ok and report.status == "intact", report.problems
    assert sorted(p.name for p in rec.path.glob("seg-*.ts.age")) == ["seg-000001.ts.age", "seg-000002.ts.age"]


def test_a_press_segment_never_used_is_discarded_at_the_stop(device):
    with ThreadPoolExecutor(1) as opener:
        spool, rec, encoder, segmenter = _start(device, opener=opener)
        segmenter.open_ahead()
        segmenter.close("stop")  # before the press's first frame
    rec.close("stop")
    spool.close()
    names = sorted(p.name for p in rec.path.iterdir() if p.name.startswith("seg-"))
    assert names == ["seg-000001.meta.age", "seg-000001.ts.age"]  # no .part left behind
    report = verify_recording(rec.path, device_key=device.signer.public_key,
                              identities=load_identities(device.identity_file))
    assert report.ok and report.status == "intact", report.problems


def test_the_muxer_flush_finds_pyavs_libavformat_beside_opencvs():
    # OpenCV maps its own copy of libavformat in the same process: the flush must call the
    # copy that made the container, or it finds no context and the press waits a frame.
    pytest.importorskip("cv2")
    from test_media_stages import MemorySealer, video_packets

    from recorder.media import mpegts

    flush = mpegts._InterleaveFlush()
    sealer = MemorySealer(1)
    muxer = mpegts.TsMuxer(sealer, width=W, height=H, fps=FPS, audio_rate=48000)
    [keyframe] = video_packets(1)
    muxer.mux(keyframe, 0)
    before = len(sealer.data)
    assert flush(flush.context(muxer.container))
    assert len(sealer.data) - before >= keyframe.size  # the held keyframe reached the sealer
    muxer.close()
