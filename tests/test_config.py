import pytest

from recorder.config import DEFAULT_CONFIG, load_config
from recorder.errors import ConfigError
from tests.conftest import copy_config_files
from tools.cli import main


def write(tmp_path, text):
    path = tmp_path / "pieton.toml"
    path.write_text(text)
    copy_config_files(tmp_path)
    return path


def test_default_configuration_loads_with_documented_defaults():
    config = load_config()
    assert config.video.width == 1280 and config.video.fps == 30
    assert config.prebuffer.seconds == 30.0
    assert config.gestures.stop_hold_s > config.gestures.flagrant_delit_hold_s
    assert config.drivers.camera == "simulated"
    assert config.keys.recipients == []
    assert len(config.digest) == 64


def test_every_error_names_file_section_key_value_and_allowed(tmp_path):
    path = write(tmp_path, "[video]\nwidth = 99\ncolour = 'red'\n[gps]\nserial_baud = 1200\n[oops]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = info.value.problems
    assert len(problems) == 4
    assert any(str(path) in p and "[video] width = 99" in p and "320 to 4056" in p for p in problems)
    assert any("[video] unknown key 'colour'" in p for p in problems)
    assert any("[gps] serial_baud = 1200" in p and "9600" in p for p in problems)
    assert any("unknown section [oops]" in p for p in problems)


def test_types_are_strict(tmp_path):
    path = write(tmp_path, "[video]\nfps = true\n[prebuffer]\nseconds = '30'\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert len(info.value.problems) == 2


def test_recipients_must_be_age_recipients_never_private_keys(tmp_path):
    path = write(tmp_path, "[keys]\nrecipients = ['AGE-SECRET-KEY-1QQQQ']\n")
    with pytest.raises(ConfigError, match=r"\[keys\] recipients .*age recipients"):
        load_config(path)


def test_hysteresis_and_stop_hold_are_cross_checked(tmp_path):
    path = write(tmp_path, "[nightmode]\nenter_lux = 30\nexit_lux = 20\n[gestures]\nstop_hold_s = 1.0\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert "enter_lux" in text and "stop_hold_s" in text


def test_malformed_toml_and_missing_file(tmp_path):
    path = write(tmp_path, "[video\nwidth=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="absent.toml: configuration: not found"):
        load_config(tmp_path / "absent.toml")


def test_missing_notice_audio_is_named(tmp_path):
    path = write(tmp_path, "[notice]\naudio = 'absent.wav'\n")
    with pytest.raises(ConfigError, match=r"\[notice\] audio = 'absent.wav'"):
        load_config(path)


def test_config_check_command(tmp_path, capsys):
    assert main(["config", "check", str(DEFAULT_CONFIG)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "OK" and all(line.startswith("note: ") for line in out[1:])
    bad = write(tmp_path, "[video]\nwidth = 99\n")
    assert main(["config", "check", str(bad)]) == 2
    assert "width = 99" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert "pieton 0." in capsys.readouterr().out
