"""Gestures from the record button's edges, on the daemon's clock.

Edges are timestamped by the daemon's loop (not by gpiozero's real-time ``when_held``),
so a scenario on a virtual clock classifies exactly as the device does. Debouncing acts
on the leading edge: the first edge counts at once (the red light must not wait), and
edges closer than ``debounce_ms`` to it are contact chatter; if the contact settled in the
other state, that state is taken when the chatter window ends.

From ARMED (no recording):
  press edge                        -> ``start``   (the red light goes on now)
  release before flagrant_delit_hold -> ``notice`` (spoken notice starts now)
  no second press within the window  -> ``reason('intervention')``
  second press within the window     -> ``reason('requested_by_person')``
  still held at flagrant_delit_hold  -> ``reason('flagrant_delit')``, no notice
While RECORDING:
  press released before stop_hold    -> ``bookmark`` (with the press time)
  still held at stop_hold            -> ``stop``
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

INTERVENTION = "intervention"
REQUESTED_BY_PERSON = "requested_by_person"
FLAGRANT_DELIT = "flagrant_delit"
REASONS = (INTERVENTION, REQUESTED_BY_PERSON, FLAGRANT_DELIT)


@dataclass(frozen=True)
class Gesture:
    """What the agent's hand said: ``kind`` is start, notice, reason, bookmark or stop."""

    kind: str
    time: float  # loop time of the edge (or hold threshold) it comes from
    reason: str | None = None
    press_time: float | None = None


class GestureClassifier:
    """Turns debounced edges into :class:`Gesture` events for the state machine."""

    def __init__(self, settings, loop: asyncio.AbstractEventLoop,
                 emit: Callable[[Gesture], None], recording: Callable[[], bool]):
        self.debounce = settings.debounce_ms / 1000.0
        self.double_window = settings.double_press_window_s
        self.flagrant_hold = settings.flagrant_delit_hold_s
        self.stop_hold = settings.stop_hold_s
        self._loop = loop
        self._emit = emit
        self._recording = recording
        self._pressed = False          # debounced state
        self._raw = False              # last raw level seen
        self._last_accepted = -1e9
        self._settle: asyncio.TimerHandle | None = None
        self._hold: asyncio.TimerHandle | None = None
        self._window: asyncio.TimerHandle | None = None
        self._press_time = 0.0
        self._phase = "idle"           # idle | first_press | window | second_press | bookmark_or_stop | held
        self.chatter_edges = 0

    # -- raw edges -------------------------------------------------------------------
    def edge(self, pressed: bool, now: float | None = None) -> None:
        now = self._loop.time() if now is None else now
        self._raw = pressed
        if now - self._last_accepted < self.debounce:
            self.chatter_edges += 1
            if self._settle is None:
                delay = self._last_accepted + self.debounce - now
                self._settle = self._loop.call_later(delay, self._settled)
            return
        if pressed != self._pressed:
            self._accept(pressed, now)

    def _settled(self) -> None:
        self._settle = None
        if self._raw != self._pressed:
            self._accept(self._raw, self._loop.time())

    def _accept(self, pressed: bool, now: float) -> None:
        self._last_accepted = now
        self._pressed = pressed
        if pressed:
            self._on_press(now)
        else:
            self._on_release(now)

    # -- gestures --------------------------------------------------------------------
    def _on_press(self, now: float) -> None:
        self._press_time = now
        if self._phase == "window":
            # Second press of a double press: the person asked for the recording.
            self._cancel("_window")
            self._phase = "second_press"
            self._emit(Gesture("reason", now, REQUESTED_BY_PERSON))
            return
        if self._recording():
            self._phase = "bookmark_or_stop"
            self._hold = self._loop.call_at(now + self.stop_hold, self._held_to_stop)
            return
        self._phase = "first_press"
        self._emit(Gesture("start", now))
        self._hold = self._loop.call_at(now + self.flagrant_hold, self._held_flagrant)

    def _on_release(self, now: float) -> None:
        self._cancel("_hold")
        phase, self._phase = self._phase, "idle"
        if phase == "first_press":
            self._emit(Gesture("notice", now))
            self._phase = "window"
            self._window = self._loop.call_at(now + self.double_window, self._window_closed)
        elif phase == "bookmark_or_stop":
            self._emit(Gesture("bookmark", now, press_time=self._press_time))

    def _held_flagrant(self) -> None:
        self._hold = None
        if self._phase == "first_press":
            self._phase = "held"
            self._emit(Gesture("reason", self._loop.time(), FLAGRANT_DELIT))

    def _held_to_stop(self) -> None:
        self._hold = None
        if self._phase == "bookmark_or_stop":
            self._phase = "held"
            self._emit(Gesture("stop", self._loop.time(), press_time=self._press_time))

    def _window_closed(self) -> None:
        self._window = None
        if self._phase == "window":
            self._phase = "idle"
            self._emit(Gesture("reason", self._loop.time(), INTERVENTION))

    def _cancel(self, name: str) -> None:
        handle = getattr(self, name)
        if handle is not None:
            handle.cancel()
            setattr(self, name, None)

    def reset(self) -> None:
        """Forget any gesture in progress (the recording it belonged to was refused)."""
        for name in ("_hold", "_window"):
            self._cancel(name)
        self._phase = "held" if self._pressed else "idle"
