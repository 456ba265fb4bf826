"""`pieton desk VAULT`: its arguments, and the real command serving on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from recorder.evidence.age import encrypt_with_passphrase, generate_identity
from tools.cli import main as pieton
from tools.vault.vault import init_vault


@pytest.fixture
def vault(tmp_path):
    identity, recipient = generate_identity()
    (tmp_path / "police").mkdir()
    (tmp_path / "exports").mkdir()
    init_vault(tmp_path / "vault", [recipient], tmp_path / "police" / "register.jsonl")
    protected = tmp_path / "chief.age"
    protected.write_bytes(encrypt_with_passphrase(identity.encode(), "cheval agrafe batterie correcte",
                                                  work_factor=10))
    clear = tmp_path / "clear.identity"
    clear.write_text(identity + "\n")
    return tmp_path


def args(root, *more, person=None):
    return ["desk", str(root / "vault"), "--exports", str(root / "exports"),
            "--person", person or f"Chef Martin={root / 'chief.age'}", *more]


@pytest.mark.parametrize("more, message", [
    (["--host", "0.0.0.0"], "--host 0.0.0.0: the desk listens on 127.0.0.1 only"),
    (["--host", "192.168.1.20"], "needs --tls-cert and --tls-key"),
    (["--host", "0.0.0.0", "--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"], "file not found"),
    (["--tls-cert", "/etc/hostname"], "go together"),
    (["--port", "0"], "--port 0"),
    (["--idle-minutes", "0"], "--idle-minutes 0"),
    (["--timezone", "Mars/Olympus"], "unknown time zone"),
])
def test_bad_arguments_are_refused_with_exit_2(vault, capsys, more, message):
    assert pieton(args(vault, *more)) == 2
    assert message in capsys.readouterr().err


def test_an_identity_in_clear_or_a_bad_person_is_refused(vault, capsys):
    assert pieton(args(vault, person=f"Chef={vault / 'clear.identity'}")) == 2
    assert "not protected by a passphrase" in capsys.readouterr().err
    assert pieton(args(vault, person=str(vault / "chief.age"))) == 2
    assert "write NAME=IDENTITY_FILE" in capsys.readouterr().err


def test_the_exports_folder_must_be_outside_the_vault(vault, capsys):
    argv = args(vault)
    argv[argv.index("--exports") + 1] = str(vault / "vault")
    assert pieton(argv) == 2
    assert "must be outside the vault" in capsys.readouterr().err


def test_pieton_desk_serves_the_sign_in_page_on_loopback(vault):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "tools.cli", *args(vault, "--port", str(port))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/connexion", timeout=5) as response:
                    page = response.read().decode()
                    headers = response.headers
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "the desk did not start"
                time.sleep(0.2)
        assert "Phrase secrète" in page and 'lang="fr"' in page
        assert headers["Cache-Control"] == "no-store"
        assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=strict" in headers["Set-Cookie"]
        # Nothing served from elsewhere: every stylesheet and link is the desk's own.
        assert "http://" not in page.replace(f"http://127.0.0.1:{port}", "") and "https://" not in page
        # Another Host name (DNS rebinding) is refused.
        request = urllib.request.Request(f"http://127.0.0.1:{port}/connexion", headers={"Host": "evil.example"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 400
    finally:
        proc.terminate()
        proc.wait(10)


def test_another_address_is_accepted_with_a_tls_certificate_and_key(vault):
    import argparse
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from tools.desk.cli import build_config, register
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "desk.police.local")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (vault / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (vault / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                      serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    parsed = parser.parse_args(args(vault, "--host", "192.168.1.20", "--tls-cert", str(vault / "cert.pem"),
                                    "--tls-key", str(vault / "key.pem")))
    config = build_config(parsed)
    assert config.secure and config.hosts == ["192.168.1.20"]
