"""A daemon on a virtual clock whose notice is at fault at start: the rig of the tests that
check starts are refused (L241-2) while the daemon, its status and its link stay up."""

from __future__ import annotations

import asyncio
from contextlib import contextmanager

from recorder.clock import VirtualClockLoop
from recorder.daemon import Daemon, Options
from recorder.state import NOTICE_FAULT


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
