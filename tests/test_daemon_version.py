"""A camera provisioned with a signed bundle runs that bundle's version: the status says
so, and the same version flashed again is a replay, refused without a restart."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from drivers.signer import FileSigner
from recorder.bundle import public_hex
from recorder.clock import VirtualClockLoop
from recorder.config_update import load_device_config
from recorder.daemon import Daemon, Options
from tests.tech_device import make_config, sign, technician


def test_status_shows_the_provisioned_bundle_version_and_the_same_version_is_refused(tmp_path, chief):
    _, tech = technician(tmp_path)
    _, recipient = chief
    keys = [public_hex(tech)]
    bundle = sign(make_config(tmp_path / "v2", keys, recipient), tech, 2)
    path = tmp_path / "camera-v2.pbn"
    path.write_bytes(bundle)
    state = tmp_path / "state"
    FileSigner.create(state / "keys" / "device-signing.key")   # pieton provision
    config, version = load_device_config(path, state)
    assert version == 2
    loop = VirtualClockLoop(start=100.0)
    asyncio.set_event_loop(loop)
    daemon = Daemon(config, Options(state, [recipient], simulated=True, control_socket=True, notify=False),
                    loop=loop, config_version=version)
    try:
        loop.run_until_complete(daemon.start())
        assert daemon.status()["config"]["version"] == 2
        ctl = [sys.executable, "-m", "tools.cli", "ctl", "status", "--state-dir", str(state), "--verbose"]
        shown = loop.run_until_complete(loop.run_in_executor(
            None, lambda: subprocess.run(ctl, capture_output=True, text=True, timeout=60)))
        assert "version=2" in shown.stdout, shown.stdout + shown.stderr

        again = daemon.updater.offer(bundle)
        assert again.code == "not-newer", again
        assert not daemon.restart_requested
        older = daemon.updater.offer(sign(make_config(tmp_path / "v1", keys, recipient), tech, 1))
        assert older.code == "not-newer"
        newer = daemon.updater.offer(sign(make_config(tmp_path / "v3", keys, recipient), tech, 3))
        assert newer.code == "applied" and daemon.restart_requested
        loop.run_until_complete(daemon.shutdown("test over"))
    finally:
        loop.close()
        asyncio.set_event_loop(None)
