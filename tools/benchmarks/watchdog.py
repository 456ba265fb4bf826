"""`pieton bench watchdog`: systemd watchdog pings and the control socket, on a real loop.

A real AF_UNIX datagram socket stands in for systemd. The watchdog runs with a 1 s
interval for 10 s (`--quick` 3 s) while the loop serves a busy stream of 1 ms timers:
the spacing of its pings (p50 / p99 / max) against the nominal half interval (the peer).
Then the loop hangs for 2.5 s in a callback: pings sent during the hang (must be 0), the
silence systemd sees (must exceed the interval, so systemd would restart the daemon),
and how long pings take to resume. Last, `status` round trips through the control
socket (p50 / p99), against a bare echo over the same kind of socket (the peer).
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

from recorder.control import ControlServer, request
from recorder.notify import Notifier, Watchdog

INTERVAL = 1.0
HANG_S = 2.5


class _Receiver:
    """Collects (monotonic time, message) of every datagram, on its own thread."""

    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.times: list[float] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                if self.sock.recv(256) == b"WATCHDOG=1":
                    self.times.append(time.monotonic())
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def _pings(path: Path, seconds: float) -> dict:
    receiver = _Receiver(path)
    dog = Watchdog(interval=INTERVAL, notifier=Notifier(str(path)), healthy=lambda: True)
    loop = asyncio.get_running_loop()
    busy = True

    def tick() -> None:  # a busy daemon: a timer every millisecond, a little work in each
        sum(range(200))
        if busy:
            loop.call_later(0.001, tick)

    tick()
    dog.start()
    await asyncio.sleep(seconds)
    steady = list(receiver.times)
    hang_start = time.monotonic()
    loop.call_soon(time.sleep, HANG_S)
    await asyncio.sleep(0)
    hang_end = time.monotonic()
    await asyncio.sleep(2 * INTERVAL)
    busy = False
    dog.stop()
    receiver.close()
    gaps = [b - a for a, b in zip(steady, steady[1:], strict=False)]
    during = [t for t in receiver.times if hang_start < t < hang_end]
    before = max(t for t in receiver.times if t <= hang_start)
    after = min(t for t in receiver.times if t >= hang_end)
    return {"pings": len(steady), "gap_p50_s": statistics.median(gaps), "gap_p99_s": _pct(gaps, 0.99),
            "gap_max_s": max(gaps), "pings_during_hang": len(during), "silence_s": after - before,
            "resume_after_hang_s": after - hang_end}


async def _control(path: Path, n: int) -> dict:
    async def echo(reader, writer):
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()

    status = {"state": "armed", "recording": None, "storage_free_mb": 20480.0, "battery_percent": 87.0,
              "faults": {}, "warnings": []}
    echo_path = path.with_name("echo.sock")
    echo_server = await asyncio.start_unix_server(echo, path=str(echo_path))

    def bare(k: int) -> list[float]:
        times = []
        for _ in range(k):
            start = time.perf_counter()
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(str(echo_path))
                sock.sendall(b'{"cmd": "status"}\n')
                sock.recv(4096)
            times.append(time.perf_counter() - start)
        return times

    def ours(k: int) -> list[float]:
        times = []
        for _ in range(k):
            start = time.perf_counter()
            request(path, "status")
            times.append(time.perf_counter() - start)
        return times

    async with ControlServer(path, {"status": lambda: status}):
        ctl = await asyncio.to_thread(ours, n)
        peer = await asyncio.to_thread(bare, n)
    echo_server.close()
    await echo_server.wait_closed()
    return {"status_p50_ms": 1000 * statistics.median(ctl), "status_p99_ms": 1000 * _pct(ctl, 0.99),
            "echo_p50_ms": 1000 * statistics.median(peer), "echo_p99_ms": 1000 * _pct(peer, 0.99)}


def run(args) -> dict:
    seconds = 3.0 if args.quick else 10.0
    with tempfile.TemporaryDirectory(prefix="pieton-bench-") as tmp:
        figures = asyncio.run(_pings(Path(tmp) / "notify.sock", seconds))
        print(f"watchdog: interval {INTERVAL:g} s, {figures['pings']} pings in {seconds:g} s under a 1 ms "
              f"timer load; spacing p50 {figures['gap_p50_s']:.3f} s, p99 {figures['gap_p99_s']:.3f} s, "
              f"max {figures['gap_max_s']:.3f} s (nominal {INTERVAL / 2:g} s)")
        print(f"hung loop ({HANG_S:g} s): {figures['pings_during_hang']} pings during the hang; systemd saw "
              f"{figures['silence_s']:.2f} s of silence (> {INTERVAL:g} s: restart); pings resumed "
              f"{figures['resume_after_hang_s']:.2f} s after the hang")
        control = asyncio.run(_control(Path(tmp) / "control.sock", 100 if args.quick else 500))
        print(f"control socket: status round trip p50 {control['status_p50_ms']:.2f} ms, "
              f"p99 {control['status_p99_ms']:.2f} ms; peer bare echo p50 {control['echo_p50_ms']:.2f} ms, "
              f"p99 {control['echo_p99_ms']:.2f} ms")
    figures.update(control)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}
