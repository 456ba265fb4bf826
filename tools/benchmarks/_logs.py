"""The daemon's log lines during a benchmark: counted by message and said once at the end,
instead of one line per press (the latency bench ends each recording before its notice
does, and the daemon warns each time, rightly)."""

from __future__ import annotations

import logging
from collections import Counter
from contextlib import contextmanager


class _Counting(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.counts: Counter = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[(record.levelname, str(record.msg).split(":")[0])] += 1


@contextmanager
def counted(logger: str = "pieton"):
    """Warnings and errors of ``logger`` counted, not printed; a summary line at the end."""
    log = logging.getLogger(logger)
    handler, propagate = _Counting(), log.propagate
    log.addHandler(handler)
    log.propagate = False
    try:
        yield handler.counts
    finally:
        log.removeHandler(handler)
        log.propagate = propagate
        if handler.counts:
            print("daemon log during the run: " + "; ".join(
                f"{n} x {level.lower()} '{what}'" for (level, what), n in handler.counts.most_common()), flush=True)
