"""Armed with the pre-event ring off, nothing would keep an encoded frame: none is encoded
(battery on the camera, most of the CPU of a soak), and the press's first frame still
opens the recording on a keyframe. With the ring on, every frame is encoded as before."""

from __future__ import annotations

import asyncio
import json
import subprocess

import av
import pytest
from test_media_support import Rig, counters, read_recording

from drivers.camera import read_counter

pytestmark = pytest.mark.integration

ARMED_S = 20.0


@pytest.fixture
def rig(tmp_path):
    made = []

    def make(seconds):
        made.append(Rig(tmp_path / f"rig{len(made)}", {"prebuffer": {"seconds": seconds}}))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _armed_then_record(r):
    """Armed for ARMED_S virtual seconds, then a 3 s recording; returns the totals at the
    press, the number of frames captured before it, the recording and its summary."""
    async def main():
        r.pipeline.arm()
        await asyncio.sleep(ARMED_S)
        await r.pipeline.worker.drain()
        at_press = r.pipeline.health.totals.as_dict()
        rec, _, summary = await r.record(3.0)
        return at_press, rec, summary
    return r.run(main())


def test_ring_off_armed_encodes_nothing_and_the_press_opens_on_a_keyframe(rig, tmp_path):
    r = rig(0)
    at_press, rec, summary = _armed_then_record(r)
    fps = r.config.video.fps
    assert at_press["captured"] >= ARMED_S * fps - 2
    assert at_press["encoded"] == 0                       # the encoder was never called
    assert at_press["unencoded"] == at_press["captured"]
    assert summary["frames"]["encoded"] >= 3.0 * fps - 2  # the recording itself is encoded

    first = sorted(rec.path.glob("seg-*.ts.age"))[0]
    plain = subprocess.run(["age", "-d", "-i", str(r.device.identity_file), str(first)],
                           capture_output=True, check=True).stdout
    ts = tmp_path / "first.ts"
    ts.write_bytes(plain)
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_frames",
         "-show_entries", "frame=key_frame,pict_type", "-read_intervals", "%+#1", "-of", "json", str(ts)],
        capture_output=True, check=True).stdout)
    assert probe["frames"][0]["key_frame"] == 1 and probe["frames"][0]["pict_type"] == "I"
    with av.open(str(ts)) as container:
        frame = next(container.decode(video=0))
        counter = read_counter(frame.to_ndarray(format="gray")[:r.config.video.height])
    # frames are numbered from 0 at the arming: the first recorded is captured at/after the press
    assert counter is not None and counter >= at_press["captured"]
    frames = counters(read_recording(rec.path, r.device.identity_file))
    assert frames == list(range(counter, counter + len(frames)))


def test_ring_on_armed_encodes_every_frame(rig):
    r = rig(2.0)
    at_press, rec, summary = _armed_then_record(r)
    assert at_press["unencoded"] == 0
    assert at_press["encoded"] == at_press["captured"] - at_press["dropped"]
    assert summary["pre_event_s"] > 1.5
