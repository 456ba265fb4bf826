"""The red light (CSI L241-2: a visual signal shows that a recording runs).

While the light cannot be driven (its driver failed to open, setting it raised, or its
sense input reads it otherwise than driven) every start is refused, journaled, with the
error pattern, and the daemon, its status and its serial link stay up. A light that fails
during a recording does not stop it: the error pattern repeats every 30 s and the
recording's metadata marks the span "sans signal visuel" until the light is back.
Everything runs on a virtual clock, through gpiozero's MockFactory pins.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import datetime

import pytest

from drivers.gpio import pin_factory, reset_simulated_pins
from drivers.leds import open_leds
from recorder.clock import SimulatedWallClock, VirtualClockLoop
from recorder.config import load_config
from recorder.config_update import load_device_config
from recorder.control import format_summary
from recorder.daemon import Daemon, Options
from recorder.evidence.age import load_identities
from recorder.evidence.format import utc_iso
from recorder.evidence.metadata import decrypt_metadata
from recorder.visual_signal import ERROR_REPEAT_S, RED_LIGHT_FAULT, SPAN_NOTE, SPANS, RedLight
from tests.conftest import ROOT, SMALL_VIDEO, read_jsonl, write_config
from tests.notice_rig import faulty_notice_daemon

SENSE_PIN = 5
START = 100.0            # the loop's clock at the daemon's start
EPOCH = 1_795_000_000.0  # the wall clock then (UTC)


class Camera:
    """A simulated daemon on a virtual clock; ``at(t)`` runs the loop until START + t."""

    def __init__(self, tmp_path, chief, overrides=None, *, control_socket=False):
        reset_simulated_pins()
        self.config = load_config(write_config(tmp_path / "cfg", {**SMALL_VIDEO, **(overrides or {})}))
        self.loop = VirtualClockLoop(start=START)
        asyncio.set_event_loop(self.loop)
        self.state_dir = tmp_path / "state"
        self.daemon = Daemon(self.config, Options(self.state_dir, [chief[1]], simulated=True,
                                                  control_socket=control_socket, notify=False),
                             loop=self.loop, wall_clock=SimulatedWallClock(self.loop, EPOCH))

    def start(self):
        self.loop.run_until_complete(self.daemon.start())
        return self.daemon

    def at(self, t):
        self.loop.run_until_complete(asyncio.sleep(START + t - self.loop.time()))

    def press(self, t, held):
        button = self.daemon.hardware.button
        self.loop.call_at(START + t, button.press)
        self.loop.call_at(START + t + held, button.release)

    def journal(self, event):
        return [line for line in read_jsonl(self.state_dir / "spool" / "journal.jsonl") if line["event"] == event]

    def error_patterns(self, why_starts=""):
        """Start times of the error patterns felt, whose green flashes start with ``error: why_starts``."""
        timeline = self.daemon.machine.feedback.timeline
        starts = []
        for change in timeline:
            if change.device == "green" and change.why.startswith("error: " + why_starts) and change.on is False:
                if not starts or change.time - starts[-1] > 2.0:
                    starts.append(change.time)
        return [t - START for t in starts]

    def close(self):
        try:
            self.loop.run_until_complete(self.daemon.shutdown("test over"))
        finally:
            self.loop.close()
            asyncio.set_event_loop(None)


def assert_refusing_starts(camera, t):
    """A press at ``t`` is refused because of the red light: journaled, error pattern."""
    daemon = camera.daemon
    refused = len(daemon.machine.refusals)
    camera.press(t, 0.1)
    camera.at(t + 2.0)
    assert daemon.machine.current is None, "no recording without the red light"
    assert len(daemon.machine.refusals) == refused + 1
    why = daemon.machine.refusals[-1][1]
    assert why.startswith(RED_LIGHT_FAULT) and "CSI L241-2" in why
    assert any(c.why.startswith("error: start refused: " + RED_LIGHT_FAULT) and c.time >= START + t
               for c in daemon.machine.feedback.timeline)
    assert why in [line["data"]["why"] for line in camera.journal("recording refused")]
    assert daemon.status()["state"] == "armed"
    assert not daemon.hardware.leds.is_lit("red") if daemon.hardware.leds is not None else True


def test_a_red_light_whose_driver_cannot_open_refuses_every_start_and_the_status_says_so(
        tmp_path, chief, serial_pty):
    """The red light's pin is held by something else (GPIOPinInUse): before, the daemon
    crashed at start; now it runs, refuses starts, serves its status and its link."""
    camera = Camera(tmp_path, chief, {"link": {"serial_port": serial_pty}}, control_socket=True)
    from gpiozero import LED
    squatter = LED(camera.config.gpio.red_led, pin_factory=pin_factory("simulated"))
    try:
        daemon = camera.start()
        assert "GPIO27" in daemon.faults["leds"]
        assert daemon.faults["red_light"].startswith(RED_LIGHT_FAULT)
        assert daemon.listener is not None, "the serial link is up: a new bundle can be flashed"
        assert_refusing_starts(camera, 1.0)
        assert_refusing_starts(camera, 10.0)
        assert "red_light: hors service : voyant rouge" in format_summary(daemon.status())

        async def ctl_status():   # the real command, while the loop serves the socket
            return await camera.loop.run_in_executor(None, lambda: subprocess.run(
                [sys.executable, "-m", "tools.cli", "ctl", "status", "--state-dir", str(camera.state_dir)],
                capture_output=True, text=True, timeout=120, cwd=ROOT))
        shown = camera.loop.run_until_complete(ctl_status())
        assert shown.returncode == 0, shown.stderr
        assert "hors service : voyant rouge" in shown.stdout and "ARMED" in shown.stdout
    finally:
        camera.close()
        squatter.close()


def test_a_red_light_that_cannot_be_set_refuses_starts_until_it_works_again(tmp_path, chief):
    camera = Camera(tmp_path, chief)
    try:
        daemon = camera.start()
        assert "red_light" not in daemon.faults
        daemon.hardware.leds.fail("output")
        camera.at(2.0)     # the light is driven again (off) every second: the fault is known
        assert daemon.status()["faults"]["red_light"].startswith(RED_LIGHT_FAULT)
        assert "does not respond" in daemon.status()["faults"]["red_light"]
        assert camera.error_patterns("red light: ") == [pytest.approx(2.0, abs=1.0)], "the agent feels it"
        lost = [line["data"] for line in camera.journal("driver fault")]
        assert lost and lost[-1]["device"] == "red light" and "does not respond" in lost[-1]["fault"]
        assert_refusing_starts(camera, 3.0)
        daemon.hardware.leds.recover()
        camera.at(8.0)     # it failed when last driven on: known to work only once lit again
        assert "setting it on failed" in daemon.faults["red_light"]
        camera.press(9.0, 0.1)
        camera.at(11.0)
        assert daemon.machine.current is not None and daemon.hardware.leds.is_lit("red")
        assert "red_light" not in daemon.faults
        assert camera.journal("driver fault")[-1]["data"]["now"] == "back"
    finally:
        camera.close()


def test_a_sensed_red_light_that_stays_dark_refuses_the_start(tmp_path, chief):
    """[gpio] red_led_sense wired: the LED driven on but reading dark (burnt out) is a
    light that cannot be driven, found at the press; once it lights again, starts go."""
    camera = Camera(tmp_path, chief, {"gpio": {"red_led_sense": SENSE_PIN}})
    try:
        daemon = camera.start()
        leds = daemon.hardware.leds
        assert leds.red_sense is not None and "red_light" not in daemon.faults
        leds.fail("dark")
        camera.at(1.0)
        assert "red_light" not in daemon.faults, "off, a dead LED reads dark as it should"
        assert_refusing_starts(camera, 2.0)
        assert "driven on, its sense input reads it dark" in daemon.faults["red_light"]
        camera.at(10.0)
        assert "red_light" in daemon.faults, "found dark when driven on: it stays out until it lights"
        leds.recover()
        camera.press(11.0, 0.1)
        camera.at(13.0)
        assert daemon.machine.current is not None
        assert pin_factory("simulated").pin(SENSE_PIN).state, "the sense reads the light lit"
        assert "red_light" not in daemon.faults
    finally:
        camera.close()


def read_metadata(recording, identity_file):
    identities = load_identities(identity_file)
    return [decrypt_metadata(path, identities) for path in sorted(recording.glob("*.meta.age"))]


@pytest.mark.parametrize(("fault", "back"), [("dark", True), ("output", False)],
                         ids=["dark, then back", "cannot be set, still out at the stop"])
def test_a_light_failing_during_a_recording_marks_the_span_and_repeats_the_error(tmp_path, chief, fault, back):
    camera = Camera(tmp_path, chief, {"gpio": {"red_led_sense": SENSE_PIN},
                                      "video": {**SMALL_VIDEO["video"], "fps": 5, "segment_seconds": 10.0}})
    try:
        daemon = camera.start()
        camera.press(1.0, 0.1)
        camera.at(5.0)
        recording = daemon.machine.current
        assert recording is not None
        daemon.hardware.leds.fail(fault)
        camera.at(5.0 + 2 * ERROR_REPEAT_S + 5.0)     # 70 s
        assert daemon.machine.current is recording, "the recording goes on without the light"
        assert daemon.faults["red_light"].startswith(RED_LIGHT_FAULT)
        lost_at = camera.error_patterns("red light: ")
        assert lost_at == [pytest.approx(5.0, abs=1.01)]
        repeats = camera.error_patterns("red light still out")
        assert repeats == [pytest.approx(lost_at[0] + ERROR_REPEAT_S, abs=0.01),
                           pytest.approx(lost_at[0] + 2 * ERROR_REPEAT_S, abs=0.01)]
        if back:
            daemon.hardware.leds.recover()
            camera.at(80.0)
            assert "red_light" not in daemon.faults
            camera.at(100.0)
            assert len(camera.error_patterns("red light still out")) == 2, "no reminder once the light is back"
        camera.press(101.0, 3.2)       # held: stop
        camera.at(110.0)
        assert daemon.machine.current is None and daemon.machine.history[-1] is recording
        assert recording.stop_reason == "stopped by the agent"
        folder = daemon.spool.dir / recording.session.id
    finally:
        camera.close()
    metas = read_metadata(folder, chief[0])
    spans = metas[-1]["recording"][SPANS]
    assert len(spans) == 1 and spans[0]["note"] == SPAN_NOTE == "sans signal visuel"
    assert "sans signal visuel" in json.dumps(metas[-1])
    assert metas[0]["recording"]["started_at"] == utc_iso(EPOCH + 1.0)
    why = "driven on, its sense input reads it dark" if fault == "dark" else "setting it on failed"
    assert why in spans[0]["why"]
    ended = 71.0 if back else 101.0 + 3.0     # the light back (within a check), or the stop's hold
    assert at(spans[0]["start"]) == pytest.approx(EPOCH + 5.0, abs=1.01)
    assert at(spans[0]["end"]) == pytest.approx(EPOCH + ended, abs=1.01)
    events = [e for m in metas for e in m["events"] if str(e.get("kind", "")).startswith("visual_signal")]
    assert [e["kind"] for e in events] == ["visual_signal_lost", "visual_signal_lost_end"]
    lost_event, end_event = events
    assert lost_event["time"] == pytest.approx(at(spans[0]["start"]), abs=0.001)
    assert end_event["time"] == pytest.approx(at(spans[0]["end"]), abs=0.001)
    assert ("back" if back else "recording ended") in end_event["why"]


def at(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_the_sense_input_is_read_back_as_the_bench_drives_it(monkeypatch):
    """The real gpiozero driver on mock pins, nothing simulating the LED: the test drives
    the sense pin as the LED's current would."""
    import gpiozero
    from gpiozero.pins.mock import MockFactory

    pins = MockFactory()
    monkeypatch.setattr(gpiozero.Device, "pin_factory", pins)
    leds = open_leds("gpiozero", 27, 22, SENSE_PIN)
    sense = pins.pin(SENSE_PIN)
    try:
        red = RedLight(leds)
        assert red.drive(False) and red.fault is None
        assert not red.drive(True) and "driven on, its sense input reads it dark" in red.fault
        sense.drive_high()
        assert red.check() and red.fault is None
        assert not red.drive(False) and "driven off, its sense input reads it lit" in red.fault
        sense.drive_low()
        assert red.check() and red.fault is None
        unsensed = open_leds("gpiozero", 23, 24)
        assert RedLight(unsensed).drive(True), "no sense input: set is all it knows"
        unsensed.close()
    finally:
        leds.close()


