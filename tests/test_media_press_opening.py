"""The press does not wait for the recording's opening: its fsyncs (the signed opened line,
the rename into place, the journal) go on in the spool's opening thread while the media
worker takes the press and encodes its first frame; yet no segment, and so no media, is
on the card before the opened line is durable in place.

The opening is held by a Durability observer (told right after the ``.opening-`` folder's
fsync), standing for an fsync that takes long on a loaded SD card. The loop runs in real
time, as on the device: a virtual clock would hold still while the opening runs."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time

import pytest
from conftest import read_jsonl
from test_evidence_support import Device
from test_media_support import Rig

from recorder.clock import WallClock
from recorder.errors import EvidenceError
from recorder.evidence.age import load_identities
from recorder.evidence.format import OPENING_PREFIX, OPENING_UNDONE
from recorder.evidence.verify import verify_recording, verify_recordings
from recorder.evidence.verify_spool import verify_journal
from recorder.media.pipeline import MediaPipeline
from recorder.session import LiveSessions

pytestmark = pytest.mark.integration

HOLD_LIMIT_S = 5.0   # real seconds the opening is held at most (the watcher then gives up)


class RealTimeRig(Rig):
    """The media tests' rig on a real-time loop."""

    def __post_init__(self):
        super().__post_init__()
        self.pipeline.worker.shutdown()
        self.pipeline.router.close()
        self.loop.close()
        self.loop = asyncio.new_event_loop()
        self.wall = WallClock()
        self.spool.close()
        self.spool = self.device.spool(sync_interval=0.5, wall_clock=self.wall)
        self.pipeline = MediaPipeline(self.config, self.camera, self.microphone, self.ir, loop=self.loop,
                                      wall_clock=self.wall)


def test_the_press_is_encoded_while_the_opening_is_still_being_made_durable(tmp_path):
    rig = RealTimeRig(tmp_path)
    held, release = threading.Event(), threading.Event()
    seen: dict = {}

    def observer(kind, path, size):
        if kind == "dir" and OPENING_PREFIX in path and not held.is_set():
            held.set()
            release.wait(HOLD_LIMIT_S)   # the slow fsync

    rig.spool.durability.observer = observer
    sessions = LiveSessions(rig.config, rig.loop, rig.wall, spool=rig.spool, storage=rig.spool.storage)
    sessions.pipeline = rig.pipeline

    def watch() -> None:
        """While the opening is held: has the media worker got the press's first frame?"""
        deadline = time.monotonic() + HOLD_LIMIT_S
        while time.monotonic() < deadline:
            segmenter = rig.pipeline.router.segmenter
            if held.is_set() and segmenter is not None and "received" in segmenter.trace:
                seen["received_while_held"] = True
                seen["listing"] = sorted(p.name for p in rig.spool.dir.iterdir())
                seen["media_files"] = sorted(p.name for p in rig.spool.dir.rglob("seg-*"))
                break
            time.sleep(0.005)
        release.set()

    watcher = threading.Thread(target=watch, daemon=True)

    async def main():
        rig.pipeline.arm()
        await asyncio.sleep(2.5)   # the pre-event ring fills
        watcher.start()
        started = time.monotonic()
        session = sessions.open(rig.loop.time(), {"clock_source": "gps"})
        seen["open_s"] = time.monotonic() - started
        await asyncio.sleep(2.0)
        await session.close("stop")
        return session

    try:
        session = rig.run(main())
    finally:
        release.set()
        watcher.join(HOLD_LIMIT_S + 1)
        rig.close()
    assert held.is_set()
    # The press returned at once, and the worker encoded the press's first frame while the
    # opening's fsync was held...
    assert seen["open_s"] < HOLD_LIMIT_S / 2
    assert seen.get("received_while_held"), "the media worker waited for the opening's fsyncs"
    # ... while nothing named by the recording's id, and no segment, was on the card yet.
    rid = session.id
    assert OPENING_PREFIX + rid in seen["listing"] and rid not in seen["listing"]
    assert seen["media_files"] == []
    # Once the opening was durable: one verifiable recording, opened line first, the
    # press's media made durable after it, nothing left of the opening folder.
    folder = rig.spool.dir / rid
    assert not (rig.spool.dir / (OPENING_PREFIX + rid)).exists()
    report = verify_recording(folder, device_key=rig.device.signer.public_key,
                              identities=load_identities(rig.device.identity_file))
    assert report.ok, report.problems
    lines = read_jsonl(folder / "manifest.jsonl")
    assert lines[0]["event"] == "opened" and lines[-1]["event"] == "closed"
    assert any(line["event"] == "progress" for line in lines)
    journal = [line["event"] for line in read_jsonl(rig.spool.dir / "journal.jsonl")]
    assert journal.index("recording opened") < journal.index("recording closed")
    assert rig.pipeline.router.press_to_durable_s is not None


def test_an_opening_that_fails_in_its_thread_leaves_nothing_and_takes_no_number(tmp_path, monkeypatch):
    """The rename into place fails (an I/O error) after the press returned: the writer
    refuses segments with the reason, the ``.opening-`` folder is undone and journalled,
    and the next recording takes the number that was not used."""
    device = Device(tmp_path)
    spool = device.spool()
    spool.recover()
    real_rename = os.rename

    def failing(src, dst, *args, **kwargs):
        if OPENING_PREFIX in str(src):
            raise OSError(errno.EIO, "Input/output error", str(src))
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", failing)
    writer = spool.begin_recording(device.clock.now(), "agent", {"clock_source": "gps"})
    with pytest.raises(EvidenceError, match="could not be opened: .*Input/output error"):
        writer.open_segment()
    monkeypatch.undo()
    assert writer.close("stop") == {}    # nothing to close: nothing was recorded
    assert [p.name for p in spool.dir.iterdir() if p.is_dir()] == []
    journal = read_jsonl(spool.dir / "journal.jsonl")
    assert journal[-1]["event"] == OPENING_UNDONE and "Input/output error" in journal[-1]["data"]["why"]
    again = spool.open_recording(device.clock.now(), "agent", {"clock_source": "gps"})
    assert again.seq == writer.seq
    again.close("stop")
    spool.close()
    reports = verify_recordings(spool.recordings(), device_key=device.signer.public_key)
    assert [r.ok for r in reports] == [True]
    problems, _ = verify_journal(spool.dir, device.signer.public_key, reports)
    assert problems == []
