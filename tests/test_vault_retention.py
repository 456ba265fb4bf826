"""Retention with holds, truncated recordings, a full vault disk."""

import errno
import json
import subprocess

import pytest
from conftest import designate, read_jsonl
from test_vault_media import make_segments
from vault_support import CAMERA, START, Clock, make_spool

from drivers.signer import FileSigner
from recorder.errors import VaultError
from recorder.evidence.age import generate_identity
from recorder.evidence.spool import Spool
from tools.vault import spool_read
from tools.vault.extract import Request, extract
from tools.vault.ingest import ingest
from tools.vault.retention import hold, purge, release
from tools.vault.vault import Vault, init_vault

DAY = 86400


@pytest.fixture
def setup(tmp_path):
    identity, recipient = generate_identity()
    (tmp_path / "police").mkdir()
    clock = Clock(START + 3600)
    init_vault(tmp_path / "vault", [recipient], tmp_path / "police" / "register.jsonl", clock=clock)
    vault = Vault.open(tmp_path / "vault", clock=clock)
    yield vault, identity, recipient, clock
    vault.close()


def events(vault):
    return read_jsonl(vault.layout.journal)


def test_purge_erases_after_retention_except_held_and_journals_it(tmp_path, setup):
    vault, identity, recipient, clock = setup
    spool_dir, signer = make_spool(tmp_path, [recipient], recordings=2, segments=1)
    vault.enrol(CAMERA, signer.public_key_hex)
    first, second = ingest(vault, spool_dir, progress=False).stored
    assert purge(vault).erased == []
    hold(vault, second, "PV 2026/117")
    with pytest.raises(VaultError, match="already held"):
        hold(vault, second, "PV 2026/117")
    clock.t = START + 31 * DAY
    report = purge(vault)
    assert report.erased == [first] and report.held == [(second, ["PV 2026/117"])]
    assert not vault.layout.recording(CAMERA, first).exists()
    assert vault.layout.recording(CAMERA, second).is_dir()
    erased = [e for e in events(vault) if e["event"] == "recording-erased"]
    assert erased[0]["recording"] == first and erased[0]["dated_by"] == "own start"
    assert erased[0]["rule"].startswith("R241-13") and erased[0]["retention_end"] == "2026-12-18T23:00:00.000Z"
    with pytest.raises(VaultError, match="erased"):
        extract(vault, Request([first], "judicial", "R", "D", tmp_path / "x.mp4"), [identity])
    release(vault, second, "PV 2026/117")
    assert purge(vault).erased == [second]
    assert [e["event"] for e in events(vault)].count("release") == 1
    from tools.vault.audit import audit
    assert audit(vault).ok, audit(vault).problems


def test_quarantine_is_erased_after_the_same_retention(tmp_path, setup):
    vault, identity, recipient, clock = setup
    spool_dir, signer = make_spool(tmp_path, [recipient], recordings=1, segments=1)
    report = ingest(vault, spool_dir, progress=False)  # camera not enrolled
    folder = vault.layout.root / vault.index.quarantined()[0][0]
    assert report.quarantined and folder.is_dir()
    assert purge(vault, clock.t + 29 * DAY).quarantine_erased == []
    assert purge(vault, clock.t + 31 * DAY).quarantine_erased == [str(folder.relative_to(vault.layout.root))]
    assert not folder.exists() and "quarantine-erased" in [e["event"] for e in events(vault)]


def test_unsynchronised_clock_counts_from_ingest(tmp_path, setup):
    vault, identity, recipient, clock = setup
    # The camera believed it was 1970 + a bit: its time cannot be trusted.
    spool_dir, signer = make_spool(tmp_path, [recipient], recordings=1, segments=1,
                                   clock_source="unsynchronised", start=100000.0)
    vault.enrol(CAMERA, signer.public_key_hex)
    rid = ingest(vault, spool_dir, progress=False).stored[0]
    assert vault.index.recording(rid).retention_base == clock.t
    assert purge(vault, clock.t + 30 * DAY).erased == []   # the end of the same day a month later
    assert purge(vault, clock.t + 31 * DAY).erased == [rid]
    assert [e for e in events(vault) if e["event"] == "recording-erased"][0]["dated_by"].startswith("ingest")


