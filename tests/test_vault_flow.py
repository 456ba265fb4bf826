"""The vault end to end on real spools written by the evidence code: init, enrol, ingest
with verification and receipt, quarantine, extraction logged twice, check-report, verify."""

import json
import os
import shutil
import subprocess

import pytest
from conftest import designate, read_jsonl
from test_vault_media import make_segments
from vault_support import CAMERA, START, make_spool, store_recordings

from drivers.signer import FileSigner
from recorder.errors import VaultError, VerificationError
from recorder.evidence.age import generate_identity
from recorder.evidence.format import INBOX
from recorder.evidence.receipt import freeable, verify_receipt
from recorder.evidence.spool import Spool
from tools.cli import main
from tools.vault.extract import Request, extract
from tools.vault.ingest import ingest
from tools.vault.vault import init_vault


@pytest.fixture
def chief():
    identity, recipient = generate_identity()
    return identity, recipient


def test_init_refuses_bad_input(tmp_path, chief):
    (tmp_path / "p").mkdir()
    with pytest.raises(VaultError, match="not an age recipient"):
        init_vault(tmp_path / "v", ["age1nope"], tmp_path / "p" / "r")
    with pytest.raises(VaultError, match="outside the vault"):
        init_vault(tmp_path / "v", [chief[1]], tmp_path / "v" / "r")
    init_vault(tmp_path / "v2", [chief[1]], tmp_path / "p" / "r2")
    with pytest.raises(VaultError, match="already a vault"):
        init_vault(tmp_path / "v2", [chief[1]], tmp_path / "p" / "r3")
    assert not list((tmp_path / "v2").rglob("*AGE-SECRET*"))
    assert b"AGE-SECRET-KEY" not in b"".join(p.read_bytes() for p in (tmp_path / "v2").rglob("*") if p.is_file())


def test_ingest_verifies_stores_receipts_and_is_idempotent(tmp_path, chief, vault):
    spool_dir, signer = make_spool(tmp_path, [chief[1]])
    vault.enrol(CAMERA, signer.public_key_hex)
    report = ingest(vault, spool_dir, progress=False)
    assert report.ok, report
    assert len(report.stored) == 2 and not report.already
    stored = vault.layout.recording(CAMERA, report.stored[0])
    assert (stored / "manifest.jsonl").read_bytes() == (spool_dir / report.stored[0] / "manifest.jsonl").read_bytes()
    # The camera checks the receipt against the vault key it was provisioned with.
    receipt = verify_receipt(report.receipt, vault.public_key, camera_id=CAMERA, device_key=signer.public_key_hex)
    from recorder.evidence.spool import last_good_line
    held = {rid: last_good_line(spool_dir / rid / "manifest.jsonl")[1] for rid in report.stored}
    assert freeable(receipt, held) == sorted(report.stored)
    assert freeable(receipt, {report.stored[0]: "0" * 64}) == []  # another state frees nothing
    # Second run: nothing copied twice, a fresh receipt still covers both.
    again = ingest(vault, spool_dir, progress=False)
    assert again.stored == [] and sorted(again.already) == sorted(report.stored)
    assert len(list((spool_dir / INBOX).iterdir())) == 1  # same state, same time: the same receipt
    events = [e["event"] for e in read_jsonl(vault.layout.journal)]
    assert events.count("recording-ingested") == 2


def test_forged_receipt_is_refused(tmp_path, chief, vault):
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=1, segments=1)
    vault.enrol(CAMERA, signer.public_key_hex)
    report = ingest(vault, spool_dir, progress=False)
    data = json.loads(report.receipt.read_text())
    data["recordings"].append({"id": "CAM-T-001_20261118T000000Z_000099", "last_hash": "1" * 64, "segments": 1})
    with pytest.raises(VerificationError, match="signature does not verify"):
        verify_receipt(json.dumps(data).encode(), vault.public_key)
    other = FileSigner.create(tmp_path / "other" / "k")
    with pytest.raises(VerificationError, match="signature"):
        verify_receipt(report.receipt, other.public_key)
    with pytest.raises(VerificationError, match="addressed to camera"):
        verify_receipt(report.receipt, vault.public_key, camera_id="CAM-OTHER")


