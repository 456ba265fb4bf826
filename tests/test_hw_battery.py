import asyncio

import pytest

from drivers.battery import SysfsBattery, open_battery
from drivers.errors import DriverFault, DriverUnavailable, UnknownBackend
from recorder.clock import VirtualClockLoop
from recorder.config import load_config


@pytest.fixture
def loop():
    loop = VirtualClockLoop(start=50.0)
    yield loop
    loop.close()


def test_simulated_battery_drains_over_loop_time_at_the_configured_rate(loop):
    with open_battery("simulated", load_config(), loop=loop) as battery:
        assert battery.drain_per_hour == 10.0
        assert battery.percent() == 100.0 and not battery.charging
        loop.run_until_complete(asyncio.sleep(1800))
        assert battery.percent() == pytest.approx(95.0)
        battery.set_level(6.0)
        assert "6.0%" in repr(battery)
        loop.run_until_complete(asyncio.sleep(3600))
        assert battery.percent() == 0.0  # never below empty
        battery.set_level(50.0)
        battery.set_charging(True)
        loop.run_until_complete(asyncio.sleep(900))
        assert battery.charging and battery.percent() == pytest.approx(60.0)
        battery.set_charging(False)
        assert battery.percent() == pytest.approx(60.0)
        with pytest.raises(ValueError, match="from 0 to 100"):
            battery.set_level(120)
    assert "closed" in repr(battery)
    battery.close()


def test_simulated_battery_needs_the_loop():
    with pytest.raises(ValueError, match="loop"):
        open_battery("simulated", None)
    with pytest.raises(UnknownBackend, match="simulated, sysfs"):
        open_battery("lipo", None)


def supply(root, name, kind, capacity, status):
    path = root / name
    path.mkdir(parents=True)
    (path / "type").write_text(kind + "\n")
    if capacity is not None:
        (path / "capacity").write_text(f"{capacity}\n")
    (path / "status").write_text(status + "\n")
    return path


def test_sysfs_battery_reads_the_kernel_gauge(tmp_path):
    supply(tmp_path, "AC", "Mains", None, "Unknown")
    path = supply(tmp_path, "BAT0", "Battery", 73, "Discharging")
    battery = open_battery("sysfs", None, root=tmp_path)
    assert battery.path == path and battery.percent() == 73.0 and not battery.charging
    (path / "status").write_text("Charging\n")
    (path / "capacity").write_text("74\n")
    assert battery.charging and battery.percent() == 74.0
    assert "74.0% charging" in repr(battery)
    (path / "capacity").write_text("garbage\n")
    with pytest.raises(DriverFault, match="BAT0/capacity"):
        battery.percent()
    assert SysfsBattery("BAT0", root=tmp_path).path == path


def test_sysfs_battery_unavailable_names_the_path(tmp_path):
    with pytest.raises(DriverUnavailable, match=f"no {tmp_path}/\\*/capacity"):
        SysfsBattery(root=tmp_path)
    with pytest.raises(DriverUnavailable, match="UPS/capacity not found"):
        SysfsBattery("UPS", root=tmp_path)
    with pytest.raises(DriverUnavailable, match="capacity"):
        SysfsBattery(root=tmp_path / "absent")
