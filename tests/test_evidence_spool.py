import json
import subprocess

import pytest
from test_evidence_support import Device, mpegts, slow_clock

from recorder.errors import EvidenceError
from recorder.evidence.age import load_identities
from recorder.evidence.chain import read_chain
from recorder.evidence.format import JOURNAL_CONTEXT, MANIFEST_CONTEXT
from recorder.evidence.journal import read_journal
from recorder.evidence.metadata import decrypt_metadata
from recorder.evidence.verify import verify_recording, verify_recordings


@pytest.fixture
def device(tmp_path):
    return Device(tmp_path)


def events(path):
    return [line["event"] for line in read_chain(path, MANIFEST_CONTEXT, None).lines]


def test_recording_is_sealed_chained_and_verifies(device):
    spool = device.spool()
    rec = device.record(spool, segments=2, static={"agent": "A-1234"}, notes=[{"type": "bookmark"}])
    names = sorted(p.name for p in rec.path.iterdir())
    assert names == ["manifest.jsonl", "seg-000001.meta.age", "seg-000001.ts.age",
                     "seg-000002.meta.age", "seg-000002.ts.age"]
    assert events(rec.path / "manifest.jsonl") == ["opened", "sealed", "sealed", "closed"]
    ids = load_identities(device.identity_file)
    report = verify_recording(rec.path, device_key=device.signer.public_key, identities=ids)
    assert report.ok, report.problems
    assert report.status == "intact" and report.segments == 2 and report.key_pinned
    assert report.media["seg-000001.ts.age"]["video_packets"] > 0
    meta = decrypt_metadata(rec.path / "seg-000001.meta.age", ids)
    assert meta["recording"]["agent"] == "A-1234" and meta["recording"]["trigger_reason"] == "agent"
    assert meta["events"][0]["type"] == "bookmark" and meta["final"] is True


def test_opened_line_binds_device_and_has_no_personal_data(device):
    spool = device.spool()
    rec = device.record(spool, segments=1, static={"agent": "A-1234"})
    opened = read_chain(rec.path / "manifest.jsonl", MANIFEST_CONTEXT, None).lines[0]
    assert opened["camera_id"] == "CAM-T-001" and opened["device_key"] == device.signer.public_key.hex()
    assert opened["recording_id"] == rec.id == rec.path.name and opened["recording_seq"] == 0
    assert opened["recipients"] == [device.recipient] and opened["config_signed"] is True
    assert opened["clock_source"] == "gps" and opened["previous_recording_last_line"] is None
    text = (rec.path / "manifest.jsonl").read_text()
    assert "A-1234" not in text and "agent" not in text


@pytest.mark.integration
def test_segment_decrypts_with_the_age_cli(device):
    rec = device.record(device.spool(), segments=1)
    out = subprocess.run(["age", "-d", "-i", str(device.identity_file), str(rec.path / "seg-000001.ts.age")],
                         capture_output=True, check=True).stdout
    assert out == mpegts(1.0, 0)


def test_progress_lines_at_each_fsync(device):
    spool = device.spool(monotonic=slow_clock())
    rec = spool.open_recording(device.clock.now(), "agent", {})
    seg = rec.open_segment()
    data = mpegts(2.0, 1)
    for i in range(0, len(data), 20000):
        seg.write(data[i:i + 20000])
    seg.seal()
    rec.close("stop gesture")
    lines = read_chain(rec.path / "manifest.jsonl", MANIFEST_CONTEXT, device.signer.public_key).lines
    progress = [line for line in lines if line["event"] == "progress"]
    assert len(progress) >= 2
    assert progress[0]["file"] == "seg-000001.ts.age.part"
    assert [p["durable_bytes"] for p in progress] == sorted(p["durable_bytes"] for p in progress)
    assert verify_recording(rec.path, device_key=device.signer.public_key).ok


def test_sequence_and_previous_hash_persist_across_restarts(device):
    spool = device.spool()
    first = device.record(spool)
    spool.close()
    spool = device.spool()
    assert spool.recover() == []
    second = device.record(spool)
    assert second.seq == 1 and second.id.endswith("_000001")
    opened = read_chain(second.path / "manifest.jsonl", MANIFEST_CONTEXT, None).lines[0]
    assert opened["previous_recording_last_line"] == first.manifest.last_hash
    reports = verify_recordings([first.path, second.path], device_key=device.signer.public_key)
    assert all(r.ok for r in reports), [r.problems for r in reports]


