"""A damaged provisioned bundle (the one `pieton run --config` is given) never stops the
daemon (CSI L241-2, "refusing starts"): the copy installed at the last good start runs,
the damage journaled and in the status; with no good copy the daemon serves its status and
link, recording nothing, and starts on the file once it is replaced. `config check` stays
strict."""

from __future__ import annotations

import subprocess
import sys

import pytest

from drivers.signer import FileSigner
from recorder.bundle import public_hex
from recorder.config_update import load_device_config
from recorder.provisioned import ProvisionedDamaged
from tests.conftest import read_jsonl
from tests.tech_device import make_config, sign, technician
from tests.test_config_fallback import _run, _status, _stop, _wait


def damaged(good: bytes, how: str) -> bytes:
    if how == "truncated":
        return good[: len(good) * 2 // 3]
    if how == "altered":   # a byte of the notice audio changed after signing
        spoiled = bytearray(good)
        spoiled[-100] ^= 0x40
        return bytes(spoiled)
    raise AssertionError(how)


@pytest.fixture
def bundle(tmp_path, chief):
    _, recipient = chief
    _, tech = technician(tmp_path)
    data = sign(make_config(tmp_path / "v1", [public_hex(tech)], recipient), tech, 1)
    path = tmp_path / "etc" / "pieton.bundle"
    path.parent.mkdir()
    path.write_bytes(data)
    return path, data, recipient, tech


@pytest.mark.parametrize("how", ["truncated", "altered"])
def test_a_damaged_provisioned_bundle_runs_on_the_copy_kept_at_the_last_good_start(tmp_path, bundle, how):
    path, good, _, _ = bundle
    state = tmp_path / "state"
    config, version = load_device_config(path, state)
    assert version == 1 and not config.provisioned_fault
    kept = state / "config" / "provisioned" / "bundle.pbn"
    assert kept.read_bytes() == good

    path.write_bytes(damaged(good, how))
    config, version = load_device_config(path, state)
    assert version == 1 and config.signed
    assert str(path) in config.provisioned_fault and "refused [" in config.provisioned_fault
    assert kept.read_bytes() == good, "the damaged file never replaces the good copy"


def test_a_bundle_signed_by_a_key_it_does_not_list_never_replaces_the_good_copy(tmp_path, bundle, chief):
    path, good, recipient, tech = bundle
    state = tmp_path / "state"
    load_device_config(path, state)
    _, stranger = technician(tmp_path, "stranger")
    path.write_bytes(sign(make_config(tmp_path / "v2", [public_hex(tech)], recipient), stranger, 2))
    config, version = load_device_config(path, state)
    assert version == 1 and "[unknown-signer]" in config.provisioned_fault
    assert (state / "config" / "provisioned" / "bundle.pbn").read_bytes() == good


def test_with_no_good_copy_the_loader_says_so_for_maintenance(tmp_path, bundle):
    path, good, _, _ = bundle
    path.write_bytes(damaged(good, "truncated"))
    with pytest.raises(ProvisionedDamaged) as caught:
        load_device_config(path, tmp_path / "state")
    assert str(path) in caught.value.problems[0] and "no good copy" in caught.value.problems[1]
    assert caught.value.stand_in.keys.technicians == [] or not caught.value.stand_in.keys.technicians


def test_config_check_stays_strict(tmp_path, bundle):
    path, good, _, _ = bundle
    path.write_bytes(damaged(good, "altered"))
    done = subprocess.run([sys.executable, "-m", "tools.cli", "config", "check", str(path)],
                          capture_output=True, text=True, timeout=120)
    # its report fails (exit 1, as for any bundle that does not verify), naming the fault
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "FAILED [file-altered]" in done.stderr


def test_the_daemon_runs_on_the_kept_copy_and_journals_the_damage(tmp_path, bundle):
    path, good, recipient, _ = bundle
    state = tmp_path / "state"
    FileSigner.create(state / "keys" / "device-signing.key")
    load_device_config(path, state)            # the last good start
    path.write_bytes(damaged(good, "altered"))
    proc = _run(path, state, recipient)
    try:
        assert _wait(lambda: (_status(state) or {}).get("state") == "armed"), proc.stderr.read()
        status = _status(state)
        assert status["config"]["version"] == 1
        assert str(path) in status["config"]["provisioned_fault"]
    finally:
        err = _stop(proc)
    assert proc.returncode == 0, err
    events = read_jsonl(state / "spool" / "journal.jsonl")
    damage = [e for e in events if e["event"] == "config fallback"]
    assert len(damage) == 1 and damage[0]["data"]["failed"] == str(path)
    assert "[file-altered]" in damage[0]["data"]["reason"] and damage[0]["data"]["version"] == 1


def test_with_nothing_good_the_daemon_stays_up_saying_why_and_starts_once_the_file_is_replaced(tmp_path, bundle):
    path, good, recipient, _ = bundle
    state = tmp_path / "state"
    FileSigner.create(state / "keys" / "device-signing.key")
    path.write_bytes(damaged(good, "truncated"))
    proc = _run(path, state, recipient)
    try:
        assert _wait(lambda: (_status(state) or {}).get("state") == "maintenance"), proc.stderr.read()
        status = _status(state)
        assert str(path) in status["maintenance"] and "refused [" in status["maintenance"]
        assert status["recordings_made"] == 0
        path.write_bytes(good)                 # the technician installs a good bundle in its place
        assert _wait(lambda: (_status(state) or {}).get("state") == "armed"), "did not start on the new file"
        assert _status(state)["config"]["version"] == 1
    finally:
        err = _stop(proc)
    assert proc.returncode == 0, err
    events = read_jsonl(state / "spool" / "journal.jsonl")
    failed = [e for e in events if e["event"] == "start failed"]
    assert failed and str(path) in failed[0]["data"]["reason"]
