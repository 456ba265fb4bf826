"""The desk's systemd unit, checked by systemd-analyze as the recorder's is."""

import pytest
from test_systemd_unit import SYSTEMD, directives, unit_copy, values, verify

DESK = SYSTEMD / "pieton-desk.service"

pytestmark = pytest.mark.integration


def desk_copy(tmp_path, text=None):
    return unit_copy(tmp_path, text, unit=DESK, command="desk ")


def test_systemd_analyze_verify_accepts_the_desk_unit(tmp_path):
    result = verify(desk_copy(tmp_path))
    ours = [line for line in (result.stdout + result.stderr).splitlines() if DESK.name in line]
    assert result.returncode == 0, result.stderr
    assert not ours, ours


def test_verify_would_catch_a_broken_desk_unit(tmp_path):
    broken = DESK.read_text().replace("Type=exec", "Type=sometimes")
    result = verify(desk_copy(tmp_path, broken))
    assert "service type" in result.stdout + result.stderr


def test_the_desk_listens_on_loopback_only_and_writes_no_clear_data():
    unit = directives(DESK.read_text())
    assert values(unit, "Service", "IPAddressDeny") == ["any"]
    assert values(unit, "Service", "IPAddressAllow") == ["localhost"]
    assert values(unit, "Service", "PrivateTmp") == ["yes"]
    assert "--host" not in DESK.read_text()
