"""Interoperability with the real age implementations, both ways: Debian's `age` CLI
(Go) and pyrage (the Rust crate). age asks for passphrases on /dev/tty only (it does not
read them from a pipe), so those tests give it a pseudo-terminal."""

import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyrage
import pytest

from recorder.evidence.age import (
    CHUNK_SIZE,
    AgeWriter,
    decrypt,
    encrypt_bytes,
    encrypt_with_passphrase,
    generate_identity,
    identity_to_recipient,
    load_identities,
)
from tools.cli import main as pieton

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("age") is None, reason="the age CLI is not installed")]

SIZES = [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3_000_000]


def run_on_tty(argv, answers, timeout=30.0, cwd=None):
    """Run argv with a pseudo-terminal as its controlling terminal; type each answer
    when a passphrase prompt shows. Returns (exit code, terminal output)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            if cwd:
                os.chdir(cwd)
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    output, seen, answers = b"", 0, list(answers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:      # EIO: the child has gone
            break
        if not chunk:
            break
        output += chunk
        if answers and b"assphrase" in output[seen:] and output.rstrip().endswith(b":"):
            seen = len(output)
            os.write(fd, answers.pop(0).encode() + b"\n")
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


@pytest.fixture(scope="module")
def chief(tmp_path_factory):
    """An identity made by age-keygen, the reference tool."""
    path = tmp_path_factory.mktemp("keys") / "chief.txt"
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", str(path)], check=True, capture_output=True,
                               text=True).stdout.strip()
    return path, recipient


def test_our_keys_match_age_keygen(chief):
    path, recipient = chief
    identities = load_identities(path)
    assert len(identities) == 1 and identity_to_recipient(identities[0]) == recipient
    ours, our_recipient = generate_identity()
    keyfile = path.parent / "ours.txt"
    keyfile.write_text(ours + "\n")
    assert subprocess.run(["age-keygen", "-y", str(keyfile)], check=True, capture_output=True,
                          text=True).stdout.strip() == our_recipient


@pytest.mark.parametrize("size", SIZES)
def test_age_cli_decrypts_ours(chief, tmp_path, size):
    path, recipient = chief
    data = os.urandom(size)
    (tmp_path / "seg.age").write_bytes(encrypt_bytes(data, [recipient]))
    out = subprocess.run(["age", "-d", "-i", str(path), str(tmp_path / "seg.age")], capture_output=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == data


@pytest.mark.parametrize("size", SIZES)
def test_we_decrypt_age_cli(chief, tmp_path, size):
    path, recipient = chief
    data = os.urandom(size)
    (tmp_path / "plain").write_bytes(data)
    subprocess.run(["age", "-r", recipient, "-o", str(tmp_path / "f.age"), str(tmp_path / "plain")], check=True)
    result = decrypt(tmp_path / "f.age", load_identities(path))
    assert result.complete and result.plaintext == data


def test_we_decrypt_age_cli_armored(chief, tmp_path):
    path, recipient = chief
    out = subprocess.run(["age", "-a", "-r", recipient], input=b"armored text", capture_output=True, check=True)
    assert out.stdout.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    assert decrypt(out.stdout, load_identities(path)).plaintext == b"armored text"


def test_chief_and_deputy_with_age_cli(tmp_path):
    keys = []
    for who in ("chief", "deputy"):
        ident, rec = generate_identity()
        (tmp_path / who).write_text(ident + "\n")
        keys.append((tmp_path / who, ident, rec))
    data = os.urandom(200_000)
    # ours, to both: the age CLI opens it with either identity
    (tmp_path / "ours.age").write_bytes(encrypt_bytes(data, [k[2] for k in keys]))
    for keyfile, _, _ in keys:
        out = subprocess.run(["age", "-d", "-i", str(keyfile), str(tmp_path / "ours.age")], capture_output=True)
        assert out.returncode == 0 and out.stdout == data
    # the age CLI's, to both: we open it with either identity
    theirs = subprocess.run(["age", "-r", keys[0][2], "-r", keys[1][2]], input=data,
                            capture_output=True, check=True).stdout
    for _, ident, _ in keys:
        assert decrypt(theirs, [ident]).plaintext == data


def test_incremental_file_decrypts_with_age_cli(chief, tmp_path):
    path, recipient = chief
    data = os.urandom(1_000_000)
    seg = tmp_path / "seg.ts.age"
    with open(seg, "wb") as f:
        writer = AgeWriter(f, [recipient], sync_interval=0.0)
        for i in range(0, len(data), 1316):     # TS-sized writes, fsync at each
            writer.write(data[i:i + 1316])
        writer.close()
    out = subprocess.run(["age", "-d", "-i", str(path), str(seg)], capture_output=True)
    assert out.returncode == 0 and out.stdout == data


@pytest.mark.parametrize("size", SIZES)
def test_pyrage_both_ways(size):
    data = os.urandom(size)
    ident, rec = generate_identity()
    their_ident = pyrage.x25519.Identity.from_str(ident)
    assert pyrage.decrypt(encrypt_bytes(data, [rec]), [their_ident]) == data
    theirs = pyrage.encrypt(data, [pyrage.x25519.Recipient.from_str(rec)])
    result = decrypt(theirs, [ident])
    assert result.complete and result.plaintext == data


def test_pyrage_identity_and_passphrase():
    their = pyrage.x25519.Identity.generate()
    assert identity_to_recipient(str(their)) == str(their.to_public())
    # (pyrage's own passphrase files take seconds of scrypt; `age -p` covers that direction)
    ours = encrypt_with_passphrase(b"both ways", "hunter2", work_factor=10, armored=False)
    assert pyrage.passphrase.decrypt(ours, "hunter2") == b"both ways"


def test_age_cli_reads_chief_identity_from_pieton_keys(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PIETON_PASSPHRASE", "correct horse")
    keyfile = tmp_path / "chief.age"
    assert pieton(["keys", "chief", "--out", str(keyfile), "--work-factor", "12"]) == 0
    recipient = capsys.readouterr().out.strip()
    assert recipient.startswith("age1")
    assert b"AGE-SECRET-KEY" not in keyfile.read_bytes()
    data = os.urandom(70_000)
    (tmp_path / "seg.age").write_bytes(encrypt_bytes(data, [recipient]))
    code, screen = run_on_tty(["age", "-d", "-i", str(keyfile), "-o", str(tmp_path / "out"),
                               str(tmp_path / "seg.age")], ["correct horse"])
    assert code == 0, screen
    assert (tmp_path / "out").read_bytes() == data
    code, screen = run_on_tty(["age", "-d", "-i", str(keyfile), "-o", str(tmp_path / "out2"),
                               str(tmp_path / "seg.age")], ["wrong"])
    assert code != 0 and "incorrect passphrase" in screen
    # and our own loader reads it
    assert identity_to_recipient(load_identities(keyfile, "correct horse")[0]) == recipient


def test_we_read_identity_protected_by_age_p(chief, tmp_path):
    path, recipient = chief
    protected = tmp_path / "chief.age"
    code, screen = run_on_tty(["age", "-p", "-a", "-o", str(protected), str(path)],
                              ["s3cret pass", "s3cret pass"])
    assert code == 0, screen
    assert protected.read_bytes().startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    identities = load_identities(protected, lambda: "s3cret pass")
    assert identity_to_recipient(identities[0]) == recipient


def test_pieton_keys_chief_prompts_twice_on_the_terminal(tmp_path):
    env_free = [sys.executable, "-c", "import os, sys; os.environ.pop('PIETON_PASSPHRASE', None); "
                "from tools.cli import main; sys.exit(main(sys.argv[1:]))"]
    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "chief.age"
    code, screen = run_on_tty(env_free + ["keys", "chief", "--out", str(out), "--work-factor", "10"],
                              ["first try", "second try"], cwd=root)
    assert code == 2 and "the two passphrases differ" in screen and not out.exists()
    code, screen = run_on_tty(env_free + ["keys", "chief", "--out", str(out), "--work-factor", "10"],
                              ["same phrase twice", "same phrase twice"], cwd=root)
    assert code == 0, screen
    recipient = screen.strip().splitlines()[-1]
    assert identity_to_recipient(load_identities(out, "same phrase twice")[0]) == recipient
