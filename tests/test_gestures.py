"""Gestures and the state machine, driven through the real gpiozero Button on a
MockFactory pin, on a virtual clock."""

import pytest

from drivers.errors import DriverFault
from recorder.state import StartCheck, State
from tests.notice_rig import MachineRig


class Notice:
    text, output, duration, listen_after_s = "Attention", "test", 3.0, 0.5

    def outcome(self, start, played=True):
        return {"given": True} if played else {}

    def __init__(self, loop):
        self.loop = loop
        self.plays = []
        self.broken = False

    def play(self):
        if self.broken:
            raise DriverFault("speaker: no output")
        self.plays.append(self.loop.time())
        return self.loop.time(), 3.0


@pytest.fixture
def rig():
    rig = MachineRig(lambda rig: Notice(rig.loop))
    yield rig
    rig.close()


def test_short_press_is_an_intervention_with_notice_and_red_light_from_the_press_edge(rig):
    rig.press(1.0, 0.2)
    rig.run_until(1.0 + 0.0001)
    assert rig.leds.is_lit("red"), "the red light goes on at the press edge"
    rig.run_until(5.0)
    session = rig.sessions.opened[0]
    assert session.started == pytest.approx(1001.0)
    assert rig.notice.plays == [pytest.approx(1001.2)], "notice starts at the release"
    assert session.settled[0] == "intervention"
    assert session.settled[1]["given"] is True
    assert rig.machine.state is State.RECORDING and rig.leds.is_lit("red")


def test_double_press_is_at_the_persons_request_with_one_notice(rig):
    rig.press(1.0, 0.15)
    rig.press(1.5, 0.15)
    rig.run_until(4.0)
    session = rig.sessions.opened[0]
    assert len(rig.sessions.opened) == 1
    assert session.settled[0] == "requested_by_person"
    assert rig.notice.plays == [pytest.approx(1001.15)]
    assert not [e for e in session.events if e["kind"] == "bookmark"]


def test_long_press_is_flagrant_delit_without_notice(rig):
    rig.press(1.0, 2.0)
    rig.run_until(5.0)
    session = rig.sessions.opened[0]
    assert session.settled == ("flagrant_delit", {"given": False, "skipped": "flagrant_delit",
                                                  "time": pytest.approx(1002.5)})
    assert rig.notice.plays == []
    assert any(e["kind"] == "notice_skipped" for e in session.events)


def test_short_presses_while_recording_bookmark_and_only_a_long_hold_stops(rig):
    rig.press(1.0, 0.1)
    rig.press(5.0, 0.3)      # bookmark
    rig.press(8.0, 2.0)      # held 2 s: longer than a flagrant délit hold, still only a bookmark
    rig.press(12.0, 3.5)     # stop
    rig.run_until(15.1)
    assert rig.machine.state is State.STOPPING or rig.machine.state is State.ARMED
    rig.run_until(20.0)
    session = rig.sessions.opened[0]
    assert [e["time"] for e in session.events if e["kind"] == "bookmark"] == [
        pytest.approx(1005.0), pytest.approx(1008.0)]
    assert session.closed == "stopped by the agent"
    assert rig.machine.state is State.ARMED
    assert not rig.leds.is_lit("red")


def test_red_light_stays_on_until_the_last_segment_is_sealed(rig):
    rig.press(1.0, 0.1)
    rig.press(5.0, 3.2)
    rig.run_until(8.0 + 0.1)   # stop requested at 8.0, sealing takes 0.4 s
    assert rig.machine.state is State.STOPPING
    assert rig.leds.is_lit("red")
    rig.run_until(9.0)
    assert not rig.leds.is_lit("red")
    red = [c for c in rig.feedback.timeline if c.device == "red"]
    assert red[-1].why == "last segment sealed"
    assert red[-1].time == pytest.approx(1008.4)


def test_chatter_is_debounced_on_the_leading_edge(rig):
    def chatter_press():
        rig.button.press()
    for dt in (0.0, 0.003, 0.007, 0.012):  # bounce on the press
        rig.at(1.0 + dt, rig.button.press if dt in (0.0, 0.007) else rig.button.release)
    rig.at(1.012, rig.button.press)
    rig.at(1.2, rig.button.release)
    rig.run_until(3.0)
    assert len(rig.sessions.opened) == 1
    assert rig.sessions.opened[0].started == pytest.approx(1001.0)
    assert rig.sessions.opened[0].settled[0] == "intervention"
    assert rig.machine.gestures.chatter_edges >= 2


def test_refused_start_shows_the_error_pattern_and_no_red_light(rig):
    rig.sessions.allow = StartCheck(False, "outside the commune")
    rig.press(1.0, 0.1)
    rig.run_until(3.0)
    assert rig.sessions.opened == []
    assert not any(c.device == "red" and c.on for c in rig.feedback.timeline)
    assert any(c.device == "haptic" and c.why == "error" for c in rig.feedback.timeline)
    assert rig.machine.refusals[0][1] == "outside the commune"


def test_speaker_failure_gives_the_notice_not_played_pattern_and_is_recorded(rig):
    rig.notice.broken = True
    rig.press(1.0, 0.1)
    rig.run_until(3.0)
    session = rig.sessions.opened[0]
    assert any(e["kind"] == "notice_failed" for e in session.events)
    assert session.settled[1]["given"] is False
    assert any(c.why == "notice_not_played" for c in rig.feedback.timeline)
    assert rig.machine.state is State.RECORDING, "a broken speaker never refuses a start"


def test_haptic_reminder_every_two_minutes(rig):
    rig.press(1.0, 0.1)
    rig.run_until(1.0 + 241.0)
    reminders = {round(c.time - 1001.0) for c in rig.feedback.timeline if c.why == "reminder" and c.on}
    assert reminders == {120, 240}
