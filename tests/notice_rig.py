"""Rigs on a virtual clock for the notice and the gestures: the state machine driven
through the real gpiozero button, LEDs and haptic on MockFactory pins with the notice a
test gives it (``MachineRig``); a daemon whose notice is at fault at start, for the tests
that check starts are refused (L241-2) while the daemon, its status and its link stay up."""

from __future__ import annotations

import asyncio
from contextlib import contextmanager

from drivers.button import open_button
from drivers.gpio import reset_simulated_pins
from drivers.haptic import open_haptic
from drivers.leds import open_leds
from recorder.clock import VirtualClockLoop
from recorder.config import load_config
from recorder.daemon import Daemon, Options
from recorder.feedback import Feedback
from recorder.state import NOTICE_FAULT, Machine, StartCheck

T0 = 1000.0     # the virtual clock's reading at a machine rig's time 0


class SessionLog:
    """Records what the machine tells a recording (the evidence layer has its own tests)."""

    def __init__(self, n, started):
        self.id = f"rec-{n}"
        self.started = started
        self.events = []
        self.settled = None
        self.closed = None

    def note(self, event):
        self.events.append(event)

    def settle(self, reason, notice):
        self.settled = (reason, notice)

    async def close(self, reason):
        await asyncio.sleep(0.4)  # sealing the last segment takes time
        self.closed = reason


class Sessions:
    def __init__(self):
        self.opened = []
        self.allow = StartCheck(True)

    def check_start(self):
        return self.allow

    def open(self, started, flags):
        session = SessionLog(len(self.opened), started)
        self.opened.append(session)
        return session


class MachineRig:
    """The state machine, armed, with its button, LEDs and haptic; ``notice_for(rig)``
    makes its notice once the loop and configuration exist (and may add to ``devices``,
    closed with the rig)."""

    def __init__(self, notice_for):
        reset_simulated_pins()
        self.loop = VirtualClockLoop(start=T0)
        asyncio.set_event_loop(self.loop)
        self.config = load_config()
        self.button = open_button("simulated", 17)
        self.leds = open_leds("simulated", 27, 22)
        self.haptic = open_haptic("simulated", 23)
        self.devices = [self.button, self.leds, self.haptic]
        self.feedback = Feedback(self.leds, self.haptic, self.loop)
        self.sessions = Sessions()
        self.notice = notice_for(self)
        self.machine = Machine(self.config, self.loop, self.feedback, self.notice, self.sessions)
        self.button.start(self.loop, self.machine.button_edge)
        self.machine.arm()

    def at(self, t, fn):
        self.loop.call_at(T0 + t, fn)

    def run_until(self, t):
        self.loop.run_until_complete(asyncio.sleep(T0 + t - self.loop.time()))

    def press(self, t, held):
        self.at(t, self.button.press)
        self.at(t + held, self.button.release)

    def close(self):
        for device in self.devices:
            device.close()
        self.loop.close()
        asyncio.set_event_loop(None)


@contextmanager
def faulty_notice_daemon(config, state, chief_recipient):
    """Start a simulated daemon with ``config`` and yield it; shut it down after."""
    loop = VirtualClockLoop(start=100.0)
    asyncio.set_event_loop(loop)
    daemon = Daemon(config, Options(state, [chief_recipient], simulated=True, control_socket=False,
                                    notify=False), loop=loop)
    try:
        loop.run_until_complete(daemon.start())
        yield daemon
        loop.run_until_complete(daemon.shutdown("test over"))
    finally:
        loop.close()
        asyncio.set_event_loop(None)


def assert_a_press_is_refused(daemon) -> None:
    """A short press starts nothing: refused for the notice, with the error pattern."""
    loop = daemon.loop
    daemon.hardware.button.press()
    loop.run_until_complete(asyncio.sleep(0.2))
    daemon.hardware.button.release()
    loop.run_until_complete(asyncio.sleep(2.0))
    assert daemon.machine.current is None, "no recording starts without the notice"
    assert [why for _, why in daemon.machine.refusals] == [NOTICE_FAULT]
    assert any(c.why.startswith("error: start refused: hors service : avis sonore")
               for c in daemon.machine.feedback.timeline)
