"""The events of an extracted recording as one list for both reports: the extraction
report's timeline (UTC times, every detail) and the training report's (seconds into the
clip, words only, no identifying field: R241-13). The spans the recording lacked the red
light, its position, its image or its sound are told in words ("Sans signal visuel de …
à …", recorder/lapses.py), not as two raw events."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

from recorder.errors import VaultError
from recorder.lapses import SPANS, Lapse, is_lapse_event, lapses, visual_signal_spans
from recorder.notice import describe as describe_notice
from tools.desk.event_words import STOPS, TRIGGERS, describe, detail_key, detail_value
from tools.desk.words import seconds as seconds_fr
from tools.vault.events import event_epoch, event_kind
from tools.vault.layout import parse_time

# Events drawn elsewhere (the track has its own picture) or told as a span.
_POINTS = ("gps", "track", "fix", "position")
_HIDDEN_DETAIL = ("time", "type", "event", "kind", "mono", "at")
EPOCH_MIN, EPOCH_MAX = 1.0e9, 1.0e11   # a float in an event's details this size is a time (2001 on)


@dataclass(frozen=True)
class Row:
    at: float | None   # epoch seconds; None when the recording does not say
    kind: str          # start, pre-event, notice, stop, an event's kind, or the kind that opened a span
    text: str


def epoch(value) -> float | None:
    """A time as the report holds it (epoch number or ISO text), as epoch."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_time(value)
        except VaultError:
            return None
    return None


def _happened(event: dict) -> float | None:
    """When it happened: ``at`` when the event says (the media watchdog notes a loss after
    the fact, and the spool stamps ``time`` when it is noted), else its ``time``."""
    return epoch(event["at"]) if "at" in event else event_epoch(event)


def spans_of(summary: dict) -> list[Lapse]:
    """The recording's spans without the red light, position, image or sound: from its
    events, else (for the red light) from the spans its static metadata lists."""
    events = [e for e in summary.get("events") or [] if isinstance(e, dict)]
    found = lapses((event_kind(e), _happened(e), e.get("why") if isinstance(e.get("why"), str) else None)
                   for e in events)
    if not any(lapse.kind == SPANS for lapse in found):
        static = summary.get("recording") if isinstance(summary.get("recording"), dict) else {}
        found = sorted(found + visual_signal_spans(static), key=lambda lapse: lapse.start)
    return found


def spans_json(summary: dict, when: Callable[[float], str]) -> list[dict]:
    """The spans for the signed JSON report: what was missing, from, to, why, and in words."""
    return [{"what": lapse.words, "from": when(lapse.start), "to": when(lapse.end) if lapse.end is not None else None,
             "why": lapse.why, "words": lapse.in_words(when)} for lapse in spans_of(summary)]


def seconds(value) -> str:
    """A duration rounded as a reader wants it: ``30.1 s``, not ``30.133333333333383 s``."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:.1f} s"
    return f"{value} s"


def _detail(key: str, value, when: Callable[[float], str], french: bool = False) -> str:
    """An event's detail without internals: epoch times written by ``when``, other numbers
    rounded; for a French reader, the key and plain values in French and the decimal comma
    (the signed JSON keeps the metadata's identifiers)."""
    name = detail_key(key) if french else key.replace("_", " ")
    if isinstance(value, float) and math.isfinite(value):
        if EPOCH_MIN <= value <= EPOCH_MAX:
            return f"{name} {when(value)}"
        value = round(value, 2)
        if french:
            value = str(value).replace(".", ",")
    elif french:
        value = detail_value(value)
    return f"{name} {value}"


# What a kind-only event may still tell in words (training: nothing naming a place or person).
_PLAIN_DETAIL = ("kind", "type", "event", "duration", "pre_event_s", "on", "why")


def _event_words(event: dict, kind: str, detail: str, french: bool, details: bool) -> str:
    if not french:
        return kind.replace("_", " ") + (f" ({detail[:200]})" if detail else "")
    said = describe(event if details else {k: v for k, v in event.items() if k in _PLAIN_DETAIL})
    said = said or kind.replace("_", " ")
    return said + (f" (détails : {detail[:200]})" if detail else "")


def _french(kind: str, summary: dict, reason) -> str:
    """The start, pre-event, notice and stop rows in French (the HTML page's words)."""
    if kind == "start":
        return "Début de l'enregistrement" + (
            f" — déclenchement : {TRIGGERS.get(str(reason), str(reason))}" if reason else "")
    if kind == "pre-event":
        pre = summary["pre_event_s"]
        pre = pre if isinstance(pre, int | float) and not isinstance(pre, bool) and math.isfinite(pre) else None
        return f"Images d'avant le déclenchement : {seconds_fr(pre)} (vidéo seule, sans son)"
    closed = summary.get("closed") or {}
    if "reason" not in closed:
        return "Fin — enregistrement non clos (récupéré)"
    return f"Fin de l'enregistrement — {STOPS.get(str(closed['reason']), str(closed['reason']))}"


def rows(summary: dict, when: Callable[[float], str], *, details: bool = True, french: bool = False) -> list[Row]:
    """The recording's timeline. ``when`` writes a time; without ``details`` an event is
    told by its kind only (what an event carries may name a place or a person). ``french``:
    the words of the HTML pages ("Signet", "Avertissement donné (3,4 s)"); without it the
    English of the signed JSON report, a format other tools read."""
    static = summary.get("recording") if isinstance(summary.get("recording"), dict) else {}
    started = epoch(summary.get("started_at"))
    reason = static.get("trigger_reason") or static.get("reason")
    out = [Row(started, "start", _french("start", summary, reason) if french
               else "start" + (f" — trigger: {reason}" if reason else ""))]
    if summary.get("pre_event_s") is not None:
        out.append(Row(started, "pre-event", _french("pre-event", summary, reason) if french
                       else f"pre-event span: {seconds(summary['pre_event_s'])} (video only)"))
    notice = summary.get("notice")
    if isinstance(notice, dict) and "given" in notice:
        said = describe_notice(notice, "fr") if french else "spoken notice " + describe_notice(notice)
        if notice.get("text"):
            said += f" — « {notice['text']} »"
        out.append(Row(epoch(notice.get("start")) or started, "notice", said))
    elif isinstance(notice, str | bool | dict):
        out.append(Row(started, "notice", ("Avertissement : " if french else "spoken notice: ")
                       + json.dumps(notice, ensure_ascii=False)))
    for event in summary.get("events") or []:
        if not isinstance(event, dict):
            continue
        kind = event_kind(event)
        if ("lat" in event and kind in _POINTS) or is_lapse_event(kind):
            continue
        detail = ", ".join(_detail(k, v, when, french) for k, v in event.items()
                           if k not in _HIDDEN_DETAIL) if details else ""
        out.append(Row(event_epoch(event), kind, _event_words(event, kind, detail, french, details)))
    out.extend(Row(lapse.start, lapse.kind, lapse.in_words(when, why=details)) for lapse in spans_of(summary))
    closed = summary.get("closed") or {}
    out.append(Row(epoch(closed.get("ended_at")), "stop", _french("stop", summary, reason) if french
                   else f"stop — {closed.get('reason', 'not closed (recovered)')}"))
    return sorted(out, key=lambda row: (row.at is None, row.at or 0.0))  # in time order, undated last
