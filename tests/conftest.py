"""Shared test helpers: configuration files and the chief's identity, made per test
(keys are generated, never committed)."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from vault_support import open_test_vault

from recorder.config import DEFAULT_CONFIG, SCHEMA
from recorder.toml_writer import toml_document

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

# Small media for tests where the behaviour does not depend on size.
SMALL_VIDEO = {"video": {"width": 320, "height": 240, "fps": 10}}

# What a device configuration (a signed bundle, or real drivers) needs beyond a simulation:
# real feedback drivers, the vault's key and the prefect's authorisation. Add the chief's
# recipients and the technician keys with ``device_config``.
DEVICE = {"drivers": {"leds": "gpiozero", "speaker": "sounddevice", "haptic": "gpiozero", "button": "gpiozero"},
          "keys": {"vault": "5a" * 32},
          "authorisation": {"arrete": "2026-DSC-0412", "communes": ["71014"], "until": date(2099, 12, 31)}}


def device_config(technicians: list[str], recipients: list[str], **overrides: dict) -> dict:
    """Overrides for ``write_config`` that make a valid device configuration."""
    sections = {name: dict(values) for name, values in DEVICE.items()}
    sections["keys"].update(technicians=list(technicians), recipients=list(recipients))
    for section, values in overrides.items():
        sections.setdefault(section, {}).update(values)
    return sections


def copy_config_files(folder: Path) -> None:
    """The files the default configuration references (notice audio, commune boundaries),
    copied beside a configuration written in ``folder``."""
    shutil.copy(DEFAULT_CONFIG.with_name("notice-fr.wav"), folder / "notice-fr.wav")
    shutil.copytree(DEFAULT_CONFIG.parent / "communes", folder / "communes", dirs_exist_ok=True)


def write_config(folder: Path, overrides: dict | None = None, name: str = "pieton.toml") -> Path:
    """A complete configuration in ``folder`` (with the notice audio and commune
    boundaries it references), the defaults changed by ``overrides[section][key]``."""
    folder.mkdir(parents=True, exist_ok=True)
    overrides = overrides or {}
    tables = {section: {key: overrides.get(section, {}).get(key, option.default) for key, option in options.items()}
              for section, options in SCHEMA.items()}
    copy_config_files(folder)
    path = folder / name
    path.write_text(toml_document(tables))
    return path


def wait_for(predicate, timeout=20.0, step=0.05) -> bool:
    """True once ``predicate()`` is, polled every ``step`` s; False after ``timeout`` s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return False


def read_jsonl(path: Path) -> list[dict]:
    """Every line of a JSON-lines file (a manifest, a journal, the register), parsed."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def paris(*args: int) -> float:
    """A local time in Paris (year, month, day, ...), the retention rule's zone, as a timestamp."""
    return datetime(*args, tzinfo=ZoneInfo("Europe/Paris")).timestamp()


@pytest.fixture
def chief(tmp_path):
    """The chief's identity file and recipient, made for this test."""
    from recorder.evidence.age import generate_identity
    identity, recipient = generate_identity()
    path = tmp_path / "chief.identity"
    path.write_text(identity + "\n")
    path.chmod(0o600)
    return path, recipient


def designate(vault_dir, identity_path, recipient: str, monkeypatch=None, *, matricule: str = "PM-0001") -> str:
    """Designate the test's chief (a ``responsable``) in a vault made for a test; with
    ``monkeypatch``, their identity becomes the one vault commands use (PIETON_IDENTITY).
    Returns the matricule the journal and the register then name."""
    from tools.cli import main
    assert main(["vault", "designate", str(vault_dir), "--name", "Chef de test", "--matricule", matricule,
                 "--role", "responsable", "--designated-by", "Maire", "--decision", "arrêté de test",
                 "--recipient", recipient, "--identity", str(identity_path)]) == 0
    if monkeypatch is not None:
        monkeypatch.setenv("PIETON_IDENTITY", str(identity_path))
    return matricule


@pytest.fixture
def vault(tmp_path, chief):
    """An empty vault for the recipient of the test's ``chief`` (the second item of either
    chief fixture), closed after the test; ``vault_support.store_recordings`` fills it."""
    with open_test_vault(tmp_path, chief[1]) as opened:
        yield opened


@pytest.fixture
def serial_pty():
    """A pseudo-terminal standing in for the USB gadget serial port (the technician's link)."""
    master, slave = os.openpty()
    yield os.ttyname(slave)
    os.close(master)
    os.close(slave)