def test_unknown_camera_and_tampered_recording_are_quarantined(tmp_path, chief, vault):
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=2, segments=1)
    report = ingest(vault, spool_dir, progress=False)  # not enrolled
    assert not report.stored and len(report.quarantined) == 2
    assert "not enrolled" in report.quarantined[0][1][0]
    assert report.receipt is None
    vault.enrol(CAMERA, signer.public_key_hex)
    victim = sorted(p for p in spool_dir.iterdir() if p.name.startswith(CAMERA))[1]
    seg = victim / "seg-000001.ts.age"
    data = bytearray(seg.read_bytes())
    data[-100] ^= 1
    seg.write_bytes(bytes(data))
    report = ingest(vault, spool_dir, progress=False)
    assert len(report.stored) == 1 and [q[0] for q in report.quarantined] == [victim.name]
    assert any("SHA-256" in p for p in report.quarantined[0][1])
    assert vault.index.recording(victim.name) is None
    receipt = json.loads(report.receipt.read_text())
    assert [r["id"] for r in receipt["recordings"]] == report.stored  # the camera keeps the bad one
    assert (vault.layout.quarantine / CAMERA / f"{victim.name}.1" / "QUARANTINE.json").is_file()


def test_recording_signed_by_another_key_is_quarantined(tmp_path, chief, vault):
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=1, segments=1)
    impostor = FileSigner.create(tmp_path / "impostor" / "k")
    vault.enrol(CAMERA, impostor.public_key_hex)
    report = ingest(vault, spool_dir, progress=False)
    assert report.quarantined and "another device" in " ".join(report.quarantined[0][1])


def test_missing_recording_in_sequence_is_reported(tmp_path, chief, vault):
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=3, segments=1)
    vault.enrol(CAMERA, signer.public_key_hex)
    middle = sorted(p for p in spool_dir.iterdir() if p.name.startswith(CAMERA))[1]
    shutil.rmtree(middle)
    report = ingest(vault, spool_dir, progress=False)
    assert report.missing == [middle.name]
    assert not report.ok


def test_interrupted_ingest_is_finished_without_duplicates(tmp_path, chief, vault):
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=1, segments=1)
    vault.enrol(CAMERA, signer.public_key_hex)
    rid = next(p.name for p in spool_dir.iterdir() if p.name.startswith(CAMERA))
    # A crash right after phase two's rename: stored on disk, not yet journaled nor indexed.
    target = vault.layout.recording(CAMERA, rid)
    target.parent.mkdir(parents=True)
    shutil.copytree(spool_dir / rid, target)
    (vault.layout.incoming / "half-copied").mkdir()  # and a leftover of an earlier crash
    report = ingest(vault, spool_dir, progress=False)
    assert report.already == [rid] and report.stored == []
    assert not list(vault.layout.incoming.iterdir())
    events = read_jsonl(vault.layout.journal)
    assert [e.get("completed_after_crash") for e in events if e["event"] == "recording-ingested"] == [True]


def test_extraction_logged_twice_and_report_checks(tmp_path, chief, vault):
    (rid,), _signer = store_recordings(vault, tmp_path, chief[1], recordings=1, segments=3)
    out = tmp_path / "out" / "pv-2026-117.mp4"
    out.parent.mkdir()
    request = Request([rid], "judicial", "OPJ Martin, TJ Autun", "Parquet d'Autun", out)
    result = extract(vault, request, [chief[0]])
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json",
                                       str(out)], capture_output=True, text=True, check=True).stdout)
    assert 5.5 < float(probe["format"]["duration"]) < 6.5
    report = result.report
    assert report["recordings"][0]["gps_track"] and report["recordings"][0]["pre_event_s"] == 4.0
    assert len(report["recordings"][0]["segments"]) == 3
    html = result.html_path.read_text()
    assert "<svg" in html and html.count("data:image/jpeg;base64,") == 8
    journal = read_jsonl(vault.layout.journal)
    register = read_jsonl(tmp_path / "police" / "register.jsonl")
    entry = journal[-1]
    assert entry["event"] == "extraction" and entry["purpose"] == "judicial"
    assert register[-1]["journal_seq"] == entry["seq"] and register[-1]["requester"] == "OPJ Martin, TJ Autun"
    from recorder.evidence.chain import line_hash
    from recorder.evidence.format import canonical
    assert register[-1]["journal_hash"] == line_hash(canonical(entry))
    pub = vault.public_key.hex()
    assert main(["vault", "check-report", str(result.report_path), str(out), "--vault-key", pub]) == 0
    out.write_bytes(out.read_bytes() + b"x")
    assert main(["vault", "check-report", str(result.report_path), str(out), "--vault-key", pub]) == 1


