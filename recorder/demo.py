"""`pieton demo`: the patrol scenario end to end, as a newcomer first sees the system.

It makes a chief identity of its own (never a published key), plays
config/scenarios/patrol.toml through the daemon on simulated hardware, and prints what
happened."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from recorder.cli import SCENARIOS, simulate
from recorder.scenario import verdict
from recorder.summary import print_summary


def run_demo(state_dir: str | None, *, realtime: bool = False) -> int:
    from recorder.evidence.age import generate_identity
    root = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="pieton-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    chief = root / "chief" / "chief.identity"   # the chief's key: off the device, in his vault
    chief.parent.mkdir(exist_ok=True)
    if chief.exists():
        recipient = chief.read_text().split("# public key: ")[1].split()[0]
    else:
        identity, recipient = generate_identity()
        chief.write_text(f"# created: demo\n# public key: {recipient}\n{identity}\n")
        chief.chmod(0o600)
    device = root / "device"
    print(f"pieton demo — device state in {device}, chief identity in {chief}\n")
    began = time.monotonic()
    player = simulate(SCENARIOS / "patrol.toml", device, recipients=[recipient], realtime=realtime)
    elapsed = time.monotonic() - began
    print_summary(player)
    print(f"\nSimulated {player.scenario.duration:.0f} s in {elapsed:.1f} s of wall time "
          f"({player.scenario.duration / elapsed:.1f}x real time).")
    problem = verdict(player)
    if problem:
        print(f"\npieton: {problem}", file=sys.stderr)
        return 1
    return 0
