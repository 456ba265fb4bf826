"""The spans in which a recording lacked what it must show, in the words a court reads:
"Sans signal visuel de … à …" (the red light had failed, CSI L241-2), "Sans position GPS",
"Sans image", "Sans son".

The daemon notes the start and the end of each span as events of the recording's
metadata (recorder/visual_signal.py, recorder/position/tracker.py, recorder/media/health.py);
this pairs them. Shared by the scenario summary, the extraction report and the training
report, each giving its own way of writing a time (UTC, local, or seconds into a clip).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from recorder.visual_signal import SPANS

# The event that opens a span -> the event that ends it, and the span in words.
KINDS = {
    SPANS: ("visual_signal_lost_end", "Sans signal visuel"),
    "gps fix lost": ("gps fix regained", "Sans position GPS"),
    "video_lost": ("video_regained", "Sans image"),
    "audio_lost": ("audio_regained", "Sans son"),
}
ENDS = {end: start for start, (end, _words) in KINDS.items()}
UNTIL_THE_END = "jusqu'à la fin de l'enregistrement"


@dataclass(frozen=True)
class Lapse:
    kind: str              # the event that opened it
    start: float           # epoch seconds
    end: float | None      # None: it lasted to the end of the recording
    why: str | None = None

    @property
    def words(self) -> str:
        return KINDS[self.kind][1]

    def in_words(self, when: Callable[[float], str], *, why: bool = True) -> str:
        until = f"à {when(self.end)}" if self.end is not None else UNTIL_THE_END
        reason = f" ({self.why})" if why and self.why else ""
        return f"{self.words} de {when(self.start)} {until}{reason}"


def is_lapse_event(kind: str) -> bool:
    return kind in KINDS or kind in ENDS


def lapses(events: Iterable[tuple[str, float | None, str | None]]) -> list[Lapse]:
    """The spans opened and closed by ``events`` (kind, epoch, why), in time order; a span
    still open at the end of the events lasted to the end of the recording. Events
    without a time are left out (they cannot bound a span)."""
    timed = sorted(((t, kind, why) for kind, t, why in events if t is not None and is_lapse_event(kind)),
                   key=lambda e: (e[0], e[1] not in ENDS))  # a span that ends as another starts: end first
    open_at: dict[str, tuple[float, str | None]] = {}
    out = []
    for t, kind, why in timed:
        if kind in KINDS:
            open_at.setdefault(kind, (t, why))
        elif ENDS[kind] in open_at:
            start, first_why = open_at.pop(ENDS[kind])
            out.append(Lapse(ENDS[kind], start, t, first_why))
    out.extend(Lapse(kind, start, None, why) for kind, (start, why) in open_at.items())
    return sorted(out, key=lambda lapse: (lapse.start, lapse.kind))


def _epoch(iso) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp() if isinstance(iso, str) else None
    except ValueError:
        return None


def visual_signal_spans(static: dict) -> list[Lapse]:
    """The spans without the red light as the recording's static metadata lists them
    (``visual_signal_lost``: start and end in UTC, the end None while it lasted)."""
    spans = static.get(SPANS) if isinstance(static, dict) else None
    out = []
    for span in spans if isinstance(spans, list) else []:
        start = _epoch(span.get("start")) if isinstance(span, dict) else None
        if start is not None:
            why = span.get("why")
            out.append(Lapse(SPANS, start, _epoch(span.get("end")), why if isinstance(why, str) else None))
    return out
