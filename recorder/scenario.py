"""Scenarios: the whole daemon against simulated hardware, from a script of timed events.

A scenario is a TOML file::

    [scenario]
    name = "Patrol in Autun"
    start = 2026-11-27T14:00:00Z     # simulated UTC time at t = 0; "now" (the default):
                                      # the time it is played, as a real camera's recordings
    duration_s = 600

    [[event]]
    at = 12.0
    do = "press"                      # press, double_press, hold, light, gps, gps_route,
                                      # gps_lost, gps_regained, gps_jump, battery, disk_fill,
                                      # speaker_failure, camera_failure, power_cut, expect,
                                      # technician (presses when a self-test asks)

Events drive the simulated hardware (the mock button pin, the camera's light, the GPS
receiver, the battery...) at their time on the daemon's clock, which is virtual and runs
faster than real time unless ``--realtime``. The daemon code is the device's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recorder.clock import SimulatedWallClock, VirtualClockLoop
from recorder.errors import PietonError
from recorder.selftest import press_when_asked

log = logging.getLogger("pieton.scenario")

# Event name -> (required fields, optional fields with defaults)
EVENTS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "press": ((), {"held": 0.2}),
    "double_press": ((), {"held": 0.15, "gap": 0.3}),
    "hold": (("seconds",), {}),
    "light": (("lux",), {}),
    "gps": (("lat", "lon"), {}),
    "gps_route": (("points",), {"speed_mps": 1.4}),
    "gps_lost": ((), {}),
    "gps_regained": ((), {}),
    "gps_jump": (("lat", "lon"), {}),     # the receiver appears elsewhere at once
    "battery": (("percent",), {}),
    "disk_fill": (("free_mb",), {}),
    "speaker_failure": ((), {"broken": True}),
    "camera_failure": ((), {"broken": True}),
    "microphone_failure": ((), {"broken": True}),
    "power_cut": ((), {"restart_after": 5.0}),
    "expect": ((), {"state": None, "recordings": None, "refusals": None}),
    "note": (("text",), {}),
    "flash": (("bundle",), {}),          # a signed configuration bundle, as if over the serial link
    "assign": (("assignment",), {}),     # a signed assignment file (pieton assign --out)
    "technician": ((), {}),              # from then on, presses the button when a self-test asks
}


# The simulated device an event acts on.
DEVICE_OF = {"press": "button", "double_press": "button", "hold": "button", "light": "camera",
             "gps": "gps", "gps_route": "gps", "gps_lost": "gps", "gps_regained": "gps",
             "gps_jump": "gps", "battery": "battery", "speaker_failure": "speaker", "camera_failure": "camera",
             "microphone_failure": "microphone", "technician": "button"}


class ScenarioError(PietonError, ValueError):
    """A scenario file is malformed, or one of its expectations failed."""


@dataclass
class Event:
    at: float
    do: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class Scenario:
    name: str
    path: Path
    start_epoch: float
    duration: float
    events: list[Event]
    expect_fail: bool = False


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read scenario: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    head = data.get("scenario", {})
    problems = []
    unknown = set(data) - {"scenario", "event"}
    if unknown:
        problems.append(f"{path}: unknown section(s) {sorted(unknown)}; allowed: [scenario], [[event]]")
    start = head.get("start", "now")
    if start == "now":  # recordings dated when played: a fixed past date would be past retention
        start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    if not isinstance(start, dt.datetime) or start.tzinfo is None:
        problems.append(f"{path}: [scenario] start = {start!r}: must be \"now\" or a UTC date-time, "
                        "e.g. 2026-11-27T14:00:00Z")
        start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    duration = head.get("duration_s", 60.0)
    if not isinstance(duration, int | float) or isinstance(duration, bool) or duration <= 0:
        problems.append(f"{path}: [scenario] duration_s = {duration!r}: must be a positive number")
        duration = 60.0
    events = []
    for index, raw in enumerate(data.get("event", []), 1):
        where = f"{path}: event #{index}"
        do, at = raw.get("do"), raw.get("at")
        if do not in EVENTS:
            problems.append(f"{where}: do = {do!r}: must be one of {', '.join(EVENTS)}")
            continue
        if not isinstance(at, int | float) or isinstance(at, bool) or not 0 <= at <= duration:
            problems.append(f"{where} ({do}): at = {at!r}: must be a time in seconds from 0 to {duration}")
            continue
        required, optional = EVENTS[do]
        args = dict(optional)
        for key, value in raw.items():
            if key in ("do", "at"):
                continue
            if key not in required and key not in optional:
                problems.append(f"{where} ({do}): unknown field {key!r}; allowed: "
                                f"{', '.join(required + tuple(optional)) or 'none'}")
            args[key] = value
        missing = [k for k in required if k not in raw]
        if missing:
            problems.append(f"{where} ({do}): missing field(s) {', '.join(missing)}")
        events.append(Event(float(at), do, args))
    if problems:
        raise ScenarioError("\n".join(problems))
    events.sort(key=lambda e: e.at)
    return Scenario(head.get("name", path.stem), path, start.timestamp(), float(duration), events,
                    bool(head.get("expect_fail", False)))


def verdict(player) -> str | None:
    """None when the scenario went as its expectations say; else what went wrong."""
    scenario = player.scenario
    if scenario.expect_fail and not player.failures:
        return f"{scenario.path}: was expected to fail but every expectation held"
    if player.failures and not scenario.expect_fail:
        return f"{scenario.path}: " + "; ".join(player.failures)
    return None


class Player:
    """Plays a scenario's events against a running daemon's simulated hardware."""

    def __init__(self, scenario: Scenario, make_daemon, loop: asyncio.AbstractEventLoop, t0: float,
                 progress=None):
        self.scenario = scenario
        self.progress = progress    # progress(t, text): told of each event as it is played
        self.make_daemon = make_daemon
        self.loop = loop
        self.t0 = t0
        self.daemon = None
        self.daemons: list = []
        self.log: list[tuple[float, str]] = []
        self.failures: list[str] = []
        self.free_mb_override: float | None = None

    def now(self) -> float:
        return self.loop.time() - self.t0

    async def run(self) -> None:
        self.daemon = await self._boot()
        for event in self.scenario.events:
            delay = self.t0 + event.at - self.loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._do(event)
        rest = self.t0 + self.scenario.duration - self.loop.time()
        if rest > 0:
            await asyncio.sleep(rest)
        await self.daemon.shutdown("end of scenario")

    async def _boot(self, previous=None):
        daemon = self.make_daemon(previous)
        await daemon.start()
        daemon.free_mb_override = self.free_mb_override
        self.daemons.append(daemon)
        self.loop.create_task(self._restart_when_asked(daemon))
        return daemon

    async def _restart_when_asked(self, daemon) -> None:
        """A configuration applied between recordings restarts the daemon on it."""
        await daemon.wait_stopped()
        if daemon.restart_requested and daemon is self.daemon:
            await daemon.shutdown("configuration applied")
            self._say("configuration applied: restarting on it")
            self.daemon = await self._boot(previous=daemon)

    def _say(self, text: str) -> None:
        self.log.append((self.now(), text))
        log.info("t=%7.2f  %s", self.now(), text)
        if self.progress is not None:
            self.progress(self.now(), text)

    async def _do(self, event: Event) -> None:
        hw = self.daemon.hardware
        a = event.args
        do = event.do
        # Positions stay out of the logs, even the simulator's.
        self._say(do if do.startswith("gps") else f"{do} {a if a else ''}".strip())
        kind = DEVICE_OF.get(do)
        if kind is not None and getattr(hw, kind) is None:
            self._say(f"  ({do} has no effect: no {kind}: {self.daemon.faults.get(kind, 'not opened')})")
            return
        if do == "press":
            self._press(a["held"])
        elif do == "double_press":
            self._press(a["held"])
            self.loop.call_later(a["held"] + a["gap"], self._press, a["held"])
        elif do == "hold":
            self._press(a["seconds"])
        elif do == "light":
            hw.camera.set_light(a["lux"])
        elif do == "gps":
            hw.gps.set_position(a["lat"], a["lon"])
        elif do == "gps_route":
            hw.gps.set_route([tuple(p) for p in a["points"]], a["speed_mps"])
        elif do == "gps_lost":
            hw.gps.lose_fix()
        elif do == "gps_regained":
            hw.gps.regain_fix()
        elif do == "gps_jump":
            hw.gps.jump_to(a["lat"], a["lon"])
        elif do == "battery":
            hw.battery.set_level(a["percent"])
        elif do == "disk_fill":
            self.free_mb_override = float(a["free_mb"])
            self.daemon.free_mb_override = self.free_mb_override
        elif do == "speaker_failure":
            hw.speaker.fail(a["broken"])
        elif do == "camera_failure":
            hw.camera.fail() if a["broken"] else hw.camera.recover()
        elif do == "microphone_failure":
            hw.microphone.fail() if a["broken"] else hw.microphone.recover()
        elif do == "power_cut":
            await self._power_cut(a["restart_after"])
        elif do == "expect":
            self._expect(a)
        elif do == "note":
            pass
        elif do == "technician":
            self.loop.create_task(press_when_asked(lambda: self.daemon, self._press))
        elif do == "flash":
            answer = self.daemon.updater.offer(self._file(a["bundle"]), origin="scenario")
            self._say(f"  device answers: {answer.code}: {answer.message}")
        elif do == "assign":
            answer = self.daemon.assignment.offer(self._file(a["assignment"]), origin="scenario")
            self._say(f"  device answers: {answer.code}: {answer.message}")

    def _file(self, name: str) -> bytes:
        path = Path(name)
        if not path.is_absolute():
            path = self.scenario.path.parent / path
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ScenarioError(f"{self.scenario.path}: cannot read {path}: {exc.strerror}") from None

    def _press(self, held: float) -> None:
        button = self.daemon.hardware.button
        button.press()
        self.loop.call_later(held, button.release)

    async def _power_cut(self, restart_after: float) -> None:
        """Power lost: nothing is sealed or closed; the next start recovers what is left."""
        self.daemon.power_cut()
        await asyncio.sleep(restart_after)
        self._say("power back: restarting")
        self.daemon = await self._boot()

    def _expect(self, a: dict) -> None:
        machine = self.daemon.machine
        made = sum(len(d.machine.history) for d in self.daemons) + (1 if machine.current else 0)
        refused = sum(len(d.machine.refusals) for d in self.daemons)
        checks = [("state", a["state"], machine.state.value), ("recordings", a["recordings"], made),
                  ("refusals", a["refusals"], refused)]
        for name, wanted, actual in checks:
            if wanted is not None and wanted != actual:
                failure = f"t={self.now():.2f}: expected {name} = {wanted!r}, found {actual!r}"
                self.failures.append(failure)
                self._say("EXPECTATION FAILED: " + failure)


def run_scenario(scenario: Scenario, make_daemon, *, realtime: bool = False, progress=None) -> Player:
    """Run a scenario to its end; ``make_daemon(loop, wall_clock)`` builds a daemon;
    ``progress(t, text)``, if given, is told of each event as it is played."""
    if realtime:
        loop = asyncio.new_event_loop()
    else:
        loop = VirtualClockLoop(start=0.0)
    asyncio.set_event_loop(loop)
    wall = SimulatedWallClock(loop, scenario.start_epoch) if not realtime else None
    player = Player(scenario, lambda previous=None: make_daemon(loop, wall, previous), loop, loop.time(),
                    progress=progress)
    try:
        loop.run_until_complete(player.run())
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)
    return player


__all__ = ["Scenario", "Event", "ScenarioError", "load_scenario", "run_scenario"]
