"""The daemon on a real-time loop in a thread of the test, as `pieton run` runs it."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from recorder.config import Config
from recorder.daemon import Daemon, Options


def daemon_in_thread(config: Config, state: Path, recipients: list[str], *,
                     notify: bool = False) -> tuple[Daemon, asyncio.AbstractEventLoop, threading.Thread]:
    """A simulated daemon started on its own loop in a thread (30 s at most); it runs until
    stopped or until it asks for a restart, then shuts down."""
    loop = asyncio.new_event_loop()
    daemon = Daemon(config, Options(state, recipients, simulated=True, control_socket=False, notify=notify),
                    loop=loop)
    started = threading.Event()

    def main():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(daemon.start())
        started.set()
        loop.run_until_complete(daemon.wait_stopped())
        loop.run_until_complete(daemon.shutdown("test over"))

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert started.wait(30), "the daemon did not start in 30 s"
    return daemon, loop, thread


def stop_daemon(daemon: Daemon, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    """Stop the daemon as SIGTERM does (its recording sealed), unless it stopped already."""
    if thread.is_alive():
        loop.call_soon_threadsafe(daemon.request_stop)
        thread.join(30)
    loop.close()