def test_failed_extraction_logs_the_attempt_and_leaves_no_file(tmp_path, chief, vault):
    (rid,), _signer = store_recordings(vault, tmp_path, chief[1], recordings=1, segments=2)
    out = tmp_path / "x.mp4"
    wrong, _ = generate_identity()
    with pytest.raises(VaultError, match="nothing written"):
        extract(vault, Request([rid], "judicial", "R", "D", out), [wrong])
    with pytest.raises(VaultError, match="outside the recording"):
        extract(vault, Request([rid], "judicial", "R", "D", out, start="100", end="200"), [chief[0]])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("x", ".x"))) == []
    register = read_jsonl(tmp_path / "police" / "register.jsonl")
    assert [r["event"] for r in register[1:] if r["event"].startswith("extraction")] == ["extraction-failed",
                                                                                         "extraction-failed"]
    with pytest.raises(VaultError, match="must be one of"):
        extract(vault, Request([rid], "curiosity", "R", "D", out), [chief[0]])
    with pytest.raises(VaultError, match="--deliver-to"):
        extract(vault, Request([rid], "judicial", "R", " ", out), [chief[0]])


def test_vault_verify_finds_tampering_and_register_mismatch(tmp_path, chief, vault):
    from tools.vault.audit import audit
    (rid,), _signer = store_recordings(vault, tmp_path, chief[1], recordings=1, segments=2)
    extract(vault, Request([rid], "administrative", "R", "D", tmp_path / "a.mp4"), [chief[0]])
    assert audit(vault).ok, audit(vault).problems
    # A register line removed: the journal's extraction entry has lost its mirror.
    reg = tmp_path / "police" / "register.jsonl"
    saved = reg.read_bytes()
    reg.write_bytes(b"".join(saved.splitlines(keepends=True)[:-1]))
    problems = audit(vault).problems
    assert any("missing from the register" in p for p in problems)
    reg.write_bytes(saved)
    meta = vault.layout.recording(CAMERA, rid) / "seg-000002.meta.age"
    meta.write_bytes(meta.read_bytes()[:-1] + b"\0")
    assert any("seg-000002.meta.age" in p for p in audit(vault).problems)
    # A recording slipped into the index behind the journal's back.
    row = vault.index.recording(rid)
    row.recording_id, row.state = "CAM-T-001_20261118T000000Z_000099", "purged"
    vault.index.add_recording(row)
    assert any("000099: in the index but no ingest" in p for p in audit(vault).problems)


def test_cli_flow_with_passphrase_identity(tmp_path, chief):
    from recorder.evidence.age import encrypt_with_passphrase
    ident = tmp_path / "chief.age"
    ident.write_bytes(encrypt_with_passphrase((chief[0] + "\n").encode(), "correct horse", work_factor=2))
    (tmp_path / "police").mkdir()
    reg = tmp_path / "police" / "register.jsonl"
    v = str(tmp_path / "vault")
    assert main(["vault", "init", v, "--recipient", chief[1], "--register", str(reg)]) == 0
    os.environ["PIETON_PASSPHRASE"] = "correct horse"
    try:
        designate(v, ident, chief[1])
    finally:
        del os.environ["PIETON_PASSPHRASE"]
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=1, segments=1)
    rid = next(p.name for p in spool_dir.iterdir() if p.name.startswith(CAMERA))
    os.environ["PIETON_PASSPHRASE"] = "wrong"
    try:
        me = ["--identity", str(ident)]
        assert main(["vault", "authorise", v, "--arrete", "TEST-1", "--date", "01/01/2026", "--cameras", "5",
                     "--communes", "71014", *me]) == 2   # a wrong passphrase records no arrêté
        os.environ["PIETON_PASSPHRASE"] = "correct horse"
        assert main(["vault", "authorise", v, "--arrete", "TEST-1", "--date", "01/01/2026", "--cameras", "5",
                     "--communes", "71014", *me]) == 0
        assert main(["vault", "enrol", v, "--camera", CAMERA, "--key", "zz", *me]) == 2
        assert main(["vault", "enrol", v, "--camera", CAMERA, "--key", signer.public_key_hex, *me]) == 0
        os.environ["PIETON_PASSPHRASE"] = "wrong"
        assert main(["vault", "ingest", v, "--from", str(spool_dir), "--no-progress", "--identity", str(ident)]) == 2
        os.environ["PIETON_PASSPHRASE"] = "correct horse"
        assert main(["vault", "ingest", v, "--from", str(spool_dir), "--no-progress", "--identity", str(ident)]) == 0
        os.environ["PIETON_PASSPHRASE"] = "wrong"
        args = ["vault", "extract", v, rid, "--purpose", "judicial", "--requester", "R", "--deliver-to", "D",
                "--identity", str(ident), "--out", str(tmp_path / "e.mp4")]
        assert main(args) == 2 and not (tmp_path / "e.mp4").exists()
        os.environ["PIETON_PASSPHRASE"] = "correct horse"
        assert main(args) == 0 and (tmp_path / "e.mp4").is_file()
        assert main(["vault", "view", v, rid, "--purpose", "disciplinary", "--requester", "R",
                     "--identity", str(ident), "--no-play"]) == 0
        assert main(["vault", "find", v, "--from", "2026-11-18T00:00:00Z", "--to", "2026-11-19T00:00:00Z",
                     "--purpose", "droit d'accès", "--requester", "M. Dupont", "--identity", str(ident)]) == 0
    finally:
        del os.environ["PIETON_PASSPHRASE"]
    assert main(["vault", "extract", v, rid, "--purpose", "fun", "--requester", "R", "--deliver-to", "D",
                 "--identity", str(ident), "--out", str(tmp_path / "f.mp4")]) == 2
    assert main(["vault", "verify", v]) == 0
    assert main(["vault", "stats", v, "--year", "2026", "--json"]) == 0


