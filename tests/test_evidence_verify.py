import json
import shutil

import pytest
from test_evidence_support import Device

from drivers.signer import FileSigner
from recorder.evidence.age import generate_identity, load_identities
from recorder.evidence.chain import read_chain, signed_bytes
from recorder.evidence.format import MANIFEST_CONTEXT, canonical
from recorder.evidence.verify import verify_recording, verify_recordings
from tools.cli import main as pieton

M = "manifest.jsonl"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Two devices; the first made three recordings. Tests copy them before damaging."""
    root = tmp_path_factory.mktemp("made")
    device = Device(root / "a")
    spool = device.spool()
    recs = [device.record(spool, segments=3, seconds=0.5) for _ in range(3)]
    other = Device(root / "b", camera_id="CAM-T-002")
    foreign = other.record(other.spool(), segments=3, seconds=0.5)
    return device, recs, other, foreign


@pytest.fixture
def rec(made, tmp_path):
    device, recs, _, _ = made
    dst = tmp_path / recs[0].id
    shutil.copytree(recs[0].path, dst)
    return dst


def problems(folder, device, **kw):
    report = verify_recording(folder, device_key=device.signer.public_key, **kw)
    return [(p.file, p.reason) for p in report.problems]


def has(found, file, words):
    return any(f == file and words in reason for f, reason in found)


def test_intact_copy_verifies(made, rec):
    assert problems(rec, made[0]) == []


def test_flipped_byte(made, rec):
    path = rec / "seg-000002.ts.age"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert has(problems(rec, made[0]), "seg-000002.ts.age", "SHA-256 differs")


def test_truncated_file(made, rec):
    path = rec / "seg-000001.meta.age"
    path.write_bytes(path.read_bytes()[:-10])
    assert has(problems(rec, made[0]), "seg-000001.meta.age", "size")


@pytest.mark.parametrize("name", ["seg-000002.ts.age", "seg-000003.meta.age"])
def test_deleted_file(made, rec, name):
    (rec / name).unlink()
    assert has(problems(rec, made[0]), name, "missing")


def test_two_segments_swapped(made, rec):
    a, b = rec / "seg-000001.ts.age", rec / "seg-000002.ts.age"
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)
    found = problems(rec, made[0])
    assert has(found, "seg-000001.ts.age", "SHA-256") and has(found, "seg-000002.ts.age", "SHA-256")


def test_segment_copied_from_another_recording(made, rec):
    shutil.copy(made[1][1].path / "seg-000002.ts.age", rec / "seg-000002.ts.age")
    assert has(problems(rec, made[0]), "seg-000002.ts.age", "differs")


def test_extra_file_not_listed(made, rec):
    shutil.copy(made[1][1].path / "seg-000003.ts.age", rec / "seg-000004.ts.age")
    assert has(problems(rec, made[0]), "seg-000004.ts.age", "not listed")


def test_recording_from_another_device(made, tmp_path):
    device, _, other, foreign = made
    dst = tmp_path / foreign.id
    shutil.copytree(foreign.path, dst)
    assert has(problems(dst, device), M, "made by another device")
    devices = tmp_path / "devices.txt"
    devices.write_text(f"# enrolled\n{device.camera_id} {device.signer.public_key.hex()}\n")
    assert pieton(["verify", str(dst), "--devices", str(devices)]) == 1
    devices.write_text(f"{other.camera_id} {other.signer.public_key.hex()}\n")
    assert pieton(["verify", str(dst), "--devices", str(devices)]) == 0


def resign(folder, signer, edit=lambda line: None):
    """Rewrite a whole manifest as someone holding ``signer`` would."""
    lines = read_chain(folder / M, MANIFEST_CONTEXT, None).lines
    out, prev = [], "0" * 64
    for line in lines:
        line = {k: v for k, v in line.items() if k != "sig"}
        edit(line)
        line["prev"] = prev
        line["sig"] = signer.sign(signed_bytes(MANIFEST_CONTEXT, line)).hex()
        raw = canonical(line)
        prev = __import__("hashlib").sha256(raw).hexdigest()
        out.append(raw + b"\n")
    (folder / M).write_bytes(b"".join(out))


def test_resigned_with_another_key(made, rec, tmp_path):
    thief = FileSigner.create(tmp_path / "thief.key")

    def claim(line):
        if line["event"] == "opened":
            line["device_key"] = thief.public_key.hex()
    resign(rec, thief, claim)
    found = problems(rec, made[0])
    assert has(found, M, "made by another device") and has(found, M, "bad signature")
    # Unpinned, it is self-consistent: the verifier says the key is not pinned.
    report = verify_recording(rec)
    assert report.ok and "not pinned" in report.notes[0]


def test_stanza_count_against_opened_recipients(made, rec):
    _, extra = generate_identity()

    def two(line):
        if line["event"] == "opened":
            line["recipients"] = line["recipients"] + [extra]
    resign(rec, made[0].signer, two)
    found = problems(rec, made[0])
    assert has(found, "seg-000001.ts.age", "encrypted to 1 recipient(s), the opened line lists 2")


def _lines(folder):
    return (folder / M).read_bytes().splitlines(keepends=True)


def test_manifest_line_edited(made, rec):
    lines = _lines(rec)
    line = json.loads(lines[2])
    line["size"] += 1
    lines[2] = canonical(line) + b"\n"
    (rec / M).write_bytes(b"".join(lines))
    found = problems(rec, made[0])
    assert has(found, M, "line 3: bad signature")


def test_manifest_line_removed(made, rec):
    lines = _lines(rec)
    (rec / M).write_bytes(b"".join(lines[:2] + lines[3:]))
    found = problems(rec, made[0])
    assert has(found, M, "line 3: sequence number 3, expected 2")
    assert has(found, "seg-000002.ts.age", "not listed")


def test_manifest_line_moved_from_another_recording(made, rec):
    lines = _lines(rec)
    lines[2] = _lines(made[1][1].path)[2]
    (rec / M).write_bytes(b"".join(lines))
    found = problems(rec, made[0])
    assert has(found, M, "line 3: does not link") and has(found, "seg-000002.ts.age", "SHA-256")


def test_last_segments_and_closed_removed(made, rec):
    lines = _lines(rec)
    (rec / M).write_bytes(b"".join(lines[:-2]))
    for name in ("seg-000003.ts.age", "seg-000003.meta.age"):
        (rec / name).unlink()
    found = problems(rec, made[0])
    assert has(found, M, "no closed or recovered line at the end")


def test_folder_renamed(made, rec):
    renamed = rec.parent / rec.name.replace("_000000", "_000007")
    rec.rename(renamed)
    assert has(problems(renamed, made[0]), M, "does not match the folder name")


def test_recordings_of_one_camera_must_link(made, tmp_path):
    device, recs, _, _ = made
    folders = []
    for r in recs:
        shutil.copytree(r.path, tmp_path / r.id)
        folders.append(tmp_path / r.id)
    key = device.signer.public_key
    assert all(r.ok for r in verify_recordings(folders, device_key=key))
    gap = verify_recordings([folders[0], folders[2]], device_key=key)
    assert all(r.ok for r in gap) and "recordings 1 to 1 not given" in gap[1].notes[-1]

    def unlink(line):
        if line["event"] == "opened":
            line["previous_recording_last_line"] = "0" * 64
    resign(folders[2], device.signer, unlink)
    reports = verify_recordings(folders, device_key=key)
    assert [p.reason for p in reports[2].problems] == [
        f"does not follow {recs[1].id}: its opened line names another previous last line"]


def test_wrong_identity_is_a_clear_problem(made, rec, tmp_path):
    wrong = tmp_path / "wrong.txt"
    wrong.write_text(generate_identity()[0] + "\n")
    found = problems(rec, made[0], identities=load_identities(wrong))
    assert has(found, "seg-000001.ts.age", "cannot decrypt: no identity matches")


def test_cli_exit_codes_and_output(made, rec, tmp_path, capsys):
    device = made[0]
    key = device.signer.public_key.hex()
    assert pieton(["verify", str(rec), "--device-key", key, "--identity", str(device.identity_file)]) == 0
    out = capsys.readouterr().out
    assert "intact, 3 segment(s), closed (stop gesture)" in out and "not pinned" not in out
    (rec / "seg-000002.ts.age").write_bytes(b"not age at all")
    assert pieton(["verify", str(rec), "--device-key", key]) == 1
    out = capsys.readouterr().out
    assert f"{rec.name} seg-000002.ts.age: size" in out and "FAILED" in out
    assert pieton(["verify", str(rec), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["recordings"][0]["status"] == "failed"
    assert pieton(["verify", str(rec), "--device-key", "xyz"]) == 2
    assert "64 hex digits" in capsys.readouterr().err
    assert pieton(["verify", str(rec), "--identity", str(tmp_path / "none.txt")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_cli_accepts_a_spool_folder(made, capsys):
    device = made[0]
    assert pieton(["verify", str(device.spool_dir), "--device-key", device.signer.public_key.hex()]) == 0
    assert "3 of 3 recording(s) intact" in capsys.readouterr().out


def _replace_segment(folder, signer, name, data):
    """An insider with the device key swaps a segment and re-signs: only the content can tell."""
    import hashlib
    (folder / name).write_bytes(data)

    def fix(line):
        if line.get("file") == name:
            line["size"], line["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    resign(folder, signer, fix)


def test_segment_that_is_not_age(made, rec):
    device = made[0]
    _replace_segment(rec, device.signer, "seg-000002.ts.age", b"plain MPEG-TS bytes, not encrypted")
    found = problems(rec, device, identities=load_identities(device.identity_file))
    assert has(found, "seg-000002.ts.age", "not a readable age file")
    assert has(found, "seg-000002.ts.age", "cannot decrypt")


def test_segment_for_another_recipient_or_not_mpegts(made, rec):
    from recorder.evidence.age import encrypt_bytes
    device = made[0]
    _, stranger = generate_identity()
    _replace_segment(rec, device.signer, "seg-000001.ts.age", encrypt_bytes(b"x" * 5000, [stranger]))
    _replace_segment(rec, device.signer, "seg-000002.ts.age", encrypt_bytes(b"x" * 5000, [device.recipient]))
    found = problems(rec, device, identities=load_identities(device.identity_file))
    assert has(found, "seg-000001.ts.age", "cannot decrypt: no identity matches")
    assert has(found, "seg-000002.ts.age", "MPEG-TS")


def test_wrong_passphrase_is_exit_2(made, rec, tmp_path, monkeypatch, capsys):
    from recorder.evidence.age import encrypt_with_passphrase
    device = made[0]
    protected = tmp_path / "chief.age"
    protected.write_bytes(encrypt_with_passphrase((device.identity + "\n").encode(), "right", work_factor=10))
    monkeypatch.setenv("PIETON_PASSPHRASE", "right")
    assert pieton(["verify", str(rec), "--identity", str(protected)]) == 0
    capsys.readouterr()
    monkeypatch.setenv("PIETON_PASSPHRASE", "wrong")
    assert pieton(["verify", str(rec), "--identity", str(protected)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pieton verify: ") and "Traceback" not in err


def test_spool_journal_checked_with_its_recordings(made, tmp_path, capsys):
    device = made[0]
    key = device.signer.public_key.hex()
    spool = tmp_path / "spool"
    shutil.copytree(device.spool_dir, spool)
    journal = spool / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:1] + lines[2:]))  # a journal line removed
    assert pieton(["verify", str(spool), "--device-key", key]) == 1
    out = capsys.readouterr().out
    assert "journal.jsonl: line 2: sequence number" in out
    journal.write_bytes(b"".join(lines))
    foreign = made[3]
    shutil.copytree(foreign.path, spool / foreign.id.replace("CAM-T-002", "CAM-T-001").replace("_000000", "_000099"))
    assert pieton(["verify", str(spool), "--device-key", key]) == 1
    assert "recording not in the device journal" in capsys.readouterr().out