def test_a_red_light_stuck_lit_refuses_starts(tmp_path, chief):
    """Lit while driven off (a shorted switch): the light no longer tells a recording
    from none, so it cannot be driven either."""
    camera = Camera(tmp_path, chief, {"gpio": {"red_led_sense": SENSE_PIN}})
    try:
        daemon = camera.start()
        daemon.hardware.leds.fail("lit")
        camera.at(1.5)
        assert "driven off, its sense input reads it lit" in daemon.faults["red_light"]
        assert_refusing_starts(camera, 2.0)
    finally:
        camera.close()


def test_the_summary_names_every_fault_that_puts_the_camera_out_of_service(tmp_path, chief):
    """One mechanism for every fault that refuses starts: its text starts "hors service",
    and `pieton ctl status` shows that headline, the notice's as the red light's."""
    write_config(tmp_path / "cfg", SMALL_VIDEO)
    (tmp_path / "cfg" / "notice-fr.wav").unlink()
    config, _ = load_device_config(tmp_path / "cfg" / "pieton.toml", tmp_path / "state")
    with faulty_notice_daemon(config, tmp_path / "state", chief[1]) as daemon:
        daemon.hardware.leds.fail("output")
        daemon.loop.run_until_complete(asyncio.sleep(1.5))
        summary = format_summary(daemon.status())
    faults = next(line for line in summary.splitlines() if line.startswith("faults:"))
    assert "notice: hors service : avis sonore" in faults and "red_light: hors service : voyant rouge" in faults
    assert "notice-fr.wav" in daemon.faults["notice"], "the details stay for --verbose"
