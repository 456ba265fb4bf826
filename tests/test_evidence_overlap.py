"""The press's own media is made durable before the pre-event span's large seal: the next
segment may open while the previous one is still open, segments are still sealed in
order, and a power cut in between leaves both recoverable."""

import os

import pytest
from conftest import read_jsonl
from test_evidence_support import Device, mpegts

from recorder.errors import EvidenceError
from recorder.evidence.age import load_identities
from recorder.evidence.verify import verify_recording


@pytest.fixture
def device(tmp_path):
    return Device(tmp_path)


def manifest(rec):
    return read_jsonl(rec.path / "manifest.jsonl")


def test_post_press_media_is_durable_before_the_pre_event_seal(device):
    spool = device.spool()
    rec = spool.open_recording(device.clock.now(), "agent", {})
    pre_event = rec.open_segment()
    pre_event.write(mpegts(2.0, 0))
    with pytest.raises(EvidenceError, match="still open"):
        rec.open_segment()                        # only on purpose
    live = rec.open_segment(overlap=True)
    assert (live.index, pre_event.index) == (2, 1)
    with pytest.raises(EvidenceError, match="still open"):
        rec.open_segment(overlap=True)            # never three at once
    live.write(mpegts(1.0, 1))
    live.sync()                                   # the press's media: durable first
    pre_event.seal()
    live.seal()
    rec.close("stop")
    spool.close()
    events = [(line["event"], line.get("segment")) for line in manifest(rec)]
    first_live_progress = events.index(("progress", 2))
    pre_event_sealed = events.index(("sealed", 1))
    assert first_live_progress < pre_event_sealed < events.index(("sealed", 2))
    report = verify_recording(rec.path, device_key=device.signer.public_key,
                              identities=load_identities(device.identity_file))
    assert report.ok and report.status == "intact", report.problems


def test_a_power_cut_between_the_two_leaves_both_recoverable(device):
    spool = device.spool()
    rec = spool.open_recording(device.clock.now(), "agent", {})
    pre_event = rec.open_segment()
    pre_event.write(mpegts(2.0, 0))
    live = rec.open_segment(overlap=True)
    live.write(mpegts(2.0, 1) * 2)
    live.sync()
    for seg in (pre_event, live):                 # the power goes
        os.close(seg._file.fd)
        os.truncate(seg.part_path, seg.durable_size)
    spool.close()
    [line] = device.spool().recover()
    found = {f["file"] for f in line["found"]}
    assert {"seg-000001.ts.age.part", "seg-000002.ts.age.part"} <= found
    report = verify_recording(rec.path, device_key=device.signer.public_key,
                              identities=load_identities(device.identity_file))
    assert report.ok and report.status == "intact-truncated", report.problems


def test_closing_seals_the_lingering_segment_first(device):
    spool = device.spool()
    rec = spool.open_recording(device.clock.now(), "agent", {})
    pre_event = rec.open_segment()
    pre_event.write(mpegts(1.0, 0))
    live = rec.open_segment(overlap=True)
    live.write(mpegts(1.0, 1))
    rec.close("battery critical")
    spool.close()
    sealed = [line["segment"] for line in manifest(rec) if line["event"] == "sealed"]
    assert sealed == [1, 2]
    assert verify_recording(rec.path, device_key=device.signer.public_key).ok
