"""`pieton vault mirror`: a verified, incremental copy on another medium, purged the same
day as the vault, checked by `pieton vault verify`."""

import json
import shutil

import pytest
from conftest import read_jsonl
from vault_support import CAMERA, START, Clock, make_spool

from recorder.errors import VaultError
from recorder.evidence.age import generate_identity
from recorder.evidence.spool import Spool
from tools.cli import main
from tools.vault.audit import audit
from tools.vault.ingest import ingest
from tools.vault.mirror import MIRRORS, mirror
from tools.vault.retention import hold, purge
from tools.vault.vault import Vault, init_vault

DAY = 86400


@pytest.fixture
def setup(tmp_path):
    identity, recipient = generate_identity()
    (tmp_path / "police").mkdir()
    (tmp_path / "second-disk").mkdir()
    clock = Clock(START + 3600)
    init_vault(tmp_path / "vault", [recipient], tmp_path / "police" / "register.jsonl", clock=clock)
    vault = Vault.open(tmp_path / "vault", clock=clock)
    yield vault, recipient, clock, tmp_path / "second-disk"
    vault.close()


def _stored(tmp_path, vault, recipient, recordings=2):
    spool_dir, signer = make_spool(tmp_path, [recipient], recordings=recordings, segments=1)
    vault.enrol(CAMERA, signer.public_key_hex)
    return spool_dir, signer, ingest(vault, spool_dir, progress=False).stored


def test_mirror_copies_verified_recordings_and_logs_incrementally(tmp_path, setup):
    vault, recipient, clock, dest = setup
    spool_dir, signer, stored = _stored(tmp_path, vault, recipient)
    report = mirror(vault, dest)
    assert report.ok and sorted(report.copied) == sorted(stored)
    for rid in stored:
        src = vault.layout.recording(CAMERA, rid)
        for f in src.iterdir():
            assert (dest / "recordings" / CAMERA / rid / f.name).read_bytes() == f.read_bytes()
    for name in ("journal.jsonl", "register.jsonl", "vault.json", "index.sqlite", "keys/vault.pub",
                 f"device-journals/{CAMERA}/journal.jsonl"):
        assert (dest / name).is_file(), name
    assert not (dest / "incoming").exists() or not list((dest / "incoming").iterdir())
    again = mirror(vault, dest)
    assert again.copied == [] and sorted(again.already) == sorted(stored) and again.bytes_copied == 0
    # A new recording: only it is copied.
    with Spool(spool_dir, signer, [recipient], CAMERA, "0" * 64, False, wall_clock=lambda: START + 5000) as spool:
        spool.recover()
        rec = spool.open_recording(START + 5000, "agent", {"clock_source": "gps"})
        seg = rec.open_segment()
        seg.write(b"\x47" + b"\0" * 187)
        seg.seal()
        rec.close("agent stop")
    new = ingest(vault, spool_dir, progress=False).stored
    assert mirror(vault, dest).copied == new
    assert audit(vault).ok
    assert read_jsonl(vault.layout.journal)[-1]["event"] == "mirrored"


def test_verify_finds_an_altered_mirror_copy(tmp_path, setup):
    vault, recipient, clock, dest = setup
    _spool, _signer, stored = _stored(tmp_path, vault, recipient, recordings=1)
    mirror(vault, dest)
    segment = next((dest / "recordings" / CAMERA / stored[0]).glob("*.ts.age"))
    data = bytearray(segment.read_bytes())
    data[100] ^= 1
    segment.write_bytes(bytes(data))
    problems = audit(vault).problems
    assert any(f"mirror {dest}" in p and stored[0] in p for p in problems)
    # A mirror run trusts copies of the same size; asked to recheck, it replaces the bad one.
    assert mirror(vault, dest).copied == []
    assert mirror(vault, dest, recheck=True).copied == stored and audit(vault).ok


def test_the_mirror_is_purged_the_same_day_as_the_vault(tmp_path, setup):
    vault, recipient, clock, dest = setup
    _spool, _signer, (first, second) = _stored(tmp_path, vault, recipient)
    hold(vault, second, "PV 12")
    mirror(vault, dest)
    clock.t = START + 31 * DAY
    report = purge(vault)
    assert report.erased == [first] and report.mirror_erased == [f"{dest}: {first}"]
    assert not (dest / "recordings" / CAMERA / first).exists()
    assert (dest / "recordings" / CAMERA / second).is_dir()  # held: kept on both
    assert any(e["event"] == "mirror-erased" and e["recording"] == first for e in read_jsonl(vault.layout.journal))
    assert audit(vault).ok


def test_an_unplugged_mirror_is_said_and_purged_when_it_comes_back(tmp_path, setup, capsys):
    vault, recipient, clock, dest = setup
    _spool, _signer, stored = _stored(tmp_path, vault, recipient, recordings=1)
    mirror(vault, dest)
    away = tmp_path / "unplugged"
    shutil.move(dest, away)
    clock.t = START + 31 * DAY
    report = purge(vault)
    assert report.erased == stored and report.mirrors_unreachable == [str(dest)]
    assert any("not reachable" in p for p in audit(vault).problems)
    shutil.move(away, dest)
    assert any("no longer stored in the vault" in p for p in audit(vault).problems)
    assert mirror(vault, dest).erased == stored
    assert not list((dest / "recordings" / CAMERA).iterdir()) and audit(vault).ok


def test_mirror_refuses_a_place_that_is_not_its_own(tmp_path, setup):
    vault, recipient, clock, dest = setup
    with pytest.raises(VaultError, match="inside the vault"):
        mirror(vault, vault.layout.root / "mirror")
    with pytest.raises(VaultError, match="inside the vault"):
        mirror(vault, tmp_path)  # the folder holding the vault
    (dest / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(VaultError, match="not empty and not a mirror"):
        mirror(vault, dest)
    other = tmp_path / "other"
    other.mkdir()
    mirror(vault, other)
    data = json.loads((other / "mirror.json").read_text())
    data["vault_key"] = "00" * 32
    (other / "mirror.json").write_text(json.dumps(data))
    with pytest.raises(VaultError, match="another vault"):
        mirror(vault, other)
    assert json.loads((vault.layout.root / MIRRORS).read_text())["mirrors"] == [str(other)]


def test_cli_mirror(tmp_path, setup, capsys):
    vault, recipient, clock, dest = setup
    _spool, _signer, stored = _stored(tmp_path, vault, recipient, recordings=1)
    vault.close()
    assert main(["vault", "mirror", str(vault.layout.root), str(dest)]) == 0
    out = capsys.readouterr().out
    assert f"mirrored     {stored[0]}" in out and "1 copied and verified" in out
    assert main(["vault", "verify", str(vault.layout.root)]) == 0
    assert main(["vault", "mirror", str(vault.layout.root), str(vault.layout.root / "m")]) == 2


def test_a_link_in_the_mirror_is_not_followed(tmp_path, setup):
    vault, recipient, clock, dest = setup
    _spool, _signer, stored = _stored(tmp_path, vault, recipient, recordings=1)
    mirror(vault, dest)
    elsewhere = tmp_path / "precious"
    (elsewhere / "keep-me").mkdir(parents=True)
    shutil.rmtree(dest / "recordings" / CAMERA)
    (dest / "recordings" / CAMERA).symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(VaultError, match="symbolic link"):
        mirror(vault, dest)
    assert (elsewhere / "keep-me").is_dir()
