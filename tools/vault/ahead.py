"""Staging work done ahead on its own thread, taken in order by the thread that commits.

Ingest copies a recording while the one before is fsynced, verified and committed; the
commit (journal, register, index, each fsynced) runs on the caller's thread, so the copy
of the next recording goes on during it instead of waiting for it. The stage function
must not touch what only the caller's thread may (the vault's index and journal): what
it does wrong comes back as its result or is raised again at its turn.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_END = object()


class Ahead(Generic[T, R]):
    """``stage(x)`` for each x of ``items`` in order on one thread, at most ``depth``
    results ahead of the one taking them; iterate to take them, ``close()`` to stop."""

    def __init__(self, stage: Callable[[T], R], items: Iterable[T], depth: int):
        self._stage = stage
        self._items = list(items)
        self._done: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._ended = False
        self._thread = threading.Thread(target=self._run, name="vault-stage", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for item in self._items:
            if self._stop.is_set():
                break
            try:
                result = (self._stage(item), None)
            except BaseException as exc:  # noqa: BLE001 - raised again in the taker's thread
                result = (None, exc)
            self._done.put(result)
        self._done.put((_END, None))

    def __iter__(self) -> Iterator[R]:
        while True:
            result, error = self._done.get()
            if result is _END:
                self._ended = True
                return
            if error is not None:
                raise error
            yield result

    def close(self) -> list[R]:
        """Stop staging; returns the results staged but not taken (for clean-up)."""
        self._stop.set()
        left = []
        while not self._ended:
            result, _error = self._done.get()  # unblocks a stage waiting for room
            if result is _END:
                self._ended = True
            elif result is not None:
                left.append(result)
        self._thread.join()
        return left
