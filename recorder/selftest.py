"""The commissioning self-test, on the camera's side (`pieton selftest` drives it).

The technician's command holds one connection to the control socket for the whole test:
``selftest_begin`` puts the armed camera in the test state (journaled; refused during a
recording), ``selftest_check`` runs one part's check and returns its row,
``selftest_confirm`` ends the parts only a person can judge (the red and green lights, the
vibration motor) with the technician's answer, ``selftest_end`` journals the report and
leaves the test state. The daemon also leaves it when that connection closes, when the
daemon stops, or after IDLE_S without a request.

In the test state the record button belongs to the test: its edges never reach the
gesture classifier, so a press can never start a recording, and the press the test asks
for is the test's. Nothing is recorded: the checks measure the running drivers, keep the
microphone's blocks in RAM for the time of a check, and write only a file of zeros.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recorder import selftest_checks as checks
from recorder.errors import PietonError
from recorder.hearing import AFTER_S, BEFORE_S, Ear
from recorder.selftest_checks import Row

log = logging.getLogger("pieton.selftest")

# The parts in the order they are checked: the quick readings, then the media, then what
# needs the technician (the button, then what they must look at or feel).
PARTS = ("clock", "battery", "storage", "gps", "camera", "ir", "microphone", "speaker",
         "button", "red", "green", "haptic")
CONFIRMED = ("red", "green", "haptic")
# The automatic checks that may run at the same time, group after group: the speaker's tone
# would raise the microphone's level, and night mode would change the frames counted.
AUTOMATIC = (("clock", "battery", "gps", "storage", "camera", "microphone"), ("ir", "speaker"))
IDLE_S = 120.0                 # without a request, the test is over (a technician who left)
BUTTON_TIMEOUT_S = 30.0
MAX_WAIT_S = 60.0              # for the press, and for a first GPS fix
BLINK_S = 0.3                  # the green light and the motor, shown by blinking


class SelfTestRefused(PietonError, RuntimeError):
    """The camera cannot enter (or is not in) the test state."""


class SelfTest:
    """The test state of one daemon. ``daemon`` gives the hardware, the state machine,
    the recordings' sessions, the storage and the journal it checks and records into."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.loop: asyncio.AbstractEventLoop = daemon.loop
        self.connection: int | None = None      # the technician's control connection
        self.rows: dict[str, Row] = {}
        self.started: float | None = None
        self.waiting_for_press = False
        self._pressed: asyncio.Event | None = None
        self._ear: Ear | None = None
        self._showing: dict[str, asyncio.Task | None] = {}   # lit until answered
        self._idle: asyncio.TimerHandle | None = None

    @property
    def active(self) -> bool:
        return self.started is not None

    # -- the button belongs to the test while it runs --------------------------------
    def route(self, gesture_edge: Callable[[bool], None]) -> Callable[[bool], None]:
        """The button's edge callback: to the test while it runs, else to the gestures."""
        def edge(pressed: bool) -> None:
            if self.active:
                if pressed and self._pressed is not None:
                    self._pressed.set()
                return
            gesture_edge(pressed)
        return edge

    # -- control commands --------------------------------------------------------------
    def handlers(self) -> dict[str, Callable[..., Any]]:
        return {"selftest_begin": self.begin, "selftest_check": self.check,
                "selftest_confirm": self.confirm, "selftest_end": self.end_request}

    def begin(self, connection: int | None = None) -> dict[str, Any]:
        d = self.daemon
        if d.machine is None:
            why = (d.maintenance or "starting")[:300]
            raise SelfTestRefused(f"the camera is not armed ({why}): no self-test; see pieton ctl status")
        if d.machine.current is not None:
            raise SelfTestRefused("a recording is in progress: the self-test runs only between recordings")
        if self.active:
            raise SelfTestRefused("a self-test is already running (another technician's connection)")
        self.started = self.loop.time()
        self.connection = connection
        self.rows = {}
        d.machine.gestures.reset()
        microphone = d.hardware.microphone if d.config.audio.enabled else None
        if microphone is not None:
            self._ear = Ear(microphone, checks.TONE_S + BEFORE_S + AFTER_S + 2.0)
        if d.spool is not None:
            checks.remove_stale_probes(d.spool.dir)
            d.spool.journal.append("selftest started", {"parts": list(PARTS)})
        self._touch()
        log.info("self-test started")
        return {"parts": list(PARTS), "confirmed": list(CONFIRMED), "camera_id": d.config.device.camera_id,
                "button_timeout_s": BUTTON_TIMEOUT_S}

    async def check(self, part: str | None = None, parts: list[str] | None = None,
                    timeout_s: float = BUTTON_TIMEOUT_S, fix_wait_s: float = 0.0,
                    connection: int | None = None) -> dict | list[dict]:
        """One part's row; or, with ``parts``, the rows of those automatic parts, checked
        together where they cannot disturb each other (``AUTOMATIC``). ``timeout_s``: how
        long the button check waits for the press; ``fix_wait_s``: how long the GPS and
        clock checks wait for a fix (a camera just started has none yet)."""
        self._own(connection)
        wanted = [part] if parts is None else list(parts)
        for name in wanted:
            if name not in PARTS:
                raise SelfTestRefused(f"unknown part {name!r}; parts: {', '.join(PARTS)}")
        automatic = {name for group in AUTOMATIC for name in group}
        if parts is not None and not set(wanted) <= automatic:
            raise SelfTestRefused(f"only the automatic parts are checked together: {', '.join(sorted(automatic))}")
        self._pause_idle()
        limits = (min(max(float(timeout_s), 0.1), MAX_WAIT_S), min(max(float(fix_wait_s), 0.0), MAX_WAIT_S))
        try:
            if parts is None:
                await self._one(part, *limits)
            else:
                for group in AUTOMATIC:
                    await asyncio.gather(*(self._one(name, *limits) for name in group if name in wanted))
        finally:
            self._touch()
        if not self.active:      # the test ended while the check ran (disconnect, stop)
            raise SelfTestRefused("the self-test ended while the check ran")
        if parts is None:
            return self.rows[part].as_dict()
        return [self.rows[name].as_dict() for name in wanted]

    async def _one(self, part: str, timeout_s: float, fix_wait_s: float) -> None:
        try:
            if part in ("gps", "clock"):
                row = await self._waiting(part, fix_wait_s)
            else:
                row = await self._run(part, timeout_s)
        except Exception as exc:  # noqa: BLE001 - a check that breaks is its part failing
            log.exception("self-test check %s failed", part)
            row = Row(part, False, f"the check failed: {type(exc).__name__}: {exc}", "the daemon's log")
        if self.active:
            self.rows[part] = row

    def confirm(self, part: str, seen: bool, connection: int | None = None) -> dict:
        """The technician's answer for a light or the motor shown by ``check``."""
        self._own(connection)
        if part not in CONFIRMED or part not in self.rows:
            raise SelfTestRefused(f"{part!r} was not shown: check it first")
        self._stop_showing(part)
        row = self.rows[part]
        if row.ok and not seen:
            row = Row(part, False, row.measured + "; the technician did NOT see/feel it",
                      _CONFIRM_CHECK[part])
        elif row.ok:
            row = Row(part, True, row.measured + "; confirmed by the technician")
        self.rows[part] = row
        self._touch()
        return row.as_dict()

    def end_request(self, connection: int | None = None) -> dict:
        self._own(connection)
        return self.end("finished")

    def end(self, why: str) -> dict:
        """Leave the test state, journal what was found; the report."""
        if not self.active:
            return {}
        for part in list(self._showing):
            self._stop_showing(part)
        rows = [self.rows.get(part, Row(part, False, f"not checked ({why})", "run the self-test to its end"))
                for part in PARTS]
        failed = [row.part for row in rows if not row.ok]
        report = {"ready": not failed, "failed": failed, "rows": [row.as_dict() for row in rows],
                  "seconds": round(self.loop.time() - self.started, 2), "ended": why}
        self.started, self.connection = None, None
        self._pressed = None
        self.waiting_for_press = False
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        self._drop_ear()
        d = self.daemon
        if d.machine is not None:
            d.machine.gestures.reset()
        if d.spool is not None:
            d.spool.journal.append("selftest ended", {"why": why, "ready": report["ready"], "failed": failed,
                                                      "rows": {r.part: r.ok for r in rows}})
        log.info("self-test ended (%s): %s", why, "ready" if not failed else "failed: " + ", ".join(failed))
        return report

    def disconnected(self, connection: int) -> None:
        if self.active and connection == self.connection:
            self.end("the technician's connection closed")

    def status(self) -> dict | None:
        if not self.active:
            return None
        return {"running_s": round(self.loop.time() - self.started, 1), "checked": list(self.rows)}

    # -- helpers -----------------------------------------------------------------------
    def _own(self, connection: int | None) -> None:
        if not self.active:
            raise SelfTestRefused("no self-test is running: selftest_begin first")
        if connection != self.connection:
            raise SelfTestRefused("the self-test belongs to another connection")

    def _touch(self) -> None:
        self._pause_idle()
        if self.active:
            self._idle = self.loop.call_later(IDLE_S, self.end, f"no request for {IDLE_S:g} s")

    def _pause_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _drop_ear(self) -> None:
        ear, self._ear = self._ear, None
        if ear is not None and ear.microphone is not None:
            ear.microphone.listeners[:] = [f for f in ear.microphone.listeners
                                           if getattr(f, "__self__", None) is not ear]

    async def _waiting(self, part: str, wait_s: float) -> Row:
        """The GPS or clock row, checked again for up to ``wait_s`` until it passes."""
        end = self.loop.time() + wait_s
        while True:
            row = await self._run(part, 0.0)
            if row.ok or self.loop.time() >= end or not self.active:
                return row
            await asyncio.sleep(0.25)

    async def _run(self, part: str, timeout_s: float) -> Row:
        d = self.daemon
        hw, sessions, faults = d.hardware, d.sessions, d.faults
        position = sessions.position if sessions is not None else None
        pipeline = sessions.pipeline if sessions is not None else None
        if part == "clock":
            return checks.clock_row(position)
        if part == "battery":
            return checks.battery_row(hw.battery, faults, d.config)
        if part == "storage":
            spool_dir = d.spool.dir if d.spool is not None else Path(d.state_dir)
            return await checks.storage_row(self.loop, d.storage, spool_dir, d.config)
        if part == "gps":
            return checks.gps_row(position, faults, d.config)
        if part == "camera":
            return await checks.camera_row(pipeline, hw.camera, faults)
        if part == "ir":
            return await checks.ir_row(pipeline, hw.camera, hw.ir, faults)
        if part == "microphone":
            ear = self._ear if hw.microphone is not None else None
            return await checks.microphone_row(self.loop, ear, faults)
        if part == "speaker":
            return await checks.speaker_row(self.loop, hw.speaker, self._ear, faults)
        if part == "button":
            return await self._button(timeout_s)
        return self._show(part)

    async def _button(self, timeout_s: float) -> Row:
        if self.daemon.hardware.button is None:
            return checks.missing("button", self.daemon.faults, "record button")
        self._pressed = asyncio.Event()
        self.waiting_for_press = True
        asked = self.loop.time()
        try:
            await asyncio.wait_for(self._pressed.wait(), timeout_s)
        except TimeoutError:
            return Row("button", False, f"no press within {timeout_s:g} s",
                       "the record button's switch and wiring ([gpio] button)")
        finally:
            self.waiting_for_press = False
            self._pressed = None
        return Row("button", True, f"pressed {self.loop.time() - asked:.1f} s after the request "
                                   "(the test's press: no recording)")

    def _show(self, part: str) -> Row:
        """Light the part (the red light steady, the green light and the motor blinking:
        the green one is already on while armed) until the technician answers."""
        d = self.daemon
        if part in self._showing:     # shown again: one blinking task only
            self._stop_showing(part)
        feedback = d.machine.feedback
        device = d.hardware.haptic if part == "haptic" else d.hardware.leds
        if device is None:
            return checks.missing("haptic" if part == "haptic" else "leds", d.faults,
                                  "vibration motor" if part == "haptic" else "lights")
        try:
            if part == "red":
                feedback.recording_light(True, "self-test")
                on = d.hardware.leds.is_lit("red")
            elif part == "green":
                feedback.armed_light(False, "self-test")
                off = not d.hardware.leds.is_lit("green")
                feedback.armed_light(True, "self-test")
                on = off and d.hardware.leds.is_lit("green")
            else:
                d.hardware.haptic.set(True)
                on = d.hardware.haptic.running
                d.hardware.haptic.set(False)
        except Exception as exc:  # noqa: BLE001 - any driver error is this row's failure
            self._restore(part)
            return Row(part, False, f"cannot be driven: {type(exc).__name__}: {exc}", _CONFIRM_CHECK[part])
        if not on:
            self._restore(part)
            return Row(part, False, "its pin does not follow", _CONFIRM_CHECK[part])
        self._showing[part] = self.loop.create_task(self._blink(part)) if part != "red" else None
        return Row(part, True, {"red": "lit steady", "green": "blinking", "haptic": "buzzing"}[part])

    async def _blink(self, part: str) -> None:
        d = self.daemon
        on = False
        while True:
            on = not on
            if part == "green":
                d.machine.feedback.armed_light(not on, "self-test")
            else:
                d.hardware.haptic.set(on)
            await asyncio.sleep(BLINK_S)

    def _stop_showing(self, part: str) -> None:
        task = self._showing.pop(part, None)
        if task is not None:
            task.cancel()
        self._restore(part)

    def _restore(self, part: str) -> None:
        """Back to what the armed state shows: red off, green on, motor still."""
        d = self.daemon
        try:
            if part == "red":
                d.machine.feedback.recording_light(False, "self-test over")
            elif part == "green":
                d.machine.feedback.armed_light(True, "self-test over")
            elif d.hardware.haptic is not None:
                d.hardware.haptic.set(False)
        except Exception as exc:  # noqa: BLE001 - the row already says the part failed
            log.warning("restoring %s after the self-test failed: %s", part, exc)


_CONFIRM_CHECK = {
    "red": "the red recording light (LED, its resistor, [gpio] red_led)",
    "green": "the green status light (LED, its resistor, [gpio] green_led)",
    "haptic": "the vibration motor and its transistor ([gpio] haptic)",
}


async def press_when_asked(daemon_now: Callable[[], Any], press: Callable[[float], None],
                           held_s: float = 0.2) -> None:
    """A technician at a simulated camera's bench (scenario event ``technician``): presses
    the record button each time a self-test asks for it."""
    while True:
        daemon = daemon_now()
        selftest = getattr(daemon, "selftest", None)
        if selftest is not None and selftest.waiting_for_press:
            press(held_s)
            while selftest.waiting_for_press:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)