def test_truncated_recording_is_accepted_and_exported_to_its_last_good_frame(tmp_path, setup):
    vault, identity, recipient, clock = setup
    signer = FileSigner.create(tmp_path / "k" / "device-signing.key")
    spool_dir = tmp_path / "spool"
    wall = Clock(START)
    media = make_segments(3)
    spool = Spool(spool_dir, signer, [recipient], CAMERA, "0" * 64, False, wall_clock=wall)
    spool.recover()
    rec = spool.open_recording(wall.t, "agent", {"clock_source": "gps"})
    seg = rec.open_segment()
    seg.write(media[0])
    seg.seal()
    seg = rec.open_segment()
    seg.write(media[1] + media[2])  # 100 KiB: one whole 64 KiB chunk becomes durable
    seg.sync()
    spool.close()  # power cut: no seal, no close
    with Spool(spool_dir, signer, [recipient], CAMERA, "0" * 64, False, wall_clock=wall) as again:
        again.recover()
    vault.enrol(CAMERA, signer.public_key_hex)
    report = ingest(vault, spool_dir, progress=False)
    assert report.ok and len(report.stored) == 1
    rid = report.stored[0]
    assert vault.index.recording(rid).truncated
    result = extract(vault, Request([rid], "judicial", "R", "D", tmp_path / "t.mp4"), [identity])
    assert result.report["truncated"] and "seg-000002.ts.age.part" in result.report["truncated"]
    assert 4.0 < result.report["mp4"]["duration_s"] < 5.0  # 2 s sealed + 64 KiB of the next 100 KiB
    subprocess.run(["ffprobe", "-v", "error", str(tmp_path / "t.mp4")], check=True)


def test_full_vault_disk_loses_nothing(tmp_path, setup, monkeypatch):
    vault, identity, recipient, clock = setup
    spool_dir, signer = make_spool(tmp_path, [recipient], recordings=2, segments=1)
    vault.enrol(CAMERA, signer.public_key_hex)
    real = spool_read._copy_one
    calls = {"n": 0}

    def copy(dfd, name, dst, where):
        calls["n"] += 1
        if calls["n"] > 4:  # 4 files a recording: the second recording's files do not fit
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real(dfd, name, dst, where)

    monkeypatch.setattr(spool_read, "_copy_one", copy)
    report = ingest(vault, spool_dir, progress=False)
    assert len(report.stored) == 1 and report.failed and "disk is full" in report.failed[0][1]
    receipt = json.loads(report.receipt.read_text())
    assert [r["id"] for r in receipt["recordings"]] == report.stored  # the camera keeps the other
    assert not list(vault.layout.incoming.iterdir())
    monkeypatch.setattr(spool_read, "_copy_one", real)
    assert len(ingest(vault, spool_dir, progress=False).stored) == 1


def test_logs_pruned_after_three_years_leave_a_signed_checkpoint(tmp_path, setup):
    from tools.vault.audit import audit
    from tools.vault.logs import checkpoint_path
    vault, identity, recipient, clock = setup
    spool_dir, signer = make_spool(tmp_path, [recipient], recordings=1, segments=1)
    vault.enrol(CAMERA, signer.public_key_hex)
    rid = ingest(vault, spool_dir, progress=False).stored[0]
    hold(vault, rid, "PV 1")  # kept, so the old extraction stays possible
    extract(vault, Request([rid], "judicial", "R", "D", tmp_path / "old.mp4"), [identity])
    before = len(events(vault))
    clock.t += 3 * 365 * DAY + 2 * DAY
    extract(vault, Request([rid], "disciplinary", "R", "D", tmp_path / "new.mp4"), [identity])
    report = purge(vault)
    assert {cp["log"] for cp in report.pruned} == {"journal.jsonl", "register.jsonl"}
    kept = events(vault)
    assert kept[0]["seq"] == before and kept[-1]["event"] == "logs-pruned"
    assert checkpoint_path(vault.layout.journal).is_file()
    assert audit(vault).ok, audit(vault).problems
    register = tmp_path / "police" / "register.jsonl"
    assert [x["purpose"] for x in read_jsonl(register)] == ["disciplinary"]
    # A line removed after the checkpoint still shows.
    lines = vault.layout.journal.read_bytes().splitlines(keepends=True)
    vault.layout.journal.write_bytes(b"".join(lines[:1] + lines[2:]))
    assert any("does not link" in p for p in audit(vault).problems)


