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
