"""Recordings as the daemon runs them: the evidence recording in the spool, fed by the
media pipeline, with the metadata the law asks for (agent, reason, notice, place, time).

``LiveSessions`` decides whether a start is allowed (storage, commune boundary, the red
light lit: recorder/visual_signal.py) and
opens each recording; ``LiveSession`` is one recording in progress. They are given what
they use (the spool, the storage, the assignment, the hardware faults so far and a way to
report a media fault), never the daemon itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from recorder.clock import WallClock, wall_at
from recorder.device_rules import authorisation_refusal, recording_authorisation
from recorder.evidence.spool import Spool
from recorder.evidence.storage import Storage
from recorder.media.pipeline import MediaPipeline
from recorder.position import Position
from recorder.state import StartCheck

log = logging.getLogger("pieton.session")


class LiveSession:
    def __init__(self, sessions: LiveSessions, writer):
        self.sessions = sessions
        self.writer = writer
        self.id = writer.id

    def note(self, event: dict) -> None:
        event = dict(event)
        if "time" in event:  # loop time -> UTC, the monotonic time kept beside it
            event["mono"] = event["time"]
            event["time"] = self.sessions.wall_at(event["time"])
        pipeline = self.sessions.pipeline
        if pipeline is not None and pipeline.recording is self.writer:
            pipeline.note(event)   # the worker seals segments: keep notes in order with it
        else:
            self.writer.note(event)

    def settle(self, reason: str, notice: dict) -> None:
        notice = dict(notice)
        for key in ("start", "time"):
            if key in notice:
                notice[key] = self.sessions.wall_at(notice[key])
        # Both keys exist from the start: replacing a value is safe while the media worker
        # reads the dict to seal a segment; adding a key would not be.
        self.writer.static["trigger_reason"] = reason
        self.writer.static["notice"] = notice

    async def close(self, reason: str) -> None:
        if self.sessions.visual_signal is not None:
            self.sessions.visual_signal.closing(self)
        pipeline = self.sessions.pipeline
        try:
            if pipeline is not None:
                await pipeline.stop_recording()
        finally:
            if self.sessions.current is self:
                self.sessions.current = None
            self.writer.close(reason)


class LiveSessions:
    """The recordings of one daemon life.

    ``spool`` opens recordings and keeps the journal; ``storage`` judges free space;
    ``assignment`` (an AssignmentKeeper, or None) names the agent; ``faults`` is the
    daemon's live map of hardware faults, copied into each recording; ``on_fault(kind,
    what)`` reports a media fault (the daemon shows it and tells the state machine);
    ``visual_signal`` (a VisualSignal, or None) lights the red light for each start."""

    def __init__(self, config, loop: asyncio.AbstractEventLoop, wall: WallClock, *, spool: Spool,
                 storage: Storage, assignment=None, faults: Mapping[str, str] | None = None,
                 on_fault: Callable[[str, str], None] | None = None, visual_signal=None):
        self.config = config
        self.loop = loop
        self.wall = wall
        self.spool = spool
        self.storage = storage
        self.assignment = assignment
        self.faults = faults if faults is not None else {}
        self.on_fault = on_fault
        self.visual_signal = visual_signal
        self.pipeline = None
        self.position = None
        self.current: LiveSession | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self, hw) -> None:
        self._start_position(hw)
        self._start_media(hw)

    def _start_position(self, hw) -> None:
        self.position = Position(self.config, self.loop, hw.gps, wall_clock=self.wall,
                                 on_event=self._position_event)
        self.position.start()

    def _start_media(self, hw) -> None:
        self._start_pipeline(hw)
        if self.pipeline is not None and self.position is not None:
            # The overlay shows the fresh position, and clears it when the fix is lost.
            self.position.on_position = self.pipeline.set_position

    def _start_pipeline(self, hw) -> None:
        if hw.camera is None and hw.microphone is None:
            return
        # A device that fails to start is reported through on_fault; the other records.
        self.pipeline = MediaPipeline(self.config, hw.camera, hw.microphone, hw.ir, loop=self.loop,
                                      wall_clock=self.wall, on_fault=self._media_fault)
        self.pipeline.set_agent(self.agent_number())
        self.pipeline.arm()

    async def close(self) -> None:
        if self.pipeline is not None:
            await self.pipeline.close()
        if self.position is not None:
            self.position.close()

    # -- helpers ---------------------------------------------------------------------
    def wall_at(self, loop_time: float) -> float:
        return wall_at(self.wall.now(), self.loop, loop_time)

    def agent_number(self) -> str | None:
        if self.assignment is None:
            return None
        return self.assignment.agent_number(self.wall.now())

    def _media_fault(self, what: str) -> None:
        kind, _, _message = what.partition(": ")   # "camera: video lost", "encoder: ..."
        if self.on_fault is not None:
            self.on_fault(kind if kind in ("camera", "microphone", "encoder") else "media", what)

    def _position_event(self, event: dict) -> None:
        if self.current is not None:
            self.current.note(event)

    # -- starts ----------------------------------------------------------------------
    def check_start(self) -> StartCheck:
        flags: dict[str, Any] = {}
        refusal = self.storage.start_refusal()
        if refusal is not None:
            return StartCheck(False, refusal)
        refusal = authorisation_refusal(self.config, self.wall.now())  # R241-8: past the arrêté's end
        if refusal is not None:
            self.spool.journal.append("recording refused", {"why": refusal})
            return StartCheck(False, refusal)
        if self.position is not None:
            flags["clock_source"] = self.position.clock_status()["source"]
            allowed, position_flags = self.position.allows_start()
            flags.update(position_flags)
            if not allowed:
                self.spool.journal.append("recording refused", {"why": "outside the commune"},
                                                 personal=position_flags)
                return StartCheck(False, "outside the authorised commune", flags)
        else:
            flags["position"] = "unknown"
        refusal = self.visual_signal.start_refusal() if self.visual_signal is not None else None
        if refusal is not None:   # last: the light stays on only for a start that goes ahead
            self.spool.journal.append("recording refused", {"why": refusal})
            return StartCheck(False, refusal, flags)
        return StartCheck(True, "", flags)

    def open(self, started_mono: float, flags: dict) -> LiveSession:
        started_wall = self.wall_at(started_mono)
        pressed = self.pipeline.loop.time() if self.pipeline is not None else None  # the press
        authorisation = recording_authorisation(self.config)
        # The opening's fsyncs go on in the spool's opening thread: the media worker takes
        # the press now, and its segments open once the opened line is durable in place.
        writer = self.spool.begin_recording(
            started_wall, "pending", flags, authorisation=authorisation,
            submit=lambda fn, *args: self.loop.run_in_executor(self.spool.opener, fn, *args))
        agent = self.agent_number()
        if self.assignment is not None:
            writer.static.update(self.assignment.recording_static())
        else:
            writer.static.update({"agent": None, "agent_status": "agent not assigned"})
        writer.static.update({
            "trigger_reason": "pending",
            "notice": {},
            "camera_id": self.config.device.camera_id,
            "started_mono": started_mono,
            "config_signed": self.config.signed,
            "flags": flags,
            "hardware_faults": dict(self.faults),
            "authorisation": authorisation,
        })
        if self.position is not None:
            writer.static["clock"] = self.position.clock_status()
            writer.static["at_start"] = self.position.start_metadata()
        session = LiveSession(self, writer)
        if self.visual_signal is not None:
            self.visual_signal.opened(session)
        if self.pipeline is not None:
            self.pipeline.set_agent(agent)
            writer.static["pre_event_s"] = None    # what the media holds, set by its worker
            self.pipeline.start_recording(writer, pressed=pressed)
        self.current = session
        return session

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {"agent_assigned": self.agent_number() is not None}
        if self.position is not None:
            status.update(self.position.status())
        if self.pipeline is not None:
            status["media"] = self.pipeline.status()
        return status
