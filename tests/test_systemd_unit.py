"""The systemd unit, checked by systemd's own tools (systemd-analyze, systemd-sysusers,
systemd-tmpfiles), plus the properties the evidence rules depend on."""

import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parent.parent / "systemd"
UNIT = SYSTEMD / "pieton-recorder.service"
INSTALLED_EXEC = "/opt/pieton/venv/bin/pieton"

pytestmark = pytest.mark.integration


def need(tool):
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: `make system` installs the 'systemd' package")
    return path


def directives(text):
    """[section] -> list of (key, value), keeping repeated keys as systemd does."""
    sections, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def values(sections, section, key):
    return [v for k, v in sections[section] if k == key]


def unit_copy(tmp_path, text=None, *, unit=UNIT, command=""):
    """``unit`` (or ``text``, an edited copy of it) with ExecStart pointed at a binary that
    exists on this machine; its ExecStart must run ``pieton {command}``."""
    text = unit.read_text() if text is None else text
    assert f"ExecStart={INSTALLED_EXEC} {command}" in text
    copy = tmp_path / unit.name
    copy.write_text(text.replace(f"ExecStart={INSTALLED_EXEC} ", f"ExecStart={need('true')} "))
    return copy


def verify(path):
    return subprocess.run([need("systemd-analyze"), "verify", "--recursive-errors=no", str(path)],
                          capture_output=True, text=True, timeout=60)


def test_systemd_analyze_verify_accepts_the_unit_without_warnings(tmp_path):
    result = verify(unit_copy(tmp_path))
    ours = [line for line in (result.stdout + result.stderr).splitlines() if UNIT.name in line]
    assert result.returncode == 0, result.stderr
    assert ours == []


def test_verify_would_catch_a_broken_setting(tmp_path):
    # The check above is only worth something if verify rejects mistakes in this unit.
    broken = UNIT.read_text().replace("MemorySwapMax=0", "MemorySwapMax=none-please")
    result = verify(unit_copy(tmp_path, broken))
    assert result.returncode != 0 and "Invalid memory limit 'none-please'" in result.stderr


