"""The notice as the recording tells it (CSI L241-2): given only when a real output
confirmed it ran to its end, and whether the camera's own microphone heard it. Driven
through the state machine, the real Notice, the simulated speaker and microphone sharing
one simulated room, on a virtual clock."""


import numpy as np
import pytest

from drivers.acoustics import Room
from drivers.microphone import SimulatedMicrophone
from drivers.speaker import PlaybackReport, SimulatedSpeaker
from recorder.hearing import correlate
from recorder.notice import Notice, describe
from tests.notice_rig import MachineRig
from tools.vault.report_events import rows as timeline_rows


def simulated_room(rig):
    """The real Notice on a simulated speaker and microphone sharing one simulated room; the
    microphone's blocks go to rig.recorded (the media pipeline's place)."""
    room = Room(seed=5)
    rig.speaker = SimulatedSpeaker(rig.loop, room)
    rig.microphone = SimulatedMicrophone(48000, room=room)
    rig.recorded = []
    rig.microphone.start(rig.loop, rig.recorded.append)
    rig.devices += [rig.speaker, rig.microphone]
    return Notice(rig.config, rig.speaker, rig.microphone)


@pytest.fixture
def rig():
    rig = MachineRig(simulated_room)
    rig.short_press = lambda at=1.0: rig.press(at, 0.2)
    yield rig
    rig.close()


def settled_notice(rig):
    session = rig.sessions.opened[0]
    reason, notice = session.settled
    assert reason == "intervention"
    return session, notice


def test_a_working_simulated_speaker_is_heard_but_never_given(rig):
    rig.short_press()
    rig.run_until(8.0)
    session, notice = settled_notice(rig)
    assert notice["given"] == "simulated" and notice["output"] == "simulated"
    assert notice["text"] == rig.config.notice.text
    assert notice["playback"]["finished"] and notice["playback"]["written"] == notice["playback"]["frames"]
    heard = notice["heard"]
    assert heard["verdict"] is True and heard["peak"] > 0.8, heard
    assert abs(heard["lag_ms"]) < 5.0  # the simulated room has no delay
    assert "playing" not in notice
    checked = [e for e in session.events if e["kind"] == "notice_checked"]
    assert checked and checked[0]["heard"] is True


def test_a_muted_speaker_is_played_but_not_heard(rig):
    rig.speaker.mute()  # the driver takes the sound; nothing comes out
    rig.short_press()
    rig.run_until(8.0)
    _, notice = settled_notice(rig)
    assert notice["heard"]["verdict"] is False and notice["heard"]["peak"] < 0.2, notice["heard"]


def test_a_failed_speaker_is_not_given_and_the_microphone_confirms_silence(rig):
    rig.speaker.fail()
    rig.short_press()
    rig.run_until(8.0)
    _, notice = settled_notice(rig)
    assert notice["given"] is False and "simulated speaker failed" in notice["failed"]
    assert notice["heard"]["verdict"] is False and notice["heard"]["peak"] < 0.2, notice["heard"]


def test_a_recording_stopped_while_the_notice_plays_does_not_say_it_was_given(rig):
    rig.short_press()
    rig.run_until(2.5)  # the 3 s notice is still playing
    assert rig.machine.current.notice["playing"] is True
    rig.machine.stop("stopped by the agent")
    rig.run_until(4.0)
    _, notice = settled_notice(rig)
    assert notice["given"] is False and "not confirmed the end" in notice["failed"]
    assert "playing" not in notice


def test_without_a_microphone_the_verdict_is_unknown(rig):
    notice = Notice(rig.config, rig.speaker, None)
    start, _ = notice.play()
    rig.run_until(6.0)
    out = notice.outcome(start)
    assert out["given"] == "simulated"
    assert out["heard"] == {"peak": 0.0, "lag_ms": 0.0, "verdict": None,
                            "why": "the microphone captured nothing during the notice"}


def test_a_real_outputs_complete_report_is_the_only_notice_given():
    report = PlaybackReport("sounddevice", 100, written=100, finished=True)
    assert report.complete and report.problem() is None
    assert PlaybackReport("sounddevice", 100, written=100, finished=True, underflows=1).problem() \
        == "the output underflowed 1 times"
    assert "cut after 40 of 100" in PlaybackReport("sounddevice", 100, written=40, cut=True).problem()
    assert "not confirmed the end" in PlaybackReport("sounddevice", 100, written=100).problem()


def test_correlate_finds_the_notice_and_its_lag_in_noise():
    rng = np.random.default_rng(1)
    template = rng.standard_normal(4000)
    captured = 0.3 * rng.standard_normal(12000)
    captured[2500:6500] += template
    peak, at = correlate(captured, template)
    assert at == 2500 and peak > 0.9
    peak, _ = correlate(0.3 * rng.standard_normal(12000), template)
    assert peak < 0.1
    assert correlate(np.zeros(5000), template) == (0.0, 0)
    with pytest.raises(ValueError):
        correlate(np.zeros(10), template)


def test_the_summary_and_the_vault_report_say_simulated_and_heard():
    simulated = {"given": "simulated", "duration": 3.03, "output": "simulated",
                 "heard": {"peak": 0.93, "lag_ms": 0.0, "verdict": True}}
    assert describe(simulated) == ("simulated speaker only, not given (3.0 s); microphone: heard "
                                   "(correlation peak 0.93, lag 0.0 ms)")
    given = {"given": True, "duration": 3.03, "heard": {"peak": 0.04, "lag_ms": 812.0, "verdict": False}}
    assert describe(given).startswith("given (3.0 s); microphone: NOT heard")
    assert describe({"given": False, "failed": "sounddevice speaker: the output underflowed 2 times"}) \
        .startswith("NOT GIVEN: sounddevice speaker: the output underflowed 2 times")
    assert describe({"given": False, "skipped": "flagrant_delit"}) == "skipped (flagrant delit)"
    rows = timeline_rows({"started_at": 0.0, "notice": {**simulated, "text": "Attention"}}, str)
    assert any("spoken notice simulated speaker only, not given" in row.text and "Attention" in row.text
               for row in rows)
    page = timeline_rows({"started_at": 0.0, "notice": {**simulated, "text": "Attention"}}, str, french=True)
    assert any(row.text == "Avertissement non donné : haut-parleur simulé seulement (3,0 s) ; microphone : entendu "
               "(pic de corrélation 0,93, décalage 0,0 ms) — « Attention »" for row in page)
