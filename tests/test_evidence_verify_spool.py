"""`pieton verify SPOOL`: every recording the camera numbered is in the spool or accounted
for by a signed journal line; a missing journal fails and every recording is still checked."""

import shutil

import pytest
from test_evidence_support import Device
from vault_support import CAMERA, make_spool

from drivers.signer import FileSigner
from recorder.evidence.format import INBOX, JOURNAL_FILE, MANIFEST_FILE
from recorder.evidence.receipt import make_receipt, write_receipt
from recorder.evidence.spool import last_good_line
from tools.cli import main as pieton
from tools.vault.ingest import ingest


@pytest.fixture
def device(tmp_path):
    device = Device(tmp_path)
    spool = device.spool()
    device.recs = [device.record(spool, segments=1, seconds=0.5) for _ in range(3)]
    spool.close()
    return device


def verify(device, capsys, *extra):
    code = pieton(["verify", str(device.spool_dir), "--device-key", device.signer.public_key.hex(), *extra])
    return code, capsys.readouterr().out


def test_a_deleted_recording_fails(device, capsys):
    shutil.rmtree(device.recs[1].path)
    code, out = verify(device, capsys)
    assert code == 1
    assert f"{device.recs[1].id} journal.jsonl: in the device journal but not in the spool" in out
    shutil.rmtree(device.recs[2].path)   # the last one too: the journal still names it
    code, out = verify(device, capsys)
    assert code == 1 and device.recs[2].id in out


def test_a_recording_freed_on_a_vault_receipt_is_accounted_for(device, tmp_path, capsys):
    vault = FileSigner.create(tmp_path / "vault.key")
    first = device.recs[0]
    covered = [{"id": first.id, "last_hash": last_good_line(first.path / MANIFEST_FILE)[1], "segments": 1}]
    write_receipt(device.spool_dir / INBOX, make_receipt(vault, device.camera_id, device.signer.public_key.hex(),
                                                         covered, "2026-09-22T08:00:00Z"))
    spool = device.spool()
    assert spool.apply_receipts(vault.public_key) == [first.id]
    spool.close()
    code, out = verify(device, capsys)
    assert code == 0, out
    assert "2 of 2 recording(s) intact" in out and "freed after a vault receipt" in out


def test_a_recording_erased_after_the_retention_is_accounted_for(device, capsys):
    gone = device.recs[0]
    spool = device.spool()
    shutil.rmtree(gone.path)
    spool.journal.append("recording erased", {"recording_id": gone.id, "recording_seq": gone.seq,
                                              "reason": "retention"})
    spool.close()
    code, out = verify(device, capsys)
    assert code == 0, out


def test_an_unsigned_line_accounts_for_nothing(device, capsys):
    gone = device.recs[1]
    shutil.rmtree(gone.path)
    with open(device.spool_dir / JOURNAL_FILE, "ab") as f:
        f.write(b'{"data":{"recording_id":"%s","recording_seq":1},"event":"space freed","prev":"","seq":6,"sig":"00"}\n'
                % gone.id.encode())
    code, out = verify(device, capsys)
    assert code == 1 and "not in the spool" in out


def test_a_missing_journal_fails_and_every_recording_is_still_checked(device, capsys):
    (device.spool_dir / JOURNAL_FILE).unlink()
    code, out = verify(device, capsys)
    assert code == 1
    assert "3 of 3 recording(s) intact" in out and "journal.jsonl: missing" in out
    with open(device.recs[2].path / "seg-000001.ts.age", "r+b") as f:
        f.write(b"X")
    code, out = verify(device, capsys)
    assert code == 1 and "2 of 3 recording(s) intact, 1 FAILED" in out


def test_a_journal_cut_after_a_recording_fails(device, capsys):
    journal = device.spool_dir / JOURNAL_FILE
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:-1]))     # the last "recording closed" line removed
    code, out = verify(device, capsys)
    assert code == 1 and "does not say it ended with its last manifest line" in out


def test_ingest_reports_gaps_as_ranges_and_ignores_unsigned_numbers(tmp_path, chief, vault):
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=2, segments=1)
    first = sorted(p for p in spool_dir.iterdir() if p.name.startswith(CAMERA))[0]
    shutil.copytree(first, spool_dir / (first.name + "\n"))                  # a name matched whole
    (spool_dir / f"{CAMERA}_20261118T000000Z_000300000").mkdir()        # empty, unsigned
    (spool_dir / f"{CAMERA}_20261118T000000Z_{'9' * 60}").mkdir()       # not a recording id
    with open(spool_dir / JOURNAL_FILE, "ab") as f:
        f.write(b'{"data":{"recording_seq":999999999},"event":"recording opened","prev":"","seq":9,"sig":"00"}\n')
    vault.enrol(CAMERA, signer.public_key_hex)
    report = ingest(vault, spool_dir, progress=False)
    assert report.missing == []
    assert len(report.stored) == 2 and len(report.quarantined) == 1
    assert not any(rid.endswith("\n") for rid in report.stored + [q[0] for q in report.quarantined])


def test_ingest_reports_a_run_of_missing_recordings_as_one_range(tmp_path, chief, vault):
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=5, segments=1)
    for folder in sorted(p for p in spool_dir.iterdir() if p.name.startswith(CAMERA))[1:4]:
        shutil.rmtree(folder)
    vault.enrol(CAMERA, signer.public_key_hex)
    report = ingest(vault, spool_dir, progress=False)
    assert report.missing == [f"{CAMERA} recordings #1–#3 (3 recordings)"]


def test_a_cut_before_the_journal_closing_entry_is_mended_at_the_next_start(device, capsys):
    """The manifest's closed line is durable, the journal's entry is not: the next start
    writes the entry, so the journal again says how every recording ended."""
    journal = device.spool_dir / JOURNAL_FILE
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:-1]))
    spool = device.spool()
    spool.recover()
    spool.close()
    code, out = verify(device, capsys)
    assert code == 0, out