def test_hardening_exposure_is_low(tmp_path):
    copy = unit_copy(tmp_path)
    result = subprocess.run([need("systemd-analyze"), "security", "--offline=yes", "--threshold=25", str(copy)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout[-400:]
    assert "Overall exposure level" in result.stdout


def test_properties_the_evidence_rules_depend_on():
    unit = directives(UNIT.read_text())
    service = dict(unit["Service"])
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert service["WatchdogSec"].endswith("s") and 2 <= int(service["WatchdogSec"][:-1]) <= 60
    assert service["Restart"] == "always"
    assert service["ExecStart"] == (f"{INSTALLED_EXEC} run --config /etc/pieton/pieton.bundle "
                                    "--state-dir /var/lib/pieton")
    # The pre-event buffer is RAM only: no swap, no core dumps.
    assert service["MemorySwapMax"] == "0" and service["LimitCORE"] == "0"
    # Capture is not starved by other processes: a raised priority, never a real-time one.
    assert -10 <= int(service["Nice"]) < 0 and "CPUSchedulingPolicy" not in service
    assert service["User"] == "pieton"
    assert set(service["SupplementaryGroups"].split()) == {"gpio", "video", "audio", "dialout", "i2c"}
    assert service["ProtectSystem"] == "strict" and service["ReadWritePaths"] == "/var/lib/pieton"
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "ProtectKernelTunables"):
        assert service[key] == "yes", key
    assert service["RestrictAddressFamilies"].split() == ["AF_UNIX", "AF_INET", "AF_INET6"]
    # Hardware access must survive the hardening.
    for key in ("PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock"):
        assert key not in service, f"{key} would hide the camera, GPIO or sound devices"
    # SIGTERM seals the recording: systemd must wait long enough before SIGKILL.
    assert int(service["TimeoutStopSec"][:-1]) >= 5
    assert values(unit, "Install", "WantedBy") == ["multi-user.target"]


def test_sysusers_and_tmpfiles_create_the_user_and_private_folders(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    subprocess.run([need("systemd-sysusers"), f"--root={root}", str(SYSTEMD / "pieton.sysusers.conf")],
                   check=True, capture_output=True, timeout=60)
    passwd = {line.split(":")[0]: line.split(":") for line in (root / "etc/passwd").read_text().splitlines()}
    groups = {line.split(":")[0] for line in (root / "etc/group").read_text().splitlines()}
    assert passwd["pieton"][5] == "/var/lib/pieton" and passwd["pieton"][6] == "/usr/sbin/nologin"
    assert {"pieton", "gpio", "video", "audio", "dialout", "i2c"} <= groups
    subprocess.run([need("systemd-tmpfiles"), f"--root={root}", "--create", str(SYSTEMD / "pieton.tmpfiles.conf")],
                   check=True, capture_output=True, timeout=60)
    uid = int(passwd["pieton"][2])
    for path, mode in (("var/lib/pieton", 0o750), ("var/lib/pieton/keys", 0o700)):
        info = (root / path).stat()
        assert (info.st_mode & 0o777, info.st_uid) == (mode, uid), path
    assert (root / "etc/pieton").stat().st_mode & 0o007 == 0  # no access for others


PURGE = SYSTEMD / "pieton-vault-purge.service"
PURGE_TIMER = SYSTEMD / "pieton-vault-purge.timer"


def purge_copies(tmp_path, service_text=None):
    text = PURGE.read_text() if service_text is None else service_text
    assert f"ExecStart={INSTALLED_EXEC} vault purge " in text
    (tmp_path / PURGE.name).write_text(text.replace(f"ExecStart={INSTALLED_EXEC} ", f"ExecStart={need('true')} ")
                                       .replace("EnvironmentFile=/etc/pieton/vault.env",
                                                "Environment=PIETON_VAULT=/srv/pieton/vault"))
    (tmp_path / PURGE_TIMER.name).write_text(PURGE_TIMER.read_text())
    return tmp_path / PURGE.name, tmp_path / PURGE_TIMER.name


def test_the_vault_purge_runs_hourly_and_catches_up_after_a_shutdown(tmp_path):
    service, timer = purge_copies(tmp_path)
    result = verify(timer)
    ours = [line for line in (result.stdout + result.stderr).splitlines()
            if PURGE.name in line or PURGE_TIMER.name in line]
    assert result.returncode == 0, result.stderr
    assert ours == []
    assert verify(service).returncode == 0
    schedule = directives(PURGE_TIMER.read_text())
    assert values(schedule, "Timer", "OnCalendar") == ["hourly"]
    assert values(schedule, "Timer", "Persistent") == ["true"]
    assert values(schedule, "Timer", "Unit") == [PURGE.name]


def test_verify_would_catch_a_broken_purge_service(tmp_path):
    broken = PURGE.read_text().replace("Type=oneshot", "Type=oneshoot")
    service, _timer = purge_copies(tmp_path, broken)
    result = verify(service)
    assert result.returncode != 0 and "oneshoot" in result.stderr


def test_the_desk_machine_has_the_user_the_desk_and_the_purge_run_as(tmp_path):
    """pieton-desk.service and pieton-vault-purge.service run as pieton-vault: installing
    them as the README says must create that user and the folders they read and write."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    subprocess.run([need("systemd-sysusers"), f"--root={root}", str(SYSTEMD / "pieton-vault.sysusers.conf")],
                   check=True, capture_output=True, timeout=60)
    passwd = {line.split(":")[0]: line.split(":") for line in (root / "etc/passwd").read_text().splitlines()}
    for unit in ("pieton-desk.service", "pieton-vault-purge.service"):
        user = values(directives((SYSTEMD / unit).read_text()), "Service", "User")
        assert user == ["pieton-vault"] and user[0] in passwd, unit
    assert passwd["pieton-vault"][5] == "/srv/pieton" and passwd["pieton-vault"][6] == "/usr/sbin/nologin"
    subprocess.run([need("systemd-tmpfiles"), f"--root={root}", "--create",
                    str(SYSTEMD / "pieton-vault.tmpfiles.conf")], check=True, capture_output=True, timeout=60)
    uid = int(passwd["pieton-vault"][2])
    for path, mode in (("srv/pieton", 0o750), ("srv/pieton/identities", 0o700), ("srv/pieton/extractions", 0o750)):
        info = (root / path).stat()
        assert (info.st_mode & 0o777, info.st_uid) == (mode, uid), path
    assert (root / "etc/pieton").is_dir()
