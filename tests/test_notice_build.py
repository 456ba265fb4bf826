"""`pieton notice build`: the [notice] text drives the notice audio (CSI L241-2), and the
text goes with it everywhere: in the configuration (so in the signed bundle) and in every
recording's metadata (tests/test_notice_heard.py, tests/test_scenarios.py)."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

from recorder.config import DEFAULT_CONFIG, load_config
from recorder.notice import check_notice_audio, load_wav
from tests.conftest import copy_config_files

LONGER = "Attention, vous êtes filmés par une caméra piéton de la police municipale de la commune."


def pieton(*args):
    return subprocess.run([sys.executable, "-m", "tools.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=DEFAULT_CONFIG.parent.parent)


@pytest.fixture
def config_dir(tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is needed (make system installs it)")
    copy_config_files(tmp_path)
    return tmp_path


def with_text(config_dir, text):
    path = config_dir / "pieton.toml"
    source = DEFAULT_CONFIG.read_text()
    assert 'text = "Attention, cette intervention est enregistrée."' in source
    path.write_text(source.replace('text = "Attention, cette intervention est enregistrée."', f"text = {text!r}"))
    return path


def test_the_notice_is_built_from_the_configured_text_into_the_configured_audio(config_dir):
    shipped, _ = load_wav(DEFAULT_CONFIG.with_name("notice-fr.wav"))
    config = with_text(config_dir, LONGER)
    result = pieton("notice", "build", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert str(config_dir / "notice-fr.wav") in result.stdout and LONGER in result.stdout
    samples, rate = load_wav(config_dir / "notice-fr.wav")
    assert rate == 22050 and len(samples) > 1.5 * len(shipped)   # the longer sentence was spoken
    loaded = load_config(config)                                 # and the check accepts it
    assert loaded.notice.text == LONGER and check_notice_audio(loaded) == []


def test_an_empty_text_is_refused_and_the_old_audio_kept(config_dir):
    before = (config_dir / "notice-fr.wav").read_bytes()
    result = pieton("notice", "build", "--config", str(with_text(config_dir, "   ")))
    assert result.returncode == 2 and "[notice] text is empty" in result.stderr and "L241-2" in result.stderr
    assert (config_dir / "notice-fr.wav").read_bytes() == before


def test_a_text_the_camera_would_refuse_is_refused(config_dir):
    result = pieton("notice", "build", "--config", str(with_text(config_dir, "x" * 1001)))
    assert result.returncode == 2 and "[notice] text" in result.stderr and "Traceback" not in result.stderr


def test_a_missing_configuration_or_voice_is_a_clear_error(config_dir, tmp_path):
    result = pieton("notice", "build", "--config", str(tmp_path / "none.toml"))
    assert result.returncode == 2 and "none.toml: configuration: not found" in result.stderr
    result = pieton("notice", "build", "--config", str(with_text(config_dir, LONGER)), "--voice", "xx-none",
                    "--out", str(tmp_path / "out.wav"))
    assert result.returncode == 2 and "espeak-ng failed (voice 'xx-none')" in result.stderr
    assert not (tmp_path / "out.wav").exists()


def test_the_built_notice_is_heard_as_speech_not_silence(config_dir, tmp_path):
    out = tmp_path / "built.wav"
    assert pieton("notice", "build", "--config", str(with_text(config_dir, LONGER)), "--out", str(out)).returncode == 0
    samples, _ = load_wav(out)
    assert np.sqrt(np.mean(samples ** 2)) > 0.02
