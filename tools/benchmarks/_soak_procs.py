"""The processes of `pieton bench soak`, each killable with SIGKILL at a seeded random point.

The daemon runs as `recorder.cli.simulate` (the scenario runner: the device's daemon on a
virtual clock, simulated hardware) in a child process that says on its stdout, one JSON
line each, every scenario event with the virtual time reached and its own resident memory.
A kill is aimed at a phase of its work: it waits for the event that begins that phase,
then a random delay, then SIGKILL. Vault commands run as `pieton vault ...` children,
killed after a random delay. What a child writes on stderr is kept: a traceback there is
a fault of the campaign.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from recorder.config import Section
from recorder.config_update import load_device_config
from recorder.daemon import Daemon, Options
from recorder.scenario import load_scenario, run_scenario

ROOT = Path(__file__).resolve().parents[2]
SIMULATED_FEEDBACK = {"leds": "simulated", "speaker": "simulated", "haptic": "simulated", "button": "simulated"}
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / (1 << 20)

# A kill's target phase -> (does an event's text begin it, the random delay after it in wall seconds)
PHASES = {
    "recording": (lambda text: text.startswith(("press", "double_press", "hold {'seconds': 2.0"))
                  and "no effect" not in text, (0.3, 3.0)),
    "sealing": (lambda text: text.startswith("hold {'seconds': 3.5"), (0.0, 1.5)),
    "configuration": (lambda text: text.startswith(("flash", "configuration applied")), (0.0, 0.6)),
    "receipts": (lambda text: text == "started", (0.0, 0.8)),
}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_MB


def _say(event: dict) -> None:
    os.write(1, (json.dumps(event) + "\n").encode())


# -- the daemon (child process) -----------------------------------------------------------------
def on_bench(config):
    """A flashed bundle names the Pi's feedback drivers (gpiozero, sounddevice); on the
    bench that hardware is simulated, as everywhere else in the soak."""
    drivers = Section("drivers", {**config.drivers.as_dict(), **SIMULATED_FEEDBACK})
    return replace(config, sections={**config.sections, "drivers": drivers})


def device_main(state_dir: str, config_path: str, recipient: str, scenario_path: str) -> None:
    """The camera for one life: the scenario's events through the daemon (as `pieton
    simulate` plays them, on the configuration in force), told as they come."""
    _say({"t": 0.0, "text": "started", "rss": rss_mb()})
    options = Options(Path(state_dir), [recipient], simulated=True, control_socket=False, notify=False)

    def make_daemon(loop, wall, previous=None):
        config, version = load_device_config(config_path, state_dir)   # a bundle flashed meanwhile
        return Daemon(on_bench(config), options, loop=loop, wall_clock=wall, config_version=version,
                      previous=previous)

    player = run_scenario(load_scenario(scenario_path), make_daemon,
                          progress=lambda t, text: _say({"t": round(t, 2), "text": text, "rss": round(rss_mb(), 2)}))
    _say({"t": player.scenario.duration, "text": "ended", "rss": rss_mb(), "failures": player.failures})


@dataclass
class Life:
    """One run of the daemon process, from its start to its kill or its end."""

    offset: float                  # virtual seconds into the shift at its start
    samples: list[tuple[float, float]] = field(default_factory=list)   # (virtual s into the shift, RSS MB)
    reached: float = 0.0           # the last virtual time it reported, into the shift
    killed: str | None = None      # the phase a kill hit, if one did
    ended: bool = False
    code: int | None = None
    stderr: str = ""
    failures: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)


def run_daemon(ws, scenario: Path, offset: float, kill: str | None, rng: random.Random, log: Path) -> Life:
    """One life of the daemon on ``scenario``; ``kill``: the phase to kill it in (None: let it end)."""
    code = ("import sys; from tools.benchmarks._soak_procs import device_main; device_main(*sys.argv[1:])")
    with open(log, "ab") as err:
        child = subprocess.Popen([sys.executable, "-c", code, str(ws.device), str(ws.config), ws.recipient,
                                  str(scenario)], stdout=subprocess.PIPE, stderr=err, cwd=ROOT)
    life = Life(offset)
    trigger = threading.Event()
    begins = PHASES[kill][0] if kill else None

    def read() -> None:
        for raw in child.stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            life.reached = offset + event["t"]
            life.samples.append((life.reached, event["rss"]))
            life.events.append(event["text"])
            if event["text"] == "ended":
                life.ended = True
                life.failures = event.get("failures", [])
            if begins is not None and begins(event["text"]):
                trigger.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if kill is not None:
        while not trigger.wait(0.2):
            if child.poll() is not None:
                break
        if trigger.is_set():
            time.sleep(rng.uniform(*PHASES[kill][1]))
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
                life.killed = kill
    life.code = child.wait()
    reader.join()
    return life


# -- vault commands ---------------------------------------------------------------------------
@dataclass
class Command:
    args: list[str]
    code: int
    out: str
    err: str
    killed_after: float | None = None


def pieton(args: list[str], kill_after: float | None = None, timeout: float = 1800.0) -> Command:
    """`pieton ARGS` in a child process, SIGKILLed after ``kill_after`` seconds if given."""
    child = subprocess.Popen([sys.executable, "-m", "tools.cli", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        out, err = child.communicate(timeout=kill_after if kill_after is not None else timeout)
        return Command(args, child.returncode, out, err)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate()
        if kill_after is None:
            return Command(args, -9, out, err + f"\n(hung: killed after {timeout:.0f} s)")
        return Command(args, child.returncode, out, err, kill_after)


# -- memory ---------------------------------------------------------------------------------------
def slope_mb_per_hour(samples: list[tuple[float, float]], warmup_s: float) -> tuple[float, float] | None:
    """Least-squares slope of RSS over virtual time after the life's warm-up, in MB per
    hour, and the hours it spans; None when too little is left to judge."""
    if not samples:
        return None
    t0 = samples[0][0] + warmup_s
    points = [(t / 3600.0, m) for t, m in samples if t >= t0]
    if len(points) < 5 or points[-1][0] - points[0][0] < 0.25:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mm = sum(m for _, m in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    cov = sum((t - mt) * (m - mm) for t, m in points)
    return cov / var, points[-1][0] - points[0][0]
