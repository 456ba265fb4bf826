"""The simulated cable is a pyserial URL handler: ``simcable://NAME/host`` and
``simcable://NAME/device`` are opened by ``serial_for_url`` like any port, in this process
or in another one (the technician's command run as a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import serial

from drivers.serial_urls import open_serial
from drivers.simcable import PtyCable, cable_folder
from recorder.bundle import public_hex
from recorder.config import load_config
from recorder.errors import LinkError
from recorder.link.listener import device_listener
from recorder.link.protocol import open_port
from tests.conftest import SMALL_VIDEO
from tests.daemon_support import daemon_in_thread, stop_daemon
from tests.tech_device import make_config, make_device, sign, technician
from tools.cli import main


def test_both_ends_open_by_name_through_serial_for_url():
    with PtyCable(name="bench-7") as cable:
        assert cable.host_url == "simcable://bench-7/host"
        host = open_serial(cable.host_url, timeout=1)
        device = serial.serial_for_url(cable.device_url, timeout=1)  # registered once, pyserial's own call
        try:
            host.write(b"ping")
            assert device.read(4) == b"ping"
            device.write(b"pong")
            assert host.read(4) == b"pong"
            assert host.port == cable.host_path  # the native port on the pty, not a look-alike
        finally:
            host.close()
            device.close()
    assert not list(cable_folder().glob("bench-7.*")), "a closed cable leaves no name behind"
    assert "closed" in repr(cable)


def test_an_unplugged_or_misnamed_cable_is_a_clear_link_error():
    with pytest.raises(LinkError, match="no simulated cable named 'nowhere' is plugged in"):
        open_port("simcable://nowhere/host")
    with pytest.raises(LinkError, match="expected simcable://NAME/host or simcable://NAME/device"):
        open_port("simcable://bench/middle")
    with pytest.raises(LinkError, match="protocol 'nosuchscheme' not known"):
        open_port("nosuchscheme://x")


def test_flash_from_another_process_by_the_cable_name(tmp_path, chief):
    tech_path, tech = technician(tmp_path)
    _, recipient = chief
    config = make_config(tmp_path / "running", [public_hex(tech)], recipient)
    device = make_device(tmp_path / "device", config)
    bundle = tmp_path / "v1.pbn"
    bundle.write_bytes(sign(make_config(tmp_path / "v1", [public_hex(tech)], recipient), tech, 1))
    with PtyCable() as cable, device_listener(cable.device_url, device.updater, device.keeper).start():
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        done = subprocess.run([sys.executable, "-m", "tools.cli", "config", "flash", str(bundle),
                               "--port", cable.host_url], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "device answer: accepted [applied]" in done.stdout
    assert device.updater.running_version == 1


def test_the_daemon_listens_on_a_cable_named_in_its_configuration(tmp_path, chief, capsys):
    tech_path, tech = technician(tmp_path)
    _, recipient = chief
    bundle = tmp_path / "v1.pbn"
    bundle.write_bytes(sign(make_config(tmp_path / "v1", [public_hex(tech)], recipient), tech, 1))
    with PtyCable(name="desk-1") as cable:
        config = load_config(make_config(tmp_path / "running", [public_hex(tech)], recipient,
                                         link={"serial_port": cable.device_url}, **SMALL_VIDEO))
        daemon, loop, thread = daemon_in_thread(config, tmp_path / "state", [recipient])
        try:
            assert daemon.status()["link"]["port"] == "simcable://desk-1/device"
            assert main(["config", "flash", str(bundle), "--port", "simcable://desk-1/host"]) == 0
            assert "device answer: accepted [applied]" in capsys.readouterr().out
            thread.join(30)  # a new configuration restarts the daemon
            assert daemon.restart_requested
        finally:
            stop_daemon(daemon, loop, thread)