def test_training_extraction_is_anonymised_and_says_so(tmp_path, chief, vault):
    (rid,), _signer = store_recordings(vault, tmp_path, chief[1], recordings=1, segments=1)
    result = extract(vault, Request([rid], "training", "Formation ENPM", "Formateur", tmp_path / "t.mp4"),
                     [chief[0]])
    report = result.report
    assert report["anonymised"]["audio"].startswith("removed") and report["mp4"]["re_encoded"]
    assert "masked" in report["anonymised"]["overlay"]
    assert not (tmp_path / "t.mp4").exists()   # kept in the vault until the chief signs off its contact sheet
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0",
                            str(result.out)], capture_output=True, text=True, check=True).stdout.split()
    assert probe == ["video"]
    assert "Anonymisé pour la formation" in result.html_path.read_text()


def test_demo_epilogue_ingests_extracts_and_prints_the_register(tmp_path, chief):
    from tools.vault.demo import vault_epilogue
    spool_dir, _signer = make_spool(tmp_path, [chief[1]], recordings=1, segments=2)
    ident = tmp_path / "chief.identity"
    ident.write_text(chief[0] + "\n")
    lines = []
    assert vault_epilogue(tmp_path / "demo", spool_dir, ident, chief[1], out=lines.append) == 0
    text = "\n".join(lines)
    assert "ffprobe: h264, aac" in text and "Extraction" in text and "judiciaire" in text
    assert "Collecte (déchargement)" in text and "PM-DEMO" in text   # the chief designated, the author
    assert list((tmp_path / "demo" / "exports").glob("pv-demo-001.mp4"))


def _append_manifest_line(folder, signer):
    from recorder.evidence.chain import ChainWriter
    from recorder.evidence.format import MANIFEST_CONTEXT
    with ChainWriter(folder / "manifest.jsonl", MANIFEST_CONTEXT, signer) as writer:
        writer.append({"event": "recovered", "recording_id": folder.name, "found": [], "after": "closed",
                       "segments_sealed": 1, "data_stops": "at the last sealed segment"})


def test_manifest_changed_after_the_journal_recorded_its_end_is_quarantined(tmp_path, chief, vault):
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=2, segments=1)
    vault.enrol(CAMERA, signer.public_key_hex)
    first, second = sorted(p for p in spool_dir.iterdir() if p.name.startswith(CAMERA))
    _append_manifest_line(second, signer)  # signed, but the journal says it ended earlier
    report = ingest(vault, spool_dir, progress=False)
    assert report.stored == [first.name]
    assert "device journal says it ended with another" in " ".join(report.quarantined[0][1])
    # The same recording changed after it was stored: a second, different copy is refused.
    _append_manifest_line(first, signer)
    again = ingest(vault, spool_dir, progress=False)
    assert first.name in [q[0] for q in again.quarantined]
    assert any("other content" in p for q in again.quarantined for p in q[1])


