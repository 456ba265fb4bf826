"""The red light as the law needs it (CSI L241-2: a visual signal shows that a recording runs).

``RedLight`` drives the LED and knows whether it can: its driver opened, setting it did
not raise and, where ``[gpio] red_led_sense`` is wired, the LED reads lit when driven on
and dark when driven off. ``VisualSignal`` watches it for the daemon:

- while the light cannot be driven, every start is refused ("hors service : voyant
  rouge", journaled, error pattern) and the status says so; each start first drives the
  light on and reads it back, so a light that works again is used again;
- a light that fails during a recording does not stop it: the error pattern repeats every
  ``ERROR_REPEAT_S`` and the recording's metadata marks the span "sans signal visuel"
  (``SPANS``, with its start and end, and a note at each end) until the light is back or
  the recording ends.

The light is driven again and read back every ``CHECK_S`` on the loop's clock, so a
light that fails (or comes back) is known within a second, in a scenario as on the device.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from recorder.evidence.format import utc_iso

log = logging.getLogger("pieton.visual_signal")

RED_LIGHT_FAULT = "hors service : voyant rouge"
LAW = "CSI L241-2"
FAULT_KEY = "red_light"          # its entry in the daemon's faults (the status)
SPANS = "visual_signal_lost"     # the recording's metadata: the spans without the light
SPAN_NOTE = "sans signal visuel"
SETTLE_S = 0.02          # a sense input's filter follows the LED within this after a change
CHECK_S = 1.0            # how often the light is driven again and read back
ERROR_REPEAT_S = 30.0    # the error pattern's period while a recording runs without the light


class RedLight:
    """The red LED of a leds driver (None when it failed to open, ``open_fault`` saying why).

    The last result is kept for each state asked (on, off): a dead LED reads dark
    correctly while off, so what was found when it was last driven on still counts until
    it is driven on again. ``on_change()`` is called whenever ``fault`` changes."""

    def __init__(self, leds, open_fault: str | None = None):
        self.leds = leds
        self.wanted = False
        never_opened = None if leds is not None else (open_fault or "no light driver")
        self._found: dict[bool, str | None] = {True: never_opened, False: never_opened}
        self.on_change: Callable[[], None] | None = None

    @property
    def fault(self) -> str | None:
        """Why the light cannot be driven, or None."""
        return self._found[False] or self._found[True]

    def drive(self, on: bool) -> bool:
        """Set the light and read it back; True when it is as asked."""
        changed = on != self.wanted
        self.wanted = on
        return self.check(SETTLE_S if changed else 0.0)

    def check(self, settle_s: float = 0.0) -> bool:
        """Set the light again to what is asked and read it back."""
        if self.leds is None:
            return False
        before = self.fault
        self._found[self.wanted] = self._drive_and_read(settle_s)
        if self.fault != before and self.on_change is not None:
            self.on_change()
        return self._found[self.wanted] is None

    def _drive_and_read(self, settle_s: float) -> str | None:
        state = "on" if self.wanted else "off"
        try:
            self.leds.set("red", self.wanted)
            reads = self.leds.red_reads(self.wanted, settle_s)
        except Exception as exc:  # noqa: BLE001 - however the light fails, it is the same fault
            return f"setting it {state} failed: {exc}"
        if reads is False:
            return f"driven {state}, its sense input reads it {'dark' if self.wanted else 'lit'}"
        return None


class VisualSignal:
    """Watches the red light for the daemon. ``feedback`` is the daemon's Feedback (its
    ``red`` is the RedLight); ``journal`` the device journal; ``faults`` the daemon's live
    map of faults, where the light's fault shows while it lasts."""

    def __init__(self, feedback, loop: asyncio.AbstractEventLoop, *, journal=None, faults: dict | None = None):
        self.feedback = feedback
        self.red: RedLight = feedback.red
        self.loop = loop
        self.journal = journal
        self.faults = faults if faults is not None else {}
        self._session = None             # the recording in progress (a LiveSession)
        self._spans: list[dict] = []     # its spans without the light
        self._reminder: asyncio.TimerHandle | None = None
        self._testing = False
        self._shown: str | None = None
        self.red.on_change = self._changed
        self._changed(signal=False)      # a driver that never opened: shown from the start

    def refusal(self) -> str:
        return f"{RED_LIGHT_FAULT} (the red light cannot be driven: {self.red.fault}; {LAW})"

    # -- starts ------------------------------------------------------------------------
    def start_refusal(self) -> str | None:
        """Before a start: the light is driven on and read back. None when it is lit (it
        stays on for the recording), else why the start is refused (the light off again)."""
        if self.red.leds is not None:
            self._testing = True    # a failure here is told by the refusal's own error pattern
            try:
                # Not in the timeline: the start that follows lights it there, at the same instant.
                if self.red.drive(True) and self.red.fault is None:
                    return None
                self.feedback.recording_light(False, "start refused: the red light cannot be driven")
            finally:
                self._testing = False
        return self.refusal()

    # -- recordings ----------------------------------------------------------------------
    def opened(self, session) -> None:
        """A recording opens (before its media starts: its metadata gets ``SPANS`` now)."""
        self._session, self._spans = session, []
        session.writer.static[SPANS] = []
        if self.red.fault is not None:     # failed between the start's check and now
            self._begin_span()

    def closing(self, session) -> None:
        """The recording closes: a span still open ends with it."""
        if session is self._session:
            self._end_span("the recording ended without the red light")
            self._session = None

    async def run(self) -> None:
        """Drive the light again and read it back every CHECK_S (a daemon task)."""
        while True:
            await asyncio.sleep(CHECK_S)
            try:
                self.red.check()
            except Exception:  # noqa: BLE001 - the watch must go on
                log.exception("checking the red light failed")

    # -- changes -------------------------------------------------------------------------
    def _changed(self, signal: bool = True) -> None:
        fault = self.red.fault
        if fault is None:
            if self._shown is not None:
                self._shown = None
                self.faults.pop(FAULT_KEY, None)
                log.warning("red light back")
                self._journal(None)
                self._end_span("the red light is back")
            return
        lost = self._shown is None
        self._shown = fault
        self.faults[FAULT_KEY] = self.refusal()
        if not lost:
            return
        log.error("red light: %s", fault)
        self._journal(fault)
        if signal and not self._testing:
            self.feedback.error("red light: " + fault)
        if self._session is not None:
            self._begin_span()

    def _journal(self, fault: str | None) -> None:
        if self.journal is None:
            return
        try:
            self.journal.append("driver fault", {"device": "red light", "fault": fault,
                                                 "now": RED_LIGHT_FAULT if fault else "back"})
        except Exception:  # noqa: BLE001 - a journal that cannot be written must not stop the watch
            log.exception("journaling the red light's fault failed")

    def _begin_span(self) -> None:
        if self._session is None or (self._spans and self._spans[-1]["end"] is None):
            return
        now = self.loop.time()
        self._spans.append({"start": self._utc(now), "end": None, "why": self.red.fault, "note": SPAN_NOTE})
        self._write_spans()
        self._session.note({"kind": "visual_signal_lost", "time": now, "why": self.red.fault, "note": SPAN_NOTE})
        self._reminder = self.loop.call_later(ERROR_REPEAT_S, self._remind)

    def _end_span(self, why: str) -> None:
        if self._reminder is not None:
            self._reminder.cancel()
            self._reminder = None
        if self._session is None or not self._spans or self._spans[-1]["end"] is not None:
            return
        now = self.loop.time()
        self._spans[-1] = {**self._spans[-1], "end": self._utc(now)}
        self._write_spans()
        self._session.note({"kind": "visual_signal_lost_end", "time": now, "why": why, "note": SPAN_NOTE})

    def _remind(self) -> None:
        self._reminder = None
        if self._session is None or self.red.fault is None:
            return
        self.feedback.error("red light still out: " + self.red.fault)
        self._reminder = self.loop.call_later(ERROR_REPEAT_S, self._remind)

    def _write_spans(self) -> None:
        # A new list each time: the media worker may be reading the old one to seal a segment.
        self._session.writer.static[SPANS] = [dict(span) for span in self._spans]

    def _utc(self, loop_time: float) -> str:
        return utc_iso(self._session.sessions.wall_at(loop_time))
