"""The evidence format's one home: one camera-id rule, names matched whole, and sequence
numbers that only signed lines move."""

import json
import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_evidence_support import START, Device

from drivers.signer import FileSigner
from recorder.config import SCHEMA
from recorder.errors import EvidenceError
from recorder.evidence.age import generate_identity
from recorder.evidence.chain import read_chain
from recorder.evidence.format import (
    JOURNAL_CONTEXT,
    JOURNAL_FILE,
    is_camera_id,
    parse_recording_id,
    recording_id,
    utc_iso,
)
from recorder.evidence.sequence import describe_range, missing_ranges
from recorder.evidence.spool import Spool
from tests.conftest import copy_config_files
from tools.cli import main

CAMERA_ALPHABET = string.ascii_letters[:6] + string.digits[:4] + "._-\n /é"


@pytest.fixture(scope="module")
def spool_parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("parts")
    return FileSigner.create(root / "key" / "device-signing.key"), generate_identity()[1]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=CAMERA_ALPHABET, max_size=70))
@example("CAM_1")
@example("CAM-1\n")
@example("A" * 64)
def test_every_camera_id_the_configuration_accepts_the_spool_accepts(spool_parts, camera_id):
    signer, recipient = spool_parts
    if not SCHEMA["device"]["camera_id"].check(camera_id):
        return
    with tempfile.TemporaryDirectory() as tmp:
        Spool(Path(tmp) / "spool", signer, [recipient], camera_id, "d" * 64, True).close()
    assert parse_recording_id(recording_id(camera_id, START, 7)).camera == camera_id


def test_config_check_refuses_a_camera_id_the_spool_refuses(tmp_path, capsys):
    path = tmp_path / "pieton.toml"
    copy_config_files(tmp_path)
    path.write_text('[device]\ncamera_id = "CAM_1"\n')
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "camera_id = 'CAM_1'" in err and "'.' and '-'" in err
    path.write_text('[device]\ncamera_id = "CAM-1\\n"\n')    # a trailing newline is not matched away
    assert main(["config", "check", str(path)]) == 2
    path.write_text('[device]\ncamera_id = "CAM.1"\n')
    assert main(["config", "check", str(path)]) == 0


def test_names_are_matched_whole():
    rid = recording_id("CAM-1", START, 3)
    assert parse_recording_id(rid).seq == 3 and parse_recording_id(rid).camera == "CAM-1"
    for bad in (rid + "\n", rid + "x", "_" + rid, rid.replace("_000003", "_" + "9" * 60), rid.replace("CAM-1", "CAM_1")):
        assert parse_recording_id(bad) is None, bad
    assert not is_camera_id("CAM-1\n") and not is_camera_id("CAM_1") and is_camera_id("CAM.1-a")
    assert utc_iso(START) == "2026-09-21T14:13:20.000Z"


def test_a_spool_folder_name_ending_in_a_newline_is_not_a_recording(tmp_path):
    device = Device(tmp_path)
    spool = device.spool()
    rec = device.record(spool, segments=1)
    (device.spool_dir / (rec.id + "\n")).mkdir()
    assert spool.recordings() == [rec.path]
    assert main(["verify", str(device.spool_dir), "--device-key", device.signer.public_key.hex()]) == 0


def _records(device, count):
    spool = device.spool()
    recs = [device.record(spool, segments=1, seconds=0.5) for _ in range(count)]
    spool.close()
    return recs


def test_an_unsigned_journal_line_does_not_move_the_sequence(tmp_path):
    device = Device(tmp_path)
    _records(device, 2)
    journal = device.spool_dir / JOURNAL_FILE
    forged = {"event": "recording opened", "data": {"recording_seq": 999_999_999, "recording_id": "x"},
              "seq": 99, "prev": "0" * 64, "sig": "00" * 64, "time": "2026-09-21T00:00:00.000Z"}
    with open(journal, "ab") as f:
        f.write(json.dumps(forged).encode() + b"\n")
    spool = device.spool()
    spool.recover()
    assert spool.next_seq == 2
    rec = device.record(spool, segments=1)
    assert rec.seq == 2
    spool.close()
    # The device documented the forged line and went on from its last signed line: the
    # chain holds, and the added line is still reported, by its number.
    report = read_chain(journal, JOURNAL_CONTEXT, device.signer.public_key)
    assert len(report.problems) == 1 and report.problems[0].startswith("line 5: a line not signed")


@pytest.mark.parametrize("seq", ["000300000", "9" * 60])
def test_an_empty_folder_with_a_big_number_does_not_move_the_sequence(tmp_path, seq):
    device = Device(tmp_path)
    _records(device, 2)
    (device.spool_dir / f"{device.camera_id}_20260921T000000Z_{seq}").mkdir()
    spool = device.spool()
    spool.recover()
    assert spool.next_seq == 2
    spool.close()
    lines = read_chain(device.spool_dir / JOURNAL_FILE, JOURNAL_CONTEXT, device.signer.public_key).lines
    assert all(line["data"].get("recording_seq", 0) < 3 for line in lines)