def test_find_near_a_place_needs_the_identity_and_journals_the_search(tmp_path, chief, vault):
    from tools.vault.find import Filters, search, stats
    from tools.vault.layout import parse_time
    stored, _signer = store_recordings(vault, tmp_path, chief[1], recordings=2, segments=2)
    since, until = parse_time("2026-11-18T00:00:00Z"), parse_time("2026-11-19T00:00:00Z")
    access = {"motive": "droit d'accès", "requester": "M. Dupont", "identities": [chief[0]]}
    assert [f.row.recording_id for f in search(vault, since, until, Filters(), **access).found] == stored
    with pytest.raises(VaultError, match="--radius"):
        search(vault, since, until, Filters(near=(46.95, 4.30)), **access)
    # Recording 0 walked at lon 4.300, recording 1 at lon 4.301 (about 76 m east).
    near = search(vault, since, until, Filters(near=(46.95, 4.3), radius_m=30), **access)
    assert [f.row.recording_id for f in near.found] == stored[:1] and near.found[0].closest_m < 1
    assert search(vault, since, until, Filters(near=(47.5, 5.0), radius_m=500), **access).found == []
    search(vault, since, until, Filters(), **{**access, "motive": "judiciaire"})
    figures = stats(vault, 2026)
    # the refused one did not search, the judicial one is no access request
    assert figures["recordings"] == 2 and figures["access_requests_searched"] == 3
    assert figures["cameras_enrolled"] == 1


def test_two_recordings_one_mp4_and_a_range_in_utc(tmp_path, chief, vault):
    from tools.vault.find import Filters, search
    from tools.vault.layout import parse_time
    (first, second), _signer = store_recordings(vault, tmp_path, chief[1], recordings=2, segments=2)
    both = extract(vault, Request([first, second], "judicial", "R", "D", tmp_path / "both.mp4"), [chief[0]])
    assert 7.5 < both.report["mp4"]["duration_s"] < 8.5
    assert [r["id"] for r in both.report["recordings"]] == [first, second]
    # Recording 0 started at START (2026-11-18T11:06:40Z): 2 s to 3.5 s from its start, in UTC.
    part = extract(vault, Request([first], "judicial", "R", "D", tmp_path / "part.mp4",
                                  start="2026-11-18T11:06:42Z", end="2026-11-18T11:06:43.5Z"), [chief[0]])
    assert part.report["mp4"]["range_s"][0] == pytest.approx(2.0, abs=0.05)
    assert 1.3 < part.report["mp4"]["duration_s"] < 1.7
    # Recording 0 ran 11:06:40-11:06:44, recording 1 about 10 minutes later.
    found = search(vault, parse_time("2026-11-18T11:06:43Z"), parse_time("2026-11-18T11:07:00Z"), Filters(),
                   motive="judiciaire", requester="R", identities=[chief[0]]).found
    assert [f.row.recording_id for f in found] == [first]


def test_recording_altered_in_the_vault_is_not_extracted(tmp_path, chief, vault):
    (rid,), _signer = store_recordings(vault, tmp_path, chief[1], recordings=1, segments=3)
    seg = vault.layout.recording(CAMERA, rid) / "seg-000003.ts.age"
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0x40
    seg.write_bytes(bytes(data))
    with pytest.raises(VaultError, match="no longer verifies"):
        extract(vault, Request([rid], "judicial", "R", "D", tmp_path / "x.mp4"), [chief[0]])
    assert not list(tmp_path.glob("*x.mp4*")) and not list(tmp_path.glob(".x.*"))
    assert read_jsonl(vault.layout.journal)[-1]["event"] == "extraction-failed"


def test_camera_frees_what_the_receipt_covers_and_the_next_offload_is_clean(tmp_path, chief, vault):
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=2, segments=1)
    vault.enrol(CAMERA, signer.public_key_hex)
    stored = ingest(vault, spool_dir, progress=False).stored
    with Spool(spool_dir, signer, [chief[1]], CAMERA, "0" * 64, False) as spool:
        spool.recover()
        assert sorted(spool.apply_receipts(vault.public_key)) == sorted(stored)
        rec = spool.open_recording(START + 5000, "agent", {"clock_source": "gps"})
        seg = rec.open_segment()
        seg.write(make_segments(1)[0])
        seg.seal()
        rec.close("agent stop")
    assert not any((spool_dir / rid).exists() for rid in stored)
    report = ingest(vault, spool_dir, progress=False)
    assert report.ok, report  # the journal grew, the freed ones are in the vault: nothing missing
    assert len(report.stored) == 1 and report.stored[0].endswith("_000002")