def test_cli_hold_purge_release(tmp_path, capsys, monkeypatch):
    from tools.cli import main
    identity, recipient = generate_identity()
    (tmp_path / "police").mkdir()
    v = str(tmp_path / "vault")
    assert main(["vault", "init", v, "--recipient", recipient, "--register", str(tmp_path / "police" / "r")]) == 0
    (tmp_path / "chief.key").write_text(identity + "\n")
    designate(v, tmp_path / "chief.key", recipient, monkeypatch)
    spool_dir, signer = make_spool(tmp_path, [recipient], recordings=2, segments=1, start=START)
    assert main(["vault", "authorise", v, "--arrete", "TEST-1", "--date", "01/01/2026", "--cameras", "5",
                 "--communes", "71014"]) == 0
    assert main(["vault", "enrol", v, "--camera", CAMERA, "--key", signer.public_key_hex]) == 0
    assert main(["vault", "ingest", v, "--from", str(spool_dir), "--no-progress"]) == 0
    first, second = sorted(p.name for p in spool_dir.iterdir() if p.name.startswith(CAMERA))
    assert main(["vault", "hold", v, second, "--procedure", "PV 2026/42"]) == 0
    assert main(["vault", "hold", v, "nope", "--procedure", "X"]) == 2
    assert main(["vault", "purge", v, "--now", "18/12/2026 23:59"]) == 0  # made on 18 November, Paris
    out = capsys.readouterr().out
    assert "0 erased" in out and f"next   {first} kept until 2026-12-19 00:00:00 CET" in out
    assert main(["vault", "purge", v, "--now", "19/12/2026 00:00"]) == 0
    out = capsys.readouterr().out
    assert f"erased {first} (retention ended 2026-12-19 00:00:00 CET)" in out
    assert f"kept   {second}: held for PV 2026/42 (retention ended 2026-12-19 00:00:00 CET)" in out
    assert main(["vault", "release", v, second, "--procedure", "PV 2026/42"]) == 0
    assert main(["vault", "release", v, second, "--procedure", "PV 2026/42"]) == 2
    assert main(["vault", "verify", v]) == 0


def test_consultation_decrypts_to_a_private_place_removed_afterwards(tmp_path, setup):
    import os
    import stat

    from tools.vault.extract import consult
    vault, identity, recipient, clock = setup
    spool_dir, signer = make_spool(tmp_path, [recipient], recordings=1, segments=2)
    vault.enrol(CAMERA, signer.public_key_hex)
    rid = ingest(vault, spool_dir, progress=False).stored[0]
    seen = {}

    def player(path):
        seen["path"] = path
        seen["mode"] = stat.S_IMODE(os.stat(path.parent).st_mode)
        seen["size"] = path.stat().st_size

    result = consult(vault, rid, "administrative", "Maire", [identity], play=player)
    assert result["played"] and seen["size"] > 0 and seen["mode"] == 0o700
    assert not seen["path"].exists() and not seen["path"].parent.exists()
    entry = events(vault)[-1]
    assert entry["event"] == "consultation" and entry["purpose"] == "administrative"
    with pytest.raises(VaultError, match="must be one of"):
        consult(vault, rid, "curiosity", "X", [identity], play=player)
