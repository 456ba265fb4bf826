"""NMEA 0183: bytes from a receiver -> checked sentences -> merged fixes.

One reader serves the serial backend, the simulated receiver and `pieton gps parse`, so
what a technician checks on a capture is exactly what the camera would record. The
regression logs gpsd ships with their expected output are the oracle
(tests/test_gps_nmea.py): after every sentence gpsd echoes, our fix equals its report.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from drivers.nmea.fix import Fix, Rejection
from drivers.nmea.framing import Framer, checksum_matches
from drivers.nmea.merge import TIME
from drivers.nmea.rules import SentenceRules
from drivers.nmea.sentences import (
    DECODED,
    NEEDED_FIELDS,
    PARSED,
    UNTIMED,
    classify,
    parsed_fields,
    plain_form,
)


class NmeaReader(SentenceRules):
    """Frames a byte stream (any mix of CR/LF, binary noise, sentences cut short) into
    sentences, checks them, and merges them into fixes as gpsd does.

    ``feed(data)`` returns the fixes completed by these bytes (one per receiver cycle);
    ``current()`` is the fix merged so far, after the last sentence. ``on_sentence``, if
    set, is called with each checked sentence's text once it is merged (to compare with
    gpsd sentence by sentence). Nothing a receiver sends makes it raise: what it cannot
    use is counted in ``stats.rejected`` by reason.
    """

    def __init__(self, *, comments: bool = False, clock: Callable[[], float] = time.monotonic,
                 century: int = 2000):
        super().__init__(clock=clock, century=century)
        self._framer = Framer(self.stats, comments=comments)
        self._repeated: dict[str, list[str]] = {}
        self.on_sentence: Callable[[str], None] | None = None
        handlers = {"RMC": self._rmc, "GGA": self._gga, "GSA": self._gsa, "GLL": self._gll,
                    "GNS": self._gns, "VTG": self._vtg, "ZDA": self._zda, "GBS": self._gbs}
        self._dispatch = {kind: (*DECODED[kind], handler) for kind, handler in handlers.items()}

    def feed(self, data: bytes) -> list[Fix]:
        """Consume bytes; return the fixes whose cycle they completed."""
        sentence = self._sentence
        for line, base in self._framer.lines(data):
            sentence(line, base)
        return self._take()

    def flush(self) -> list[Fix]:
        """End of stream: the unterminated tail is a sentence cut short, if anything."""
        for line, base in self._framer.rest():
            self._sentence(line, base)
        return self._take()

    def feed_sentence(self, text: str) -> list[Fix]:
        """One sentence, already framed (no line end); returns the fixes it completed."""
        for line, base in self._framer.single(text):
            self._sentence(line, base)
        return self._take()

    def _take(self) -> list[Fix]:
        out, self._out = self._out, []
        return out

    def _sentence(self, text: str, base: int) -> None:
        """One framed line (printable ASCII, starting with '$'), at ``base`` in the bytes
        of the framer's running XOR (sentence_fields, inline: it is the hot path)."""
        star = text.rfind("*")
        if star != len(text) - 3:
            self._unchecked(text, star)
            return
        kind = text[3:6]
        proprietary = text[1] == "P"
        if kind not in PARSED if not proprietary else not text.startswith("$PSRFEPE,"):
            self._ignored(text, star, base)
            return
        data = self._repeated.get(text) if kind in UNTIMED else None
        if data is None:
            data = self._fields(text, star, base)
            if type(data) is Rejection:
                self.stats.rejected[data] += 1
                return
            if kind in UNTIMED:
                # GSA and VTG carry no timestamp: a receiver repeats them word for word
                # every second while the sky or the speed do not change; parse them once
                if len(self._repeated) >= 64:
                    self._repeated.clear()
                self._repeated[text] = data
        # the merge, as gpsd's nmea_parse dispatches (talker ignored, field count checked)
        count = len(data) + 1          # gpsd counts the address field too
        self._latch_frac = False
        self._n_mode = 0
        self._time_refused = None
        mask = 0
        reason = None
        if proprietary:
            tag = "PSRFEPE"
            if count >= 8:
                mask = self._psrfepe(data)
                self._cycle_continue = False
            if self._time_refused is not None:
                mask = mask & TIME
                self.stats.rejected[self._time_refused] += 1
            else:
                self.stats.ignored += 1
        else:
            nf, cont, handler = self._dispatch[kind]
            if count >= nf:
                tag = kind
                mask, reason = handler(data, count, text[2])
                self._cycle_continue = cont
                if self._time_refused is not None:     # a time no receiver can mean: only the cycle
                    mask, reason = mask & TIME, self._time_refused
            else:
                tag = ""
            if reason is not None:
                self.stats.rejected[reason] += 1
            elif tag:
                self.stats.used += 1
            else:
                self.stats.ignored += 1
        if kind != "GSA":
            self._last_gsa_talker = ""
        if mask or self._latch_frac or self._cycle_continue:
            self._after(tag, mask)
        # else nothing this sentence says can change the fix or the cycle
        if self.on_sentence is not None:
            self.on_sentence(text)

    def _fields(self, text: str, star: int, base: int) -> list[str] | Rejection:
        """The sentence's fields as pynmea2 gives them, its checksum read from the framer's
        running XOR (sentence_fields, inline: it is the hot path)."""
        if not plain_form(text, star):
            return parsed_fields(text)
        if not checksum_matches(self._framer.xor, base, star, text[star + 1:]):
            return Rejection.CHECKSUM
        return text[7:star].split(",")

    def _ignored(self, text: str, star: int, base: int) -> None:
        """A sentence whose content we do not merge (satellites in view, text, depth...):
        checked, counted, and its effect on gpsd's cycle bookkeeping applied, unparsed."""
        if not checksum_matches(self._framer.xor, base, star, text[star + 1:]):
            self.stats.rejected[Rejection.CHECKSUM] += 1
            return
        kind = classify(text[:text.find(",")] if text[1] == "P" else text[:7])
        if type(kind) is Rejection:
            self.stats.rejected[kind] += 1
            return
        self.stats.ignored += 1
        self._latch_frac = False
        self._last_gsa_talker = ""
        tag, nf, cont = kind
        if nf and text.count(",", 0, star) + 1 >= nf:
            self._cycle_continue = cont
            if cont:
                self._after(tag, 0)
        elif self._cycle_continue:
            self._after("", 0)
        if self.on_sentence is not None:
            self.on_sentence(text)

    def _unchecked(self, text: str, star: int) -> None:
        """A sentence without a complete checksum: cut short, or sent without one."""
        kind = text[3:6]
        if star < 0:
            if text[1:2] != "P" and kind in NEEDED_FIELDS and text.count(",") < NEEDED_FIELDS[kind] - 1:
                reason = Rejection.TRUNCATED
            else:
                reason = Rejection.NO_CHECKSUM
        elif star > len(text) - 3:
            reason = Rejection.TRUNCATED
        else:
            reason = Rejection.MALFORMED
        self.stats.rejected[reason] += 1

    def __repr__(self) -> str:
        s = self.stats
        return (f"<NmeaReader read={s.read} used={s.used} ignored={s.ignored} "
                f"rejected={sum(s.rejected.values())} fixes={s.fixes}>")
