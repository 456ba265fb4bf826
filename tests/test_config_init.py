"""`pieton config init DIR`: the default configuration with every file it references, so a
copy elsewhere checks as it is; a lone copy's not-found error says so."""

import shutil

from recorder.config import DEFAULT_CONFIG
from tools.cli import main as pieton


def test_init_copies_the_configuration_with_its_files(tmp_path, capsys):
    target = tmp_path / "cfg"
    assert pieton(["config", "init", str(target)]) == 0
    assert (target / "pieton.toml").read_bytes() == DEFAULT_CONFIG.read_bytes()
    assert (target / "notice-fr.wav").is_file() and (target / "communes" / "autun.geojson").is_file()
    capsys.readouterr()
    assert pieton(["config", "check", str(target / "pieton.toml")]) == 0
    assert capsys.readouterr().out.startswith("OK")


def test_init_never_writes_over_a_folder_in_use(tmp_path, capsys):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "pieton.toml").write_text("mine")
    assert pieton(["config", "init", str(tmp_path / "cfg")]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert (tmp_path / "cfg" / "pieton.toml").read_text() == "mine"


def test_a_lone_copy_is_told_about_init(tmp_path, capsys):
    shutil.copyfile(DEFAULT_CONFIG, tmp_path / "pieton.toml")
    assert pieton(["config", "check", str(tmp_path / "pieton.toml")]) == 2
    err = capsys.readouterr().err
    assert "notice-fr.wav not found" in err and "pieton config init DIR" in err


def test_init_writes_the_trust_anchor_and_recipients(tmp_path, capsys):
    from recorder.bundle import load_technician_key, public_hex
    from recorder.config import load_config
    from recorder.evidence.age import generate_identity
    assert pieton(["keys", "technician", "--out", str(tmp_path / "tech.key")]) == 0
    _identity, recipient = generate_identity()
    target = tmp_path / "cfg"
    assert pieton(["config", "init", str(target), "--technician-key", str(tmp_path / "tech.key"),
                   "--recipient", recipient, "--vault-key", "ab" * 32, "--device",
                   "--arrete", "2026-DSC-0412", "--commune", "71014", "--until", "2031-06-30"]) == 0
    keys = load_config(target / "pieton.toml").keys
    assert list(keys.technicians) == [public_hex(load_technician_key(tmp_path / "tech.key"))]
    assert list(keys.recipients) == [recipient] and keys.vault == "ab" * 32
    assert load_config(target / "pieton.toml").drivers.camera == "picamera2"
    # a whole device configuration: it signs, and its bundle trusts its own signer, as a
    # camera's first bundle must
    capsys.readouterr()
    assert pieton(["config", "sign", str(target / "pieton.toml"), "--key", str(tmp_path / "tech.key"),
                   "--version", "1", "--fleet", "autun-pm", "--out", str(tmp_path / "v1.bundle")]) == 0


def test_init_refuses_a_malformed_recipient(tmp_path, capsys):
    assert pieton(["config", "init", str(tmp_path / "cfg"), "--recipient", "age1bad"]) == 2
    assert "recipients = ['age1bad']" in capsys.readouterr().err


def test_an_untrusted_first_bundle_says_how_to_make_the_trust_anchor():
    from types import SimpleNamespace

    import pytest

    from recorder.bundle import OWN, check_trust
    from recorder.errors import BundleError
    bundle = SimpleNamespace(signer="ab" * 32)
    with pytest.raises(BundleError, match="this bundle's own configuration .*config init DIR --technician-key"):
        check_trust(bundle, ["cd" * 32], where=OWN)
    with pytest.raises(BundleError, match="the running configuration trusts no technician key: .*first bundle "
                                          "installed with the daemon"):
        check_trust(bundle, [])
    with pytest.raises(BundleError, match=r"is not in \[keys\] technicians of the running configuration$"):
        check_trust(bundle, ["cd" * 32])
