"""Playing a recording in the page: decrypted segment by segment and remuxed on the fly to
fragmented MP4, handed to the browser as it is made. Nothing decrypted is written to disk:
the muxer writes into a bounded queue in memory, read by the HTTP response."""

from __future__ import annotations

import logging
import queue
import threading

from starlette.concurrency import run_in_threadpool

from recorder.errors import PietonError
from tools.vault.remux import remux_to_mp4

# A fragment per keyframe, the movie header written with the first fragment. Not
# ``empty_moov``: the header would go out before the sound's first packet, whose ADTS
# header gives the AAC configuration, and the muxer then refuses that packet ("Malformed
# AAC bitstream"). The first bytes leave after one keyframe interval instead of at once.
FRAGMENTED = {"movflags": "frag_keyframe+default_base_moof"}
CHUNKS = 4            # fragments of MP4 (a keyframe interval each) waiting for the browser
_END = object()
log = logging.getLogger("pieton.desk")


class _Stopped(Exception):
    """The browser went away: the muxer stops writing."""


class _Sink:
    """What the muxer writes to: a bounded queue, so a slow browser slows the remux."""

    def __init__(self):
        self.queue: queue.Queue = queue.Queue(maxsize=CHUNKS)
        self.stopped = threading.Event()

    def write(self, data) -> int:
        chunk = bytes(data)
        while True:
            if self.stopped.is_set():
                raise _Stopped()
            try:
                self.queue.put(chunk, timeout=0.2)
                return len(chunk)
            except queue.Full:
                continue


def fragmented_mp4(rec):
    """The MP4 of an opened recording (``tools.vault.extract.OpenedRecording``), as
    byte chunks. Closing the iterator stops the remux."""
    sink = _Sink()

    def run():
        try:
            remux_to_mp4(rec.media(), sink, options=FRAGMENTED)
            rec.verified()  # checked alongside: a recording that no longer verifies is cut off
            sink.queue.put(_END)
        except _Stopped:
            pass
        except (PietonError, OSError) as exc:
            if sink.stopped.is_set():
                return  # the browser went away (PyAV reports the sink's refusal as an error)
            # Only the recording's id and the reason: nothing decrypted ever reaches a log.
            log.warning("playing %s stopped: %s", rec.recording_id, exc)
            sink.queue.put(exc)
        except Exception as exc:  # PyAV re-raises a sink error wrapped; the browser left
            if not sink.stopped.is_set():
                log.warning("playing %s stopped: %s", rec.recording_id, type(exc).__name__)
                sink.queue.put(exc)

    worker = threading.Thread(target=run, name=f"desk-play-{rec.recording_id}", daemon=True)
    worker.start()
    try:
        while True:
            item = sink.queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                return  # the browser sees a cut stream; the reason is in the desk's log
            yield item
    finally:
        sink.stopped.set()
        while not sink.queue.empty():  # let a blocked writer see the stop
            sink.queue.get_nowait()


async def play_body(rec):
    """``fragmented_mp4`` for a streaming HTTP response: each chunk awaited off the event
    loop; a browser that goes away closes the iterator, which stops the remux."""
    chunks = fragmented_mp4(rec)
    try:
        while True:
            chunk = await run_in_threadpool(next, chunks, None)
            if chunk is None:
                return
            yield chunk
    finally:
        chunks.close()