def test_a_cut_before_the_opened_line_keeps_its_number(tmp_path):
    """The one folder without a signed opened line that is the device's own: the next number."""
    device = Device(tmp_path)
    _records(device, 2)
    folder = device.spool_dir / recording_id(device.camera_id, START + 999, 2)
    folder.mkdir()
    spool = device.spool()
    spool.recover()
    assert spool.next_seq == 3
    recovered = read_chain(device.spool_dir / JOURNAL_FILE, JOURNAL_CONTEXT, None).lines[-1]
    assert recovered["event"] == "recording recovered" and recovered["data"]["recording_seq"] == 2
    spool.close()


def test_gaps_are_ranges_whatever_the_number():
    assert missing_ranges({0, 1, 5, 6, 9}, 10) == [(2, 4), (7, 8), (10, 10)]
    assert missing_ranges(set(), -1) == [] and missing_ranges({3}, 2) == [(0, 2)]
    assert missing_ranges({0, 999_999_999}, 999_999_999) == [(1, 999_999_998)]
    assert describe_range(3, 299_999, {}, "CAM") == "CAM recordings #3–#299999 (299997 recordings)"
    assert describe_range(4, 4, {4: "CAM_x_000004"}, "CAM") == "CAM_x_000004"


def test_journal_refuses_unknown_events(tmp_path):
    device = Device(tmp_path)
    spool = device.spool()
    with pytest.raises(EvidenceError, match="unknown event"):
        spool.journal.append("recording deleted", {})
    spool.journal.append("recording erased", {"recording_id": "x", "reason": "retention"})
    spool.close()


def test_the_writer_documents_a_bounded_number_of_fragments(tmp_path):
    from recorder.evidence.chain import MAX_TORN, ChainWriter
    signer = FileSigner.create(tmp_path / "k")
    path = tmp_path / "j.jsonl"
    with ChainWriter(path, JOURNAL_CONTEXT, signer) as w:
        w.append({"event": "boot"})
    with open(path, "ab") as f:
        f.write(b"junk\n" * (MAX_TORN * 100))
    with ChainWriter(path, JOURNAL_CONTEXT, signer) as w:
        line = w.append({"event": "boot"})
    assert line["seq"] == 1 and len(line["torn"]) == MAX_TORN
    assert not read_chain(path, JOURNAL_CONTEXT, signer.public_key).ok   # the rest is still reported
    # Another key (the camera provisioned again) goes on from the last well-formed line.
    with ChainWriter(path, JOURNAL_CONTEXT, FileSigner.create(tmp_path / "k2")) as w:
        assert w.append({"event": "boot"})["seq"] == 2


def test_the_device_reads_its_journal_a_window_at_a_time(tmp_path, monkeypatch):
    """Memory stays within one window whatever the journal holds; the sequence and the
    chain still go on from the last signed lines behind a line longer than a window."""
    import recorder.evidence.chain as chain
    import recorder.evidence.sequence as sequence
    monkeypatch.setattr(chain, "SCAN_WINDOW", 2048)
    monkeypatch.setattr(sequence, "SCAN_WINDOW", 2048)
    device = Device(tmp_path)
    _records(device, 3)
    with open(device.spool_dir / JOURNAL_FILE, "ab") as f:
        f.write(b'{"seq": 1, "junk": "' + b"x" * 10_000 + b'"}\n' + b"junk\n" * 10)
    spool = device.spool()
    spool.recover()
    assert spool.next_seq == 3
    line = spool.journal.append("boot", {})
    spool.close()
    # The ten short fragments are documented; the line longer than a window is not, and
    # the verifier still names it.
    assert line["seq"] == 6 and len(line["torn"]) == 10
    problems = read_chain(device.spool_dir / JOURNAL_FILE, JOURNAL_CONTEXT, device.signer.public_key).problems
    assert problems == ["line 7: damaged line (10022 bytes) not documented by a recovery"]


def test_provisioning_and_assignments_follow_the_one_camera_id_rule(tmp_path, capsys):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from recorder.assignment import sign_assignment
    from recorder.errors import AssignmentError
    assert main(["provision", "--state-dir", str(tmp_path / "s"), "--camera-id", "CAM_1"]) == 2
    assert "'.' and '-'" in capsys.readouterr().err
    key = Ed25519PrivateKey.generate()
    with pytest.raises(AssignmentError, match="CAM_1"):
        sign_assignment(key, "A-1", "CAM_1", 1, START + 3600, issued=START)
    assert json.loads(sign_assignment(key, "A-1", "CAM.1", 1, START + 3600, issued=START))["device"] == "CAM.1"


def test_one_utc_time_read_back_whole():
    from recorder.evidence.format import parse_utc
    assert parse_utc(utc_iso(START + 0.25)) == START + 0.25
    assert parse_utc("2026-09-21T14:13:20Z") == START
    for bad in ("2026-09-21T14:13:20", "2026-09-21T14:13:20Z\n", "2026-02-30T00:00:00Z", 7, None):
        with pytest.raises(ValueError):
            parse_utc(bad)


def test_names_with_a_trailing_newline_are_refused_everywhere(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from recorder.assignment import sign_assignment
    from recorder.errors import AssignmentError, VaultError
    from tools.vault.layout import safe_name
    with pytest.raises(VaultError):
        safe_name("CAM-1\n", "camera id")
    with pytest.raises(AssignmentError):
        sign_assignment(Ed25519PrivateKey.generate(), "A-1\n", "CAM-1", 1, START + 3600, issued=START)
