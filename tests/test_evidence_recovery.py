import os

import pytest
from test_evidence_support import Device, mpegts, slow_clock

from recorder.evidence.age import decrypt, load_identities
from recorder.evidence.chain import read_chain
from recorder.evidence.format import JOURNAL_CONTEXT
from recorder.evidence.verify import verify_recording


@pytest.fixture
def device(tmp_path):
    return Device(tmp_path)


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def assert_nothing_lost(before, folder):
    """Every file is still there; the manifest only grew; nothing else changed."""
    after = snapshot(folder)
    for name, data in before.items():
        assert name in after, f"{name} deleted"
        if name == "manifest.jsonl":
            assert after[name].startswith(data), "manifest rewritten"
        else:
            assert after[name] == data, f"{name} rewritten"


def crashed_recording(device, *, sealed=1, in_progress=True):
    """A recording as a power cut leaves it: sealed segments, maybe a .part, no closed line."""
    spool = device.spool(monotonic=slow_clock())
    rec = spool.open_recording(device.clock.now(), "agent", {"clock_source": "gps"})
    rec.static["agent"] = "A-1"
    for i in range(sealed):
        seg = rec.open_segment()
        seg.write(mpegts(1.0, i))
        seg.seal()
    if in_progress:
        seg = rec.open_segment()
        data = mpegts(2.0, 3) * 3
        for i in range(0, len(data), 30000):
            seg.write(data[i:i + 30000])
        os.close(seg._file.fd)  # the power goes: what was written stays, nothing more
        # Keep only what was reported durable, as a real power cut would.
        os.truncate(seg.part_path, seg.durable_size)
    spool.close()
    return rec


def recover(device):
    spool = device.spool()
    reports = spool.recover()
    spool.close()
    return reports


def test_part_segment_keeps_its_durable_chunks(device):
    rec = crashed_recording(device)
    part = rec.path / "seg-000002.ts.age.part"
    assert part.exists() and part.stat().st_size > 0
    before = snapshot(rec.path)
    [line] = recover(device)
    assert_nothing_lost(before, rec.path)
    assert part.exists()  # not renamed
    found = {f["file"]: f for f in line["found"]}
    assert found["seg-000002.ts.age.part"]["size"] == part.stat().st_size
    assert found["seg-000002.ts.age.part"]["whole_chunks"] >= 1
    assert "seg-000002.meta.age.part" in found  # the provisional metadata survived
    assert line["data_stops"].startswith("seg-000002.ts.age.part after")
    ids = load_identities(device.identity_file)
    result = decrypt(part, ids)
    assert not result.complete and result.chunks >= 1
    report = verify_recording(rec.path, device_key=device.signer.public_key, identities=ids)
    assert report.ok, report.problems
    assert report.status == "intact-truncated"
    assert "intact but truncated" in report.summary() and "seg-000002.ts.age.part" in report.summary()
    journal = read_chain(device.spool_dir / "journal.jsonl", JOURNAL_CONTEXT, device.signer.public_key)
    assert journal.ok and journal.lines[-1]["event"] == "recording recovered"


def test_renamed_segment_without_sealed_line(device):
    rec = crashed_recording(device, in_progress=False)
    spool = device.spool()
    spool.recover()  # gives the first cut its recovered line; now a second recording...
    rec2 = spool.open_recording(device.clock.now() + 60, "agent", {})
    seg = rec2.open_segment()
    seg.write(mpegts(1.0, 1))
    seg._age.close()
    os.rename(seg.part_path, seg.final_path)  # ...cut between the rename and the sealed line
    spool.close()
    [line] = recover(device)
    assert line["recording_id"] == rec2.id
    states = {f["file"]: f["state"] for f in line["found"]}
    assert states["seg-000001.ts.age"] == "segment renamed but not sealed in the manifest"
    report = verify_recording(rec2.path, device_key=device.signer.public_key,
                              identities=load_identities(device.identity_file))
    assert report.ok and report.status == "intact-truncated", report.problems
    assert verify_recording(rec.path, device_key=device.signer.public_key).ok


def test_torn_last_manifest_line(device):
    rec = crashed_recording(device, in_progress=False)
    manifest = rec.path / "manifest.jsonl"
    with open(manifest, "ab") as f:
        f.write(b'{"event":"sealed","file":"seg-0000')
    before = snapshot(rec.path)
    assert "torn last line" in verify_recording(rec.path).problems[0].reason
    [line] = recover(device)
    assert_nothing_lost(before, rec.path)
    assert line["torn"][0]["length"] == 34
    report = verify_recording(rec.path, device_key=device.signer.public_key)
    assert report.ok and report.status == "intact-truncated", report.problems


def test_recording_without_closed_line(device):
    rec = crashed_recording(device, sealed=2, in_progress=False)
    assert "no closed or recovered line" in str(verify_recording(rec.path).problems)
    [line] = recover(device)
    assert line["after"] == "sealed" and line["segments_sealed"] == 2 and line["found"] == []
    report = verify_recording(rec.path, device_key=device.signer.public_key)
    assert report.ok and report.truncated.startswith("at the last sealed segment (power cut")


def test_recovery_is_idempotent_even_when_cut_itself(device):
    rec = crashed_recording(device)
    manifest = rec.path / "manifest.jsonl"
    before = manifest.read_bytes()
    recover(device)
    full = manifest.read_bytes()
    # A power cut while the recovered line was being written: half of it reached the disk.
    manifest.write_bytes(full[:len(before) + (len(full) - len(before)) // 2])
    [line] = recover(device)
    assert line["torn"] and {f["file"] for f in line["found"]} >= {"seg-000002.ts.age.part"}
    assert recover(device) == []  # done: nothing more to say
    report = verify_recording(rec.path, device_key=device.signer.public_key)
    assert report.ok and report.status == "intact-truncated", report.problems


def test_cut_before_the_opened_line(device):
    spool = device.spool()
    spool.recover()
    folder = device.spool_dir / "CAM-T-001_20260921T141320Z_000000"
    folder.mkdir()
    spool.close()
    [line] = recover(device)
    assert line["opened_missing"] is True and line["seq"] == 0
    spool = device.spool()
    spool.recover()
    assert spool.next_seq == 1  # the number is used; never reused


def test_torn_journal_line_is_documented(device):
    device.record(device.spool())
    journal = device.spool_dir / "journal.jsonl"
    good = journal.read_bytes()
    journal.write_bytes(good + b'{"data":{"recording_id":"CAM')
    spool = device.spool()
    spool.recover()
    spool.journal.append("boot", {"version": "test"})
    spool.close()
    report = read_chain(journal, JOURNAL_CONTEXT, device.signer.public_key)
    assert report.ok, report.problems
    assert report.torn and journal.read_bytes().startswith(good)