def test_sequence_survives_offloaded_folders(device):
    spool = device.spool()
    rec = device.record(spool)
    spool.close()
    import shutil
    shutil.rmtree(rec.path)  # offloaded to the vault, space freed
    spool = device.spool()
    spool.recover()
    assert spool.next_seq == 1


def test_journal_is_one_signed_chain_with_personal_fields_encrypted(device):
    spool = device.spool()
    spool.recover()
    spool.journal.append("assignment", {"shift": "morning"}, {"agent": "A-1234"})
    device.record(spool)
    path = device.spool_dir / "journal.jsonl"
    assert "A-1234" not in path.read_text()
    report = read_journal(path, device.signer.public_key, load_identities(device.identity_file))
    assert report.ok, report.problems
    assert [line["event"] for line in report.lines] == ["assignment", "recording opened", "recording closed"]
    assert report.lines[0]["personal_clear"] == {"agent": "A-1234"}
    assert "personal" not in report.lines[1]
    assert not read_chain(path, JOURNAL_CONTEXT, device.signer.public_key).problems
    with pytest.raises(EvidenceError, match="unknown event"):
        spool.journal.append("coffee break", {})


def test_spool_refuses_without_recipients(device):
    from drivers.signer import FileSigner  # noqa: F401  (device key already provisioned)
    from recorder.evidence.spool import Spool
    with pytest.raises(EvidenceError, match="recipient"):
        Spool(device.spool_dir, device.signer, [], "CAM-1", "d" * 64, False)
    with pytest.raises(EvidenceError, match="camera id"):
        Spool(device.spool_dir, device.signer, [device.recipient], "CAM_1/x", "d" * 64, False)


def test_no_clear_data_on_the_device(device, tmp_path):
    agent, lat, lon = "AGENT-987654", "46.951234", "4.298765"
    spool = device.spool()
    spool.journal.append("assignment", {}, {"agent": agent})
    marker = b"FRAMEPATTERN-" * 200
    rec = spool.open_recording(device.clock.now(), "request", {"clock_source": "gps"})
    rec.static["agent"] = agent
    rec.note({"type": "gps", "lat": float(lat), "lon": float(lon)})
    seg = rec.open_segment()
    seg.write(mpegts(1.0, 2) + marker)
    seg.seal()
    rec.note({"type": "bookmark", "position": f"{lat},{lon}"})
    rec.close("stop gesture")
    blobs = b"".join(p.read_bytes() for p in (device.root / "spool").rglob("*") if p.is_file())
    blobs += b"".join(p.read_bytes() for p in (device.root / "state").rglob("*") if p.is_file())
    for needle in (agent.encode(), lat.encode(), lon.encode(), b"FRAMEPATTERN", b"request", b"AGE-SECRET-KEY"):
        assert needle not in blobs, needle
    # The chief can read it all back.
    ids = load_identities(device.identity_file)
    meta = json.dumps(decrypt_metadata(rec.path / "close.meta.age", ids))
    assert lat in meta


def test_recover_leaves_the_recording_in_progress_alone(device):
    spool = device.spool()
    rec = spool.open_recording(device.clock.now(), "agent", {})
    seg = rec.open_segment()
    seg.write(mpegts(1.0, 0))
    assert spool.recover() == []
    seg.seal()
    rec.close("stop gesture")
    assert verify_recording(rec.path, device_key=device.signer.public_key).status == "intact"


def test_devices_file_as_json(device, tmp_path, capsys):
    from tools.cli import main as pieton
    rec = device.record(device.spool())
    devices = tmp_path / "devices.json"
    devices.write_text(json.dumps({device.camera_id: device.signer.public_key.hex()}))
    assert pieton(["verify", str(rec.path), "--devices", str(devices), "--identity", str(device.identity_file)]) == 0
    devices.write_text("{not json")
    assert pieton(["verify", str(rec.path), "--devices", str(devices)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
