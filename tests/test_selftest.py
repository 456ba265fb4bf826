"""`pieton selftest` against a running simulated camera: every part passes on healthy
simulated hardware; a fault injected into each driver in turn fails that part's row (and
only it) and the verdict is "not ready"; the test state records nothing, a press during
it never starts a recording, and the camera leaves it at the end or on a disconnect."""

from __future__ import annotations

import json

import pytest
from selftest_bench import OTHER_PINS, Bench, rows

from drivers.battery import SysfsBattery
from drivers.gpio import reset_simulated_pins
from recorder.control import Connection, request, socket_path
from recorder.errors import ControlError
from recorder.evidence.age import generate_identity
from recorder.selftest import PARTS
from tools.selftest_cmd import format_report


@pytest.fixture
def bench(tmp_path, chief):
    bench = Bench(tmp_path, chief[1], OTHER_PINS)
    try:
        assert bench.wait_until(lambda: bench.daemon.clock_synchronised(), 15), "the simulated GPS gave no fix"
        yield bench
    finally:
        bench.close()


def journal_events(bench) -> list[dict]:
    lines = (bench.state / "spool" / "journal.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_a_healthy_camera_is_ready_and_nothing_is_recorded(bench):
    bench.presses_when_asked()
    code, out, err = bench.selftest("--confirm-lights", "yes")
    assert code == 0, out + err
    lines = out.splitlines()
    table = lines[[line.split()[:3] for line in lines].index(["part", "result", "measured"]):]
    assert [line.split()[0] for line in table[1:1 + len(PARTS)]] == list(PARTS)
    assert all(line.split()[1] == "pass" for line in table[1:1 + len(PARTS)]), out
    assert "verdict: READY" in out and "self-test took" in out
    print("\n" + out)
    # The press the test asked for was the test's: no recording, nothing in the spool.
    assert bench.daemon.machine.history == [] and bench.daemon.machine.current is None
    assert not [p for p in (bench.state / "spool").iterdir() if p.is_dir()]
    assert not list((bench.state / "spool").glob(".selftest-write*"))
    events = [e for e in journal_events(bench) if e["event"].startswith("selftest")]
    assert [e["event"] for e in events] == ["selftest started", "selftest ended"]
    assert events[1]["data"]["ready"] is True and events[1]["data"]["failed"] == []
    # The camera is back to armed: red off, green on, and a press now starts a recording.
    assert not bench.daemon.hardware.leds.is_lit("red") and bench.daemon.hardware.leds.is_lit("green")
    bench.do(bench.daemon.hardware.button.press)
    assert bench.wait_until(lambda: bench.daemon.machine.current is not None, 5)


def _clock_off(bench):
    clock = bench.daemon.sessions.position.clock
    for _ in range(40):          # the receiver's time 30 s away from the camera's clock
        clock.note_fix(1_000_000.0, 1_000_030.0)


def _clock_on(bench):
    for _ in range(40):
        bench.daemon.sessions.position.clock.note_fix(1_000_000.0, 1_000_000.0)


def _broken_gauge(bench):
    folder = bench.state.parent / "sys-power"
    (folder / "BAT0").mkdir(parents=True, exist_ok=True)
    (folder / "BAT0" / "capacity").write_text("garbage\n")       # the gauge's kernel driver gone wrong
    bench.healthy_battery, bench.daemon.hardware.battery = bench.daemon.hardware.battery, SysfsBattery(
        "BAT0", root=folder)


def _close_red(bench):
    bench.daemon.hardware.leds.red.close()          # the gpiozero LED can no longer be driven


def _close_ir(bench):
    bench.daemon.hardware.ir.illuminator.close()    # the illuminator's pin is gone


hw = lambda bench: bench.daemon.hardware   # noqa: E731

# part -> (inject the fault into the running simulated hardware, heal it; or None: a fresh
# camera), answers to the lights' questions (None: --confirm-lights yes)
FAULTS = {
    "clock": (_clock_off, _clock_on, None),
    "battery": (_broken_gauge, lambda b: setattr(hw(b), "battery", b.healthy_battery), None),
    "storage": (lambda b: setattr(b.daemon, "free_mb_override", 10.0),
                lambda b: setattr(b.daemon, "free_mb_override", None), None),
    "gps": (lambda b: hw(b).gps.lose_fix(), lambda b: hw(b).gps.regain_fix(), None),
    "camera": (lambda b: hw(b).camera.fail(), lambda b: hw(b).camera.recover(), None),
    "ir": (_close_ir, None, None),
    "microphone": (lambda b: hw(b).microphone.fail(), lambda b: hw(b).microphone.recover(), None),
    "speaker": (lambda b: hw(b).speaker.mute(), lambda b: hw(b).speaker.mute(False), None),
    "button": (None, None, None),           # nobody presses: a switch that never closes
    "red": (_close_red, None, None),
    # A dark LED or a dead motor still has a pin that follows: the technician's eyes and
    # hand are the check, their "no" the fault.
    "green": (None, None, "y\nn\ny\n"),
    "haptic": (None, None, "y\ny\nn\n"),
}


@pytest.fixture(scope="module")
def shared_bench(tmp_path_factory):
    reset_simulated_pins()     # whatever an earlier test module left reserved
    bench = Bench(tmp_path_factory.mktemp("bench"), generate_identity()[1])
    try:
        assert bench.wait_until(lambda: bench.daemon.clock_synchronised(), 15), "the simulated GPS gave no fix"
        yield bench
    finally:
        bench.close()
        reset_simulated_pins()


@pytest.mark.parametrize("part", PARTS)
def test_a_fault_in_each_part_fails_its_row_and_the_verdict(part, request):
    assert set(FAULTS) == set(PARTS)
    inject, heal, answers = FAULTS[part]
    irreversible = inject is not None and heal is None
    bench = request.getfixturevalue("bench" if irreversible else "shared_bench")
    if inject is not None:
        bench.do(inject, bench)
    if part != "button":
        bench.presses_when_asked()
    try:
        if part == "gps":   # the last fix ages past [gps] max_fix_age_s
            assert bench.wait_until(lambda: bench.daemon.sessions.position.status()["gps"]["mode"] == 1, 10)
        lights = ["--confirm-lights", "yes"] if answers is None else []
        code, report = bench.report(*lights, "--button-timeout", "1", "--fix-wait", "0", stdin=answers or "")
    finally:
        bench.stop_pressing()
        if heal is not None:
            bench.do(heal, bench)
    assert code == 1 and report["ready"] is False
    by_part = rows(report)
    assert not by_part[part]["ok"] and by_part[part]["check"], by_part[part]
    assert report["failed"] == [part], report
    shown = format_report(report)
    assert f"{part:<12}FAIL" in shown and f"NOT READY: 1 part(s) failed: {part}" in shown
    assert "check: " + by_part[part]["check"] in shown
    if part == "gps":
        assert bench.wait_until(lambda: bench.daemon.sessions.position.status()["gps"]["mode"] == 3, 10)
    if part in ("camera", "microphone"):   # the pipeline sees its device again
        assert bench.wait_until(lambda: bench.daemon.sessions.pipeline.health.video_ok
                                and bench.daemon.sessions.pipeline.health.audio_ok, 5)


def test_refused_during_a_recording(bench):
    bench.do(bench.daemon.hardware.button.press)
    assert bench.wait_until(lambda: bench.daemon.machine.current is not None, 5)
    code, out, err = bench.selftest("--confirm-lights", "yes")
    assert code == 1 and "a recording is in progress" in err and "Traceback" not in err


def test_a_press_during_the_test_never_starts_a_recording_and_a_disconnect_ends_it(bench):
    path = socket_path(bench.state)
    with Connection(path) as connection:
        connection.request("selftest_begin")
        assert request(path, "status")["selftest"]["checked"] == []
        with pytest.raises(ControlError, match="another connection"):
            request(path, "selftest_check", part="clock")
        bench.do(bench.daemon.hardware.button.press)
        bench.do(bench.daemon.hardware.button.release)
        bench.do(bench.daemon.hardware.button.press)
        assert not bench.wait_until(lambda: bench.daemon.machine.current is not None, 2.5)
        bench.do(bench.daemon.hardware.button.release)
        row = connection.request("selftest_check", part="red")
        assert row["ok"] and bench.daemon.hardware.leds.is_lit("red")
    # The connection closed: the test state is left, the red light off again.
    assert bench.wait_until(lambda: not bench.daemon.selftest.active, 5)
    assert not bench.daemon.hardware.leds.is_lit("red")
    ended = [e for e in journal_events(bench) if e["event"] == "selftest ended"][-1]
    assert ended["data"]["why"] == "the technician's connection closed" and ended["data"]["ready"] is False
    assert bench.daemon.machine.history == [] and bench.daemon.machine.current is None


def test_refused_in_maintenance(tmp_path, chief):
    bench = Bench(tmp_path, chief[1], maintenance="every configuration failed to start")
    try:
        code, out, err = bench.selftest("--confirm-lights", "yes")
    finally:
        bench.close()
    assert code == 1 and "not armed (every configuration failed to start)" in err and "Traceback" not in err


def test_no_daemon_and_bad_arguments_are_clear_errors(tmp_path, capsys):
    from tools.cli import main as pieton
    assert pieton(["selftest", "--state-dir", str(tmp_path)]) == 1
    assert "no control socket" in capsys.readouterr().err
    assert pieton(["selftest", "--state-dir", str(tmp_path), "--button-timeout", "0"]) == 2
    assert "--button-timeout" in capsys.readouterr().err


def test_the_status_survives_a_battery_gauge_that_cannot_be_read(shared_bench):
    bench = shared_bench
    bench.do(_broken_gauge, bench)
    try:
        status = request(socket_path(bench.state), "status")
    finally:
        bench.do(lambda b: setattr(hw(b), "battery", b.healthy_battery), bench)
    assert status["battery_percent"] is None and "cannot read" in status["battery_error"]
    assert status["state"] == "armed"


def test_a_technician_who_leaves_ends_the_test_state(shared_bench, monkeypatch):
    import recorder.selftest
    monkeypatch.setattr(recorder.selftest, "IDLE_S", 0.5)
    bench = shared_bench
    with Connection(socket_path(bench.state)) as connection:
        connection.request("selftest_begin")
        connection.request("selftest_check", part="red")
        assert bench.wait_until(lambda: not bench.daemon.selftest.active, 5)
        assert not bench.daemon.hardware.leds.is_lit("red")
        with pytest.raises(ControlError, match="no self-test is running"):
            connection.request("selftest_check", part="clock")
    ended = [e for e in journal_events(bench) if e["event"] == "selftest ended"][-1]
    assert ended["data"]["why"] == "no request for 0.5 s"
