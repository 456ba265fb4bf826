"""A simulated camera on the technician's bench (no tests here): the daemon on a real-time
loop in a thread with its control socket, as `pieton run` runs it, a technician's finger
on its simulated button, and `pieton selftest` run against it."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sys
import threading
import time
from pathlib import Path

from conftest import SMALL_VIDEO, write_config

from recorder.config import load_config
from recorder.daemon import Daemon, Options
from recorder.selftest import press_when_asked
from tools.cli import main as pieton

# A second camera's pins, so that two benches can run at once on gpiozero's one MockFactory.
OTHER_PINS = {"gpio": {"button": 5, "red_led": 6, "green_led": 13, "haptic": 19, "ir_cut": 26,
                       "ir_illuminator": 16}}


class Bench:
    def __init__(self, root: Path, recipient: str, overrides: dict | None = None, *,
                 maintenance: str | None = None):
        self.state = root / "state"
        config = load_config(write_config(root / "cfg", {**SMALL_VIDEO, **(overrides or {})}))
        self.loop = asyncio.new_event_loop()
        self.daemon = Daemon(config, Options(self.state, [recipient], simulated=True, control_socket=True,
                                             notify=False), loop=self.loop)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="bench-daemon")
        self.thread.start()
        self.call(self.daemon.start() if maintenance is None else self.daemon.start_maintenance(maintenance))
        self.technician = None

    def call(self, coro, timeout: float = 60.0):
        """Run a coroutine on the daemon's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def do(self, fn, *args):
        """Call ``fn`` on the daemon's loop thread (the drivers' own thread) and wait."""
        async def on_loop():
            return fn(*args)
        return self.call(on_loop())

    def presses_when_asked(self) -> None:
        """The technician presses the record button whenever the self-test asks."""
        def press(held):
            button = self.daemon.hardware.button
            button.press()
            self.loop.call_later(held, button.release)
        self.technician = asyncio.run_coroutine_threadsafe(
            press_when_asked(lambda: self.daemon, press), self.loop)

    def stop_pressing(self) -> None:
        if self.technician is not None:
            self.technician.cancel()
            self.technician = None

    def wait_until(self, predicate, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.do(predicate):
                return True
            time.sleep(0.05)
        return False

    def selftest(self, *args: str, stdin: str = "") -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        old_stdin, sys.stdin = sys.stdin, io.StringIO(stdin)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = pieton(["selftest", "--state-dir", str(self.state), *args])
        finally:
            sys.stdin = old_stdin
        return code, out.getvalue(), err.getvalue()

    def report(self, *args: str, stdin: str = "") -> tuple[int, dict]:
        code, out, err = self.selftest("--json", *args, stdin=stdin)
        assert out.strip(), err
        return code, json.loads(out)

    def close(self) -> None:
        self.stop_pressing()
        try:
            self.call(self.daemon.shutdown("test over"))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)
            self.loop.close()


def rows(report: dict) -> dict[str, dict]:
    return {row["part"]: row for row in report["rows"]}
