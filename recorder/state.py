"""The recording state machine: ARMED -> RECORDING -> STOPPING -> ARMED.

It turns gestures into recordings. The red light follows the recording state itself:
on at the press edge that starts a recording, off only once its last segment is sealed.
The spoken notice starts as soon as the gesture is known (the first release), so the
recording contains it; a flagrant délit skips it, and the record says so and why.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from recorder.errors import DriverFault, PietonError
from recorder.gestures import FLAGRANT_DELIT, INTERVENTION, Gesture, GestureClassifier

log = logging.getLogger("pieton.state")


class State(Enum):
    ARMED = "armed"
    RECORDING = "recording"
    STOPPING = "stopping"


@dataclass
class StartCheck:
    allowed: bool
    why: str = ""
    flags: dict[str, Any] = field(default_factory=dict)


class Session(Protocol):
    """One recording in progress (evidence recording + media), as the machine sees it."""

    id: str

    def note(self, event: dict) -> None: ...
    def settle(self, reason: str, notice: dict) -> None: ...
    async def close(self, reason: str) -> None: ...


class Sessions(Protocol):
    def check_start(self) -> StartCheck: ...
    def open(self, started_mono: float, flags: dict) -> Session: ...


NOTICE_FAULT = "hors service : avis sonore (the notice audio cannot be read; CSI L241-2)"


class NoticePlayer(Protocol):
    text: str
    output: str           # the speaker's backend: "simulated" is never a notice given
    duration: float
    listen_after_s: float  # how long after its end the microphone is still searched

    def play(self) -> tuple[float, float]: ...   # (start time, duration); raises DriverFault
    def outcome(self, start: float, played: bool = True) -> dict[str, Any]: ...


@dataclass
class Recording:
    """What the machine knows of the recording in progress."""

    session: Session
    started: float
    reason: str | None = None
    notice: dict[str, Any] = field(default_factory=dict)
    bookmarks: list[float] = field(default_factory=list)
    stopped: float | None = None
    stop_reason: str | None = None
    # the notice still playing: (timer, its start, whether the speaker took it)
    notice_pending: tuple[asyncio.TimerHandle, float, bool] | None = None


class Machine:
    def __init__(self, config, loop: asyncio.AbstractEventLoop, feedback, notice: NoticePlayer,
                 sessions: Sessions):
        self.config = config
        self.loop = loop
        self.feedback = feedback
        self.notice = notice
        self.sessions = sessions
        self.state = State.ARMED
        self.current: Recording | None = None
        self.history: list[Recording] = []
        self.refusals: list[tuple[float, str]] = []
        self.gestures = GestureClassifier(config.gestures, loop, self.on_gesture,
                                          recording=lambda: self.state is not State.ARMED)
        self._reminder: asyncio.TimerHandle | None = None
        self._stopping: asyncio.Task | None = None
        self.idle = asyncio.Event()
        self.idle.set()
        self.on_change = None   # called after every state change (systemd STATUS=)
        self.on_closed = None   # called once a recording is closed (pending configuration)

    def _set_state(self, state: State) -> None:
        self.state = state
        if self.on_change is not None:
            self.on_change()

    def arm(self) -> None:
        self.feedback.armed_light(True, "armed")
        self.feedback.recording_light(False, "armed")

    # -- button ----------------------------------------------------------------------
    def button_edge(self, pressed: bool) -> None:
        """Called on the loop thread for every raw edge of the record button."""
        self.gestures.edge(pressed)

    def on_gesture(self, gesture: Gesture) -> None:
        handler = getattr(self, "_on_" + gesture.kind)
        try:
            handler(gesture)
        except Exception:  # a fault in one gesture must not take the daemon down
            log.exception("handling gesture %s failed", gesture.kind)
            self.feedback.error(f"internal error on {gesture.kind}")

    def _on_start(self, gesture: Gesture) -> None:
        if self.state is not State.ARMED:
            return
        if self.notice is None:  # its audio could not be read at start: no one could be told (CSI L241-2)
            self._refuse(gesture.time, NOTICE_FAULT)
            return
        check = self.sessions.check_start()
        if not check.allowed:
            self._refuse(gesture.time, check.why)
            return
        self.feedback.recording_light(True, "recording started")
        try:
            session = self.sessions.open(gesture.time, check.flags)
        except PietonError as exc:
            self.feedback.recording_light(False, "start failed")
            self._refuse(gesture.time, str(exc))
            return
        self._set_state(State.RECORDING)
        self.idle.clear()
        self.current = Recording(session=session, started=gesture.time)
        self.feedback.pulse("start")
        self._schedule_reminder()
        log.info("recording %s started", session.id)

    def _refuse(self, when: float, why: str) -> None:
        log.warning("start refused: %s", why)
        self.refusals.append((when, why))
        self.gestures.reset()
        self.feedback.error("start refused: " + why)

    def _on_notice(self, gesture: Gesture) -> None:
        rec = self.current
        if rec is None or rec.notice:
            return
        named = {"text": self.notice.text, "output": self.notice.output}
        try:
            start, duration = self.notice.play()
        except DriverFault as exc:
            rec.notice = {"given": False, "failed": str(exc), "time": gesture.time, **named}
            rec.session.note({"kind": "notice_failed", "time": gesture.time, "error": str(exc)})
            self.feedback.pulse("notice_not_played")
            log.warning("notice not played: %s", exc)
            self._await_notice(rec, gesture.time, self.notice.duration, played=False)
            return
        # Not given until the output confirms it ran to its end (CSI L241-2).
        rec.notice = {"given": False, "playing": True, "start": start, "duration": duration, **named}
        rec.session.note({"kind": "notice_played", "time": start, "duration": duration})
        self._await_notice(rec, start, duration, played=True)

    def _await_notice(self, rec: Recording, start: float, duration: float, played: bool) -> None:
        timer = self.loop.call_at(start + duration + self.notice.listen_after_s, self._notice_over, rec)
        rec.notice_pending = (timer, start, played)

    def _notice_over(self, rec: Recording) -> None:
        """The notice's time is over (or the recording stops first): what the speaker
        confirmed and what the microphone heard go into the recording."""
        if rec.notice_pending is None:
            return
        timer, start, played = rec.notice_pending
        timer.cancel()
        rec.notice_pending = None
        if rec.notice.get("skipped"):
            return
        try:
            outcome = self.notice.outcome(start, played)
        except Exception as exc:  # the check must never cost the recording
            log.exception("checking the notice failed")
            outcome = {"given": False, "failed": f"the notice could not be checked: {exc}"} if played else {}
        rec.notice.pop("playing", None)
        rec.notice.update(outcome)
        heard = outcome.get("heard", {})
        rec.session.note({"kind": "notice_checked", "time": self.loop.time(), "given": rec.notice["given"],
                          "heard": heard.get("verdict"), "peak": heard.get("peak")})
        if played and rec.notice["given"] is False:
            self.feedback.pulse("notice_not_played")
            log.warning("notice not confirmed: %s", rec.notice.get("failed"))
        if rec.reason is not None and self.state is State.RECORDING and rec is self.current:
            rec.session.settle(rec.reason, dict(rec.notice))

    def _on_reason(self, gesture: Gesture) -> None:
        rec = self.current
        if rec is None or rec.reason is not None:  # a settled reason is final
            return
        rec.reason = gesture.reason
        if gesture.reason == FLAGRANT_DELIT:
            rec.notice = {"given": False, "skipped": "flagrant_delit", "time": gesture.time}
            rec.session.note({"kind": "notice_skipped", "time": gesture.time, "why": "flagrant_delit"})
        rec.session.note({"kind": "trigger", "time": gesture.time, "reason": gesture.reason})
        rec.session.settle(gesture.reason, dict(rec.notice))

    def _on_bookmark(self, gesture: Gesture) -> None:
        rec = self.current
        if rec is None or self.state is not State.RECORDING:
            return
        rec.bookmarks.append(gesture.press_time)
        rec.session.note({"kind": "bookmark", "time": gesture.press_time})
        self.feedback.pulse("bookmark")

    def _on_stop(self, gesture: Gesture) -> None:
        self.stop("stopped by the agent", gesture.time)

    # -- stopping --------------------------------------------------------------------
    def stop(self, reason: str, when: float | None = None) -> asyncio.Task | None:
        """Seal and close the recording in progress; the red light goes off after."""
        if self.state is not State.RECORDING or self.current is None:
            return self._stopping
        self._notice_over(self.current)  # stopped while the notice plays: not confirmed
        self._set_state(State.STOPPING)
        self.current.stopped = self.loop.time() if when is None else when
        self.current.stop_reason = reason
        if self.current.reason is None:  # stopped before the reason settled
            self._on_reason(Gesture("reason", self.current.stopped, INTERVENTION))
        self._cancel_reminder()
        self._stopping = self.loop.create_task(self._close(self.current, reason))
        return self._stopping

    async def _close(self, rec: Recording, reason: str) -> None:
        try:
            await rec.session.close(reason)
        except Exception as exc:
            log.exception("closing recording %s failed", rec.session.id)
            self.feedback.error(f"closing failed: {exc}")
        finally:
            self.history.append(rec)
            self.current = None
            self._set_state(State.ARMED)
            self.feedback.recording_light(False, "last segment sealed")
            self.feedback.pulse("stop")
            self.gestures.reset()
            self.idle.set()
            log.info("recording %s closed: %s", rec.session.id, reason)
            if self.on_closed is not None:
                self.on_closed()

    def fault(self, what: str) -> None:
        """A hardware fault while running: the agent feels and sees it."""
        self.feedback.error(what)
        if self.current is not None:
            self.current.session.note({"kind": "driver_fault", "time": self.loop.time(), "what": what})

    # -- reminders -------------------------------------------------------------------
    def _schedule_reminder(self) -> None:
        self._reminder = self.loop.call_later(self.config.gestures.haptic_reminder_s, self._remind)

    def _remind(self) -> None:
        if self.state is State.RECORDING:
            self.feedback.pulse("reminder")
            self._schedule_reminder()

    def _cancel_reminder(self) -> None:
        if self._reminder is not None:
            self._reminder.cancel()
            self._reminder = None
