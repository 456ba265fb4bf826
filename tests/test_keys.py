"""`pieton keys chief/technician`, `pieton provision`, and reading identity files."""

import json
import os
import stat

import pytest

from drivers.signer import KEY_FILE, FileSigner, verify_signature
from recorder.errors import AgeError
from recorder.evidence.age import (
    decrypt,
    encrypt_bytes,
    encrypt_with_passphrase,
    format_recipient,
    generate_identity,
    identity_to_recipient,
    load_identities,
    parse_recipient,
)
from tools.cli import main as pieton


def test_chief_without_passphrase_only_for_test_fixtures(tmp_path, capsys, monkeypatch):
    out = tmp_path / "chief.txt"
    with pytest.raises(SystemExit):       # no such flag any more
        pieton(["keys", "chief", "--out", str(out), "--no-passphrase"])
    assert not out.exists()
    monkeypatch.setenv("PIETON_UNPROTECTED_IDENTITY", "test-fixture-only")
    assert pieton(["keys", "chief", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    recipient = captured.out.strip()
    assert "left in clear, for test fixtures only" in captured.err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text()
    assert f"# public key: {recipient}" in text
    [identity] = load_identities(out)
    assert identity_to_recipient(identity) == recipient
    assert decrypt(encrypt_bytes(b"x", [recipient]), [identity]).plaintext == b"x"


def test_chief_with_passphrase_from_env(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PIETON_PASSPHRASE", "une phrase secrète")
    out = tmp_path / "chief.age"
    assert pieton(["keys", "chief", "--out", str(out), "--work-factor", "10"]) == 0
    recipient = capsys.readouterr().out.strip()
    data = out.read_bytes()
    assert data.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----") and b"AGE-SECRET" not in data
    assert identity_to_recipient(load_identities(out, "une phrase secrète")[0]) == recipient
    with pytest.raises(AgeError, match="wrong passphrase"):
        load_identities(out, "une autre phrase")
    with pytest.raises(AgeError, match="protected by a passphrase"):
        load_identities(out)


def test_chief_refuses_to_overwrite_and_needs_a_passphrase(tmp_path, capsys, monkeypatch):
    out = tmp_path / "chief.txt"
    out.write_text("precious")
    monkeypatch.setenv("PIETON_UNPROTECTED_IDENTITY", "test-fixture-only")
    assert pieton(["keys", "chief", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == "precious"
    monkeypatch.delenv("PIETON_PASSPHRASE", raising=False)
    monkeypatch.delenv("PIETON_UNPROTECTED_IDENTITY")
    monkeypatch.setattr("sys.stdin", open(os.devnull))
    assert pieton(["keys", "chief", "--out", str(tmp_path / "new.age")]) == 2
    assert "PIETON_PASSPHRASE" in capsys.readouterr().err
    assert not (tmp_path / "new.age").exists()


def test_technician_key_signs(tmp_path, capsys):
    out = tmp_path / "tech.key"
    assert pieton(["keys", "technician", "--out", str(out)]) == 0
    public = bytes.fromhex(capsys.readouterr().out.strip())
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    signer = FileSigner(out)
    assert signer.public_key == public
    assert verify_signature(public, signer.sign(b"bundle"), b"bundle")
    assert pieton(["keys", "technician", "--out", str(out)]) == 2


def test_provision_creates_device_key_outside_the_spool(tmp_path, capsys):
    state = tmp_path / "state"
    assert pieton(["provision", "--state-dir", str(state), "--camera-id", "CAM-AUT-07", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    key = state / "keys" / KEY_FILE
    assert printed["camera_id"] == "CAM-AUT-07"
    assert printed["public_key"] == FileSigner(key).public_key_hex
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((state / "keys").stat().st_mode) == 0o700
    assert not (state / "spool").exists() or key not in (state / "spool").rglob("*")
    before = key.read_bytes()
    assert pieton(["provision", "--state-dir", str(state), "--camera-id", "CAM-AUT-07"]) == 2
    err = capsys.readouterr().err
    assert "never overwritten" in err and printed["public_key"] in err
    assert key.read_bytes() == before


def test_provision_rejects_bad_camera_id(tmp_path, capsys):
    assert pieton(["provision", "--state-dir", str(tmp_path), "--camera-id", "cam 7/../x"]) == 2
    assert "--camera-id" in capsys.readouterr().err
    assert not (tmp_path / "keys").exists()
    # The id is matched whole: a trailing newline would end up in the camera-id file.
    assert pieton(["provision", "--state-dir", str(tmp_path), "--camera-id", "CAM-1\n"]) == 2
    assert not (tmp_path / "keys").exists()


def test_identity_file_errors_are_clear(tmp_path):
    garbage = tmp_path / "notes.txt"
    garbage.write_text("# my keys\nhello world\n")
    with pytest.raises(AgeError, match="notes.txt line 2 is not an age identity"):
        load_identities(garbage)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(AgeError, match="contains no age identity"):
        load_identities(empty)
    with pytest.raises(AgeError, match="no such file"):
        load_identities(tmp_path / "missing")
    ident, _ = generate_identity()
    broken = tmp_path / "broken.txt"
    broken.write_text(ident[:-1] + ("Q" if ident[-1] != "Q" else "P") + "\n")
    with pytest.raises(AgeError, match="line 1") as info:
        load_identities(broken)
    assert ident[20:] not in str(info.value)          # secrets are never echoed
    to_a_key = tmp_path / "to-a-key.age"
    to_a_key.write_bytes(encrypt_bytes(ident.encode(), [generate_identity()[1]]))
    with pytest.raises(AgeError, match="encrypted to a key, not with a passphrase"):
        load_identities(to_a_key, "x")


def test_identity_file_unarmored_and_several_keys(tmp_path):
    a, b = generate_identity(), generate_identity()
    plain = f"# chief\n{a[0]}\n\n# deputy\n{b[0]}\n".encode()
    path = tmp_path / "both.age"
    path.write_bytes(encrypt_with_passphrase(plain, "pw", work_factor=10, armored=False))
    assert load_identities(path, b"pw") == [a[0], b[0]]


def test_recipient_parsing():
    ident, rec = generate_identity()
    assert format_recipient(parse_recipient(rec)) == rec
    assert parse_recipient(rec.upper()) == parse_recipient(rec)
    for bad in ["age1qqqq", rec[:-1] + ("q" if rec[-1] != "q" else "p"), "age2" + rec[4:], rec[:10] + rec[10:].upper()]:
        with pytest.raises(AgeError, match="not an age recipient") as info:
            parse_recipient(bad)
        assert repr(bad) in str(info.value)
    with pytest.raises(AgeError, match="secret identity") as info:
        parse_recipient(ident)
    assert ident not in str(info.value)


@pytest.mark.parametrize("passphrase, why", [
    ("court-pass", "10 characters; at least 12"),
    ("aaaaaaaaaaaaaa", "too easy to guess"),
    ("azertyuiop123", "too easy to guess"),
    ("password1234", "too easy to guess"),
])
def test_chief_passphrase_must_be_strong(tmp_path, capsys, monkeypatch, passphrase, why):
    monkeypatch.setenv("PIETON_PASSPHRASE", passphrase)
    out = tmp_path / "chief.age"
    assert pieton(["keys", "chief", "--out", str(out), "--work-factor", "10"]) == 2
    assert why in capsys.readouterr().err
    assert not out.exists()
