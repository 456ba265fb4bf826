"""`pieton demo`: the patrol scenario end to end, as a newcomer first sees the system.

It makes a chief identity of its own (never a published key), plays
config/scenarios/patrol.toml through the daemon on simulated hardware, prints what
happened, then offloads the recordings into a vault, extracts one for a judicial
procedure to an MP4 that ffprobe reads, and prints the register."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from recorder.cli import SCENARIOS, simulate
from recorder.errors import ConfigError, PietonError
from recorder.evidence.age import generate_identity
from recorder.scenario import verdict
from recorder.summary import print_summary
from tools.vault.demo import vault_epilogue

# The default demo folder: one, replaced at each run, so `make run` never piles up folders.
DEFAULT_ROOT = Path(tempfile.gettempdir()) / "pieton-demo"
MARK = ".pieton-demo"     # only a folder holding this mark is ever removed


def _fresh_default_root() -> Path:
    root = DEFAULT_ROOT
    if root.exists():
        if not (root / MARK).is_file():
            raise SystemExit(f"pieton demo: {root} exists and is not a demo folder; "
                             "move it away or give --state-dir")
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / MARK).write_text("made by pieton demo; replaced at the next run\n")
    return root


def _progress(t: float, text: str) -> None:
    """A line per scenario event while the patrol plays, at its simulated time."""
    print(f"  [{t:5.0f} s] {text}", flush=True)


def run_demo(state_dir: str | None, *, realtime: bool = False, config_path=None, quiet: bool = False) -> int:
    root = Path(state_dir) if state_dir else _fresh_default_root()
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
    print(f"pieton demo — everything is kept in {root} (device state, chief identity, vault)")
    print(f"The demo's chief identity {chief} is in clear: a test fixture, never for a real vault "
          "(`pieton keys chief` asks a strong passphrase).")
    print("Playing the patrol through the daemon on simulated hardware:\n")
    began = time.monotonic()
    player = simulate(SCENARIOS / "patrol.toml", device, config_path=config_path, recipients=[recipient],
                      realtime=realtime, progress=None if quiet else _progress)
    print()
    elapsed = time.monotonic() - began
    print_summary(player)
    print(f"\nSimulated {player.scenario.duration:.0f} s in {elapsed:.1f} s of wall time "
          f"({player.scenario.duration / elapsed:.1f}x real time).")
    problem = verdict(player)
    if problem:
        print(f"\npieton: {problem}", file=sys.stderr)
        return 1
    code = vault_epilogue(root, device / "spool", chief, recipient)
    print(f"\nEverything is in {root}. The pieton command is .venv/bin/pieton "
          "(or `. .venv/bin/activate` to have it on the PATH); `pieton --help` lists what it does.")
    return code


def register(subparsers) -> None:
    demo = subparsers.add_parser("demo", help="play the demo patrol, then offload and extract in a vault")
    demo.add_argument("--state-dir", default=None,
                      help=f"where to keep the demo (default: {DEFAULT_ROOT}, replaced at each run)")
    demo.add_argument("--realtime", action="store_true", help="play the patrol at the speed of real time")
    demo.add_argument("--quiet", action="store_true", help="no line per event while the patrol plays")
    demo.add_argument("--config", default=None, help="device configuration (default: config/pieton.toml)")
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    try:
        return run_demo(args.state_dir, realtime=args.realtime, config_path=args.config, quiet=args.quiet)
    except (ConfigError, PietonError) as exc:
        for problem in getattr(exc, "problems", None) or [str(exc)]:
            print(f"pieton: {problem}", file=sys.stderr)
        return 2
