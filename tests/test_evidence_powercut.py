"""The power-cut model of `pieton bench seal_powercut`, checked on a recording made here."""

import os

from test_evidence_support import Device, mpegts, slow_clock

from recorder.evidence.age import decrypt, load_identities
from recorder.evidence.verify import verify_recording
from tools.benchmarks._powercut_harness import apply_power_cut, durable_event


def test_cut_model_undoes_what_was_not_durable(tmp_path):
    device = Device(tmp_path)
    events = []

    spool = device.spool(monotonic=slow_clock(), observer=lambda *a: events.append(durable_event(*a)))
    rec = spool.open_recording(device.clock.now(), "agent", {})
    seg = rec.open_segment()
    seg.write(mpegts(1.0, 0))
    seg.seal()
    seg = rec.open_segment()
    data = mpegts(2.0, 1) * 2
    for i in range(0, len(data), 40000):
        seg.write(data[i:i + 40000])
    durable = seg.durable_size
    seg._age.close()                       # final chunk written and fsynced...
    os.rename(seg.part_path, seg.final_path)  # ...renamed, but the folder never fsynced
    (rec.path / "stray.tmp").write_bytes(b"x")
    spool.close()
    # Cut just before the segment's final fsync was reported: nothing after it counts.
    last = max(i for i, e in enumerate(events) if e["k"] == "file" and e["p"] == str(seg.part_path))
    del events[last:]

    model = apply_power_cut(events)
    assert model["renames_undone"] == 1 and model["names_dropped"] == 1
    assert seg.part_path.stat().st_size == durable and not seg.final_path.exists()

    fresh = device.spool()
    [line] = fresh.recover()
    assert line["found"][1]["file"] == "seg-000002.ts.age.part"
    ids = load_identities(device.identity_file)
    assert len(decrypt(seg.part_path, ids).plaintext) > 0
    report = verify_recording(rec.path, device_key=device.signer.public_key, identities=ids)
    assert report.ok and report.status == "intact-truncated", report.problems
