"""NMEA 0183: bytes from a receiver -> checked sentences -> merged fixes.

One reader serves the serial backend, the simulated receiver and `pieton gps parse`, so
what a technician checks on a capture is exactly what the camera would record.

Sentences are checked and split exactly as pynmea2 does (position sentences in their plain
form are split here, for speed, to the same fields; pynmea2 parses the rest, and the tests
hold the two to agree). The merge follows gpsd's NMEA driver (driver_nmea0183.c):
talker-agnostic RMC/GGA/GSA/GLL/GNS/VTG/ZDA, a fix accumulated over one reporting cycle
and cleared when the receiver's timestamp moves on, the same fix-mode rules. The
regression logs gpsd ships with their expected output are the oracle (tests/test_gps_nmea.py).
On top of gpsd we refuse to take as good what no receiver can mean: minutes of 60 or
more, latitude beyond 90, a placeholder date (1980, the GPS epoch) and a jump no vehicle
can make; those are counted by reason and their position dropped.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import reduce
from operator import xor

import numpy as np
import pynmea2

NAN = math.nan
KNOTS_TO_MPS = 0.51444444
NMEA_MAX_LINE = 256          # longer lines are noise (real proprietary ones reach ~200)
EARTH_RADIUS_M = 6371008.8
MAX_PLAUSIBLE_SPEED_MPS = 600.0   # faster than any airliner: a jump, not a movement
JUMP_CONFIRMATIONS = 3            # consistent cycles at the new place before it is believed
PLACEHOLDER_YEAR = 2000           # receivers searching report 1980 (GPS epoch) or similar

# gpsd's mask bits, only those the merge needs
TIME, LATLON, MODE, STATUS, ALT, SPEED, TRACK, DOP, REPORT, CLEAR, HERR = (1 << i for i in range(11))

STATUS_UNK, STATUS_GPS, STATUS_DGPS = 0, 1, 2
_fromtimestamp = datetime.fromtimestamp

# why a line is rejected: the keys of NmeaStats.rejected
REASONS = ("checksum", "no checksum", "truncated", "noise", "too long", "malformed", "unknown",
           "absurd value", "placeholder date", "jump")


@dataclass(slots=True)
class Fix:
    """One position report. ``time`` is the receiver's UTC time (None while it has no
    date); ``lat``/``lon`` are None unless ``mode`` is 2 (2D) or 3 (3D); ``alt`` only in
    3D. ``eph_m`` is the horizontal uncertainty (95 %, metres) from the receiver or from
    HDOP as gpsd estimates it. ``received_mono`` is the monotonic time it arrived.
    Treat it as read-only (not frozen: a fix is built per receiver cycle, and frozen
    dataclasses cost three times as much to build)."""

    time: datetime | None
    lat: float | None
    lon: float | None
    alt: float | None
    mode: int
    sats: int | None
    hdop: float | None
    eph_m: float | None
    speed_mps: float | None
    track_deg: float | None
    received_mono: float
    flags: tuple[str, ...] = ()

    @property
    def has_position(self) -> bool:
        return self.mode >= 2 and self.lat is not None and self.lon is not None

    def as_dict(self) -> dict:
        """JSON-friendly form (the evidence metadata and `pieton gps parse --json`)."""
        out = {"time": self.time.isoformat().replace("+00:00", "Z") if self.time else None,
               "lat": self.lat, "lon": self.lon, "alt": self.alt, "mode": self.mode,
               "sats": self.sats, "hdop": self.hdop, "eph_m": self.eph_m,
               "speed_mps": self.speed_mps, "track_deg": self.track_deg}
        if self.flags:
            out["flags"] = list(self.flags)
        return out


@dataclass
class NmeaStats:
    """What the reader saw: every framed line is read, then used, ignored (valid but
    carries nothing we merge: satellites in view, text, vendor sentences) or rejected."""

    read: int = 0
    used: int = 0
    ignored: int = 0
    fixes: int = 0
    rejected: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"read": self.read, "used": self.used, "ignored": self.ignored, "fixes": self.fixes,
                "rejected": dict(sorted(self.rejected.items())),
                "rejected_total": sum(self.rejected.values())}


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def nmea_checksum(body: str) -> str:
    """The two hex digits of an NMEA checksum over ``body`` (between '$' and '*')."""
    value = 0
    for ch in body.encode("ascii"):
        value ^= ch
    return f"{value:02X}"


def sentence(body: str) -> str:
    """A complete sentence with its checksum, e.g. sentence('GPGGA,...')."""
    return f"${body}*{nmea_checksum(body)}"


def _num(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return NAN


def _atoi(text: str) -> int:
    """C atoi: leading integer, 0 when there is none."""
    try:
        return int(text)
    except ValueError:
        digits = ""
        for ch in text.strip():
            if ch.isdigit() or (not digits and ch in "+-"):
                digits += ch
            else:
                break
        try:
            return int(digits)
        except ValueError:
            return 0


_HHMMSS: dict[str, tuple[int, float] | bool] = {}
_DAY0: dict[tuple[int, int, int], float] = {}
_DDMMYY: dict[str, tuple[int, int, int] | bool] = {}
_COORD: dict[str, float | str | bool] = {}
_CACHE_MAX = 4096   # field strings repeat within a cycle (GGA, RMC, GLL share them)


def _remember(cache: dict, key: str, value):
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[key] = value
    return value


def _decode_hhmmss(text: str) -> tuple[int, float] | bool:
    """hhmmss[.sss] -> (hour, seconds since midnight), False if malformed (gpsd's
    merge_hhmmss: six digits, then optional fractions)."""
    if len(text) < 6 or not text[:6].isdigit():
        return _remember(_HHMMSS, text, False)
    nsec = 0
    frac = text[7:16]
    if text[6:7] == "." and frac[:1].isdigit():
        nsec = _atoi(frac) * 10 ** (9 - len(frac))
    hour = int(text[0:2])
    return _remember(_HHMMSS, text, (hour, hour * 3600 + int(text[2:4]) * 60 + int(text[4:6]) + nsec * 1e-9))


def _decode_ddmmyy(text: str) -> tuple[int, int, int] | bool:
    """ddmmyy -> (day, month, two-digit year), False if malformed."""
    if len(text) != 6 or not text.isdigit():
        return _remember(_DDMMYY, text, False)
    mday, mon = int(text[0:2]), int(text[2:4])
    if not (1 <= mon <= 12 and 1 <= mday <= 31):
        return _remember(_DDMMYY, text, False)
    return _remember(_DDMMYY, text, (mday, mon, int(text[4:6])))


def _decode_coord(text: str) -> float | str | bool:
    """NMEA (d)ddmm.mmmm -> degrees; 'absurd' for minutes of 60 or more or degrees out
    of range (placeholders such as 8960.000000); False if unreadable."""
    try:
        dot = text.index(".")
        whole = int(text[:dot]) if dot else 0
        minutes = whole % 100 + float(text[dot:])
    except ValueError:
        return _remember(_COORD, text, False)
    value = whole // 100 + minutes / 60.0
    if minutes >= 60.0 or value > 180.0 or whole < 0 or value != value:
        return _remember(_COORD, text, "absurd")
    return _remember(_COORD, text, value)


class PositionCheck:
    """Plausibility of positions, shared by the NMEA reader and the gpsd backend: a value
    outside the globe, or a move faster than anything on the ground, is not a position.
    A far-away position is believed once it repeats consistently (the receiver really
    moved, or the first fix after a long gap)."""

    def __init__(self, max_speed_mps: float = MAX_PLAUSIBLE_SPEED_MPS,
                 confirmations: int = JUMP_CONFIRMATIONS):
        self.max_speed = max_speed_mps
        self.confirmations = confirmations
        self._ref: tuple[float, float, float | None] | None = None
        self._candidate: tuple[float, float, float | None] | None = None
        self._candidate_count = 0

    def reset(self) -> None:
        self._ref = self._candidate = None
        self._candidate_count = 0

    def _far(self, a: tuple, lat: float, lon: float, t: float | None) -> bool:
        # cheap bound first: |dlat|+|dlon| in degrees, times the metres of a degree
        near = (abs(a[0] - lat) + abs(a[1] - lon)) * 111195.0
        if near <= self.max_speed:
            return False
        dt = abs(t - a[2]) if (t is not None and a[2] is not None) else 1.0
        return distance_m(a[0], a[1], lat, lon) > self.max_speed * max(dt, 1.0)

    def check(self, lat: float, lon: float, t: float | None) -> str | None:
        """None when plausible, else the rejection reason. ``t`` is the receiver's time
        (epoch seconds), None when it has no date yet."""
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            return "absurd value"
        ref = self._ref
        if ref is not None and ref[0] == lat and ref[1] == lon:
            self._ref = (lat, lon, t)       # still here now: a later jump is measured from now
            return None
        if ref is None or not self._far(ref, lat, lon, t):
            self._ref = (lat, lon, t)
            self._candidate = None
            self._candidate_count = 0
            return None
        cand = self._candidate
        if cand is not None and not self._far(cand, lat, lon, t):
            if t is None or t != cand[2]:      # one confirmation per receiver cycle
                self._candidate_count += 1
        else:
            self._candidate_count = 1
        self._candidate = (lat, lon, t)
        if self._candidate_count >= self.confirmations:
            self._ref = self._candidate
            self._candidate = None
            self._candidate_count = 0
            return None
        return "jump"


# Sentence types gpsd decodes (they reset the "cycle continues" flag); the value is
# (minimum field count, does it continue the cycle). Others are ignored like unknown ones.
_DECODED = {
    "GGA": (13, False), "GLL": (7, True), "GNS": (13, False), "GSA": (18, False),
    "GSV": (0, False), "RMC": (8, False), "VTG": (5, False), "ZDA": (4, False),
    "TXT": (5, False), "GBS": (7, False), "GST": (8, False), "DTM": (2, False),
    "HDT": (1, False), "HDG": (0, False), "THS": (0, False), "DBT": (7, False),
    "BWC": (12, False), "MWD": (0, False), "MWV": (0, False),
}
_USED = frozenset(("GGA", "GLL", "GNS", "GSA", "RMC", "VTG", "ZDA"))
_PARSED = _USED | {"GBS"}
_UNTIMED = frozenset(("GSA", "VTG"))
_TALKER_TYPES = frozenset(pynmea2.TalkerSentence.sentence_types) | set(_DECODED)
_NEEDED_FIELDS = {"GGA": 14, "GLL": 7, "GNS": 13, "RMC": 12, "GSA": 18, "VTG": 9, "ZDA": 6}

_ADDRESSES: dict[str, tuple[str, int, bool] | str] = {}

# The plain form of a sentence we merge, where splitting it ourselves gives by
# construction what pynmea2's regular expression gives: '$', a talker of two upper-case
# letters or digits (a first 'P' or 'p' makes pynmea2 read a proprietary sentence, so
# lower case is left to it), the type, ',', no other '*', two hex digits.
_TALKER_FIRST = frozenset("ABCDEFGHIJKLMNOQRSTUVWXYZ0123456789")
_TALKER_SECOND = _TALKER_FIRST | {"P"}
_HEX_PAIRS = frozenset(a + b for a in "0123456789ABCDEFabcdef" for b in "0123456789ABCDEFabcdef")


def _plain(text: str, star: int) -> bool:
    """``text`` is in the plain form (``star``: the index of its checksum's '*')."""
    return (star == len(text) - 3 and star > 6 and text[0] == "$" and text[6] == ","
            and text[1] in _TALKER_FIRST and text[2] in _TALKER_SECOND and text[3:6] in _PARSED
            and text.find("*") == star and text[star + 1:] in _HEX_PAIRS)


def _parsed_fields(text: str) -> list[str] | str:
    """pynmea2.parse(text, check=True).data, or why it refuses the sentence."""
    try:
        return pynmea2.parse(text, check=True).data
    except pynmea2.ChecksumError:
        return "checksum"
    except (pynmea2.ParseError, ValueError):
        return "malformed"


def sentence_fields(text: str) -> list[str] | str:
    """The data fields of a sentence as pynmea2.parse(text, check=True).data gives them,
    or the reason it is rejected ('checksum', 'malformed'). Plain position sentences are
    split here (pynmea2's regex and objects cost more than our whole merge); the rest go
    to pynmea2, the parser of record."""
    star = len(text) - 3
    if not _plain(text, star):
        return _parsed_fields(text)
    if int(text[star + 1:], 16) != reduce(xor, map(ord, text[1:star]), 0):
        return "checksum"
    return text[7:star].split(",")


def _classify(address: str) -> tuple[str, int, bool] | str:
    """'$GPGSV,' -> (tag, minimum fields if gpsd decodes it else 0, continues the cycle),
    or the reason to reject it. Vendor sentences ('$P...') are accepted by any name."""
    name = address[1:].rstrip(",")
    if not (name.isalnum() and name.isupper() or name.isdigit()):      # NMEA addresses: A-Z, 0-9
        result: tuple[str, int, bool] | str = "malformed"
    elif address[1] == "P":
        result = ("", 0, False)
    elif len(address) != 7 or address[6] != ",":
        result = "malformed"
    elif address[3:6] not in _TALKER_TYPES:
        result = "unknown"
    else:
        kind = address[3:6]
        nf, cont = _DECODED.get(kind, (0, False))
        result = (kind, max(nf, 1) if kind in _DECODED else 0, cont)
    if len(_ADDRESSES) < 1024:       # addresses are few; noise must not grow this
        _ADDRESSES[address] = result
    return result


class NmeaReader:
    """Frames a byte stream (any mix of CR/LF, binary noise, sentences cut short) into
    sentences, checks them, and merges them into fixes as gpsd does.

    ``feed(data)`` returns the fixes completed by these bytes (one per receiver cycle);
    ``current()`` is the fix merged so far, after the last sentence. ``on_sentence``, if
    set, is called with each checked sentence's text once it is merged (to compare with
    gpsd sentence by sentence).
    """

    def __init__(self, *, comments: bool = False, clock: Callable[[], float] = time.monotonic,
                 century: int = 2000):
        self.stats = NmeaStats()
        self._comments = comments
        self._clock = clock
        self._century = century
        self._pending = b""
        self._xor: bytes | None = None
        self._repeated: dict[str, list[str]] = {}
        self._gsa_used: tuple = (None, 0)
        self._clean = False
        self._check = PositionCheck()
        self.on_sentence: Callable[[str], None] | None = None
        # receiver date/time as gpsd keeps it (year 0: not known yet)
        self._year = self._mon = self._mday = 0
        self._day0 = 0.0        # epoch seconds of 00:00 UTC of that day
        self._hour = 0
        self._tod = 0.0         # seconds since midnight, fractions included
        # cycle detection
        self._this_frac = 0.0
        self._last_frac = 0.0
        self._latch_frac = False
        self._lasttag = ""
        self._enders: dict[str, bool] = {}
        self._cycle_continue = False
        self._cycle_reported = True
        self._cycle_has_data = False
        # GGA/GSA bookkeeping
        self._last_gga_talker = ""
        self._last_gga_ts = ""
        self._latch_mode = False
        self._last_gsa_talker = ""
        self._seen_gsa = False        # a non-GP GSA was seen (multi-GNSS receiver)
        self._sats_used = 0
        self._gga_sats: int | None = None
        self._hdop = NAN
        self._out: list[Fix] = []
        handlers = {"RMC": self._rmc, "GGA": self._gga, "GSA": self._gsa, "GLL": self._gll,
                    "GNS": self._gns, "VTG": self._vtg, "ZDA": self._zda, "GBS": self._gbs}
        self._dispatch = {kind: (*_DECODED[kind], handler) for kind, handler in handlers.items()}
        # the merged fix (gpsd's gpsdata.fix), and lastfix/oldfix for its mode rules
        self._clear_fix()
        self._last_mode = 0
        self._last_alt = NAN
        self._last_t = 0.0
        self._old_alt = NAN
        # this sentence's data (gpsd's newdata)
        self._n_mode = 0
        self._n_time = 0.0
        self._n_lat = self._n_lon = NAN
        self._n_alt = NAN
        self._n_status = 0
        self._n_speed = self._n_track = self._n_eph = NAN

    # ---- framing ---------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Fix]:
        """Consume bytes; return the fixes whose cycle they completed."""
        buf = self._pending + data
        if b"\r" in buf:
            buf = buf.replace(b"\r", b"\n")
        cut = buf.rfind(b"\n")
        joined, tail = (b"", buf) if cut < 0 else (buf[:cut], buf[cut + 1:])
        if len(tail) > NMEA_MAX_LINE:      # no line end for too long: noise, keep a last '$'
            self.stats.read += 1
            self.stats.rejected["noise"] += 1
            cut = tail.rfind(b"$")
            tail = tail[cut:] if 0 <= cut and len(tail) - cut <= NMEA_MAX_LINE else b""
        self._pending = tail
        if joined:
            self._lines(joined)
        out, self._out = self._out, []
        return out

    def _lines(self, joined: bytes) -> None:
        # running XOR of the bytes: the checksum of any sentence in them is two lookups
        # (one numpy pass instead of a Python loop per sentence)
        self._xor = np.bitwise_xor.accumulate(np.frombuffer(joined, np.uint8)).tobytes()
        # invalid bytes become lone surrogates (one per byte), which fail isprintable()
        text = joined.decode("ascii", "surrogateescape")
        # checked once for all the lines: printable, no trailing blanks, no '$' inside a line
        self._clean = text.replace("\n", "").isprintable()
        fast = (self._clean and " \n" not in text and text[-1] != " "
                and text.count("$") == text.count("\n$") + (text[0] == "$"))
        stats, sentence, frame = self.stats, self._sentence, self._frame
        base = 0
        for line in text.split("\n"):
            if line:
                if fast and line[0] == "$" and len(line) <= NMEA_MAX_LINE:
                    stats.read += 1      # the common case: one clean sentence on its line
                    sentence(line, base)
                else:
                    frame(line, base)
            base += len(line) + 1
        self._xor = None

    def flush(self) -> list[Fix]:
        """End of stream: the unterminated tail is a sentence cut short, if anything."""
        tail, self._pending = self._pending, b""
        if tail.strip():
            self._clean = False
            self._frame(tail.decode("ascii", "surrogateescape"), -1)
        out, self._out = self._out, []
        return out

    def _frame(self, line: str, base: int) -> None:
        """``base``: offset of the line in the bytes being fed (-1: unknown)."""
        stats = self.stats
        if line[0] != "$":
            if self._comments and line[0] == "#":   # a comment in a capture file
                return
            if "$" not in line:
                if line.strip():
                    stats.read += 1
                    stats.rejected["noise"] += 1
                return
            stats.read += 1             # what comes before the first '$' is noise
            stats.rejected["noise"] += 1
        # a '$' inside the line: the receiver restarted mid-sentence; each piece before
        # the last '$' was cut short (gpsd resynchronises on the new '$' the same way)
        last = line.rfind("$")
        cut_short = line.count("$", 0, last)
        if cut_short:
            stats.read += cut_short
            stats.rejected["truncated"] += cut_short
        if last:
            line = line[last:]
            if base >= 0:
                base += last
        stats.read += 1
        if len(line) > NMEA_MAX_LINE:
            stats.rejected["too long"] += 1
            return
        line = line.rstrip()
        if not line.isprintable():
            stats.rejected["noise"] += 1
            return
        self._sentence(line, base)

    # ---- one sentence ----------------------------------------------------------------

    def feed_sentence(self, text: str) -> list[Fix]:
        """One sentence, already framed (no line end); returns the fixes it completed."""
        self.stats.read += 1
        self._sentence(text, -1)
        out, self._out = self._out, []
        return out

    def _ignored(self, text: str, star: int, base: int) -> None:
        """A sentence whose content we do not merge (satellites in view, text, depth...):
        checked, counted, and its effect on gpsd's cycle bookkeeping applied, unparsed."""
        try:
            if base >= 0 and star > 1:
                acc = self._xor
                ok = int(text[star + 1:], 16) == acc[base + star - 1] ^ acc[base]
            else:
                ok = int(text[star + 1:], 16) == reduce(xor, text[1:star].encode("ascii"), 0)
        except ValueError:
            ok = False
        if not ok:
            self._reject("checksum")
            return
        address = text[:text.find(",")] if text[1] == "P" else text[:7]
        kind = _ADDRESSES.get(address)
        if kind is None:
            kind = _classify(address)
        if kind.__class__ is not tuple:
            self._reject(kind)
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

    def _reject(self, reason: str) -> None:
        self.stats.rejected[reason] += 1

    def _sentence(self, text: str, base: int) -> None:
        star = text.rfind("*")
        if star != len(text) - 3:
            self._unchecked(text, star)
            return
        kind = text[3:6]
        proprietary = text[1] == "P"
        if kind not in _PARSED if not proprietary else not text.startswith("$PSRFEPE,"):
            self._ignored(text, star, base)
            return
        data = self._repeated.get(text) if kind in _UNTIMED else None
        if data is None:
            data = self._fields(text, star, base)
            if data.__class__ is str:
                self._reject(data)
                return
            if kind in _UNTIMED:
                # GSA and VTG carry no timestamp: a receiver repeats them word for word
                # every second while the sky or the speed do not change; parse them once
                if len(self._repeated) >= 64:
                    self._repeated.clear()
                self._repeated[text] = data
        # the merge, as gpsd's nmea_parse dispatches (talker ignored, field count checked)
        count = len(data) + 1          # gpsd counts the address field too
        self._latch_frac = False
        self._n_mode = 0
        mask = 0
        reason = None
        if proprietary:
            tag = "PSRFEPE"
            if count >= 8:
                mask = self._psrfepe(data)
                self._cycle_continue = False
            self.stats.ignored += 1
        else:
            nf, cont, handler = self._dispatch[kind]
            if count >= nf:
                tag = kind
                mask, reason = handler(data, count, text[2])
                self._cycle_continue = cont
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

    def _fields(self, text: str, star: int, base: int) -> list[str] | str:
        """sentence_fields(text), the checksum taken from the running XOR when the
        sentence's place in the bytes is known."""
        if base < 0 or not _plain(text, star):
            return sentence_fields(text)
        acc = self._xor       # text is those bytes exactly: printable ASCII, checked by the framing
        if int(text[star + 1:], 16) != acc[base + star - 1] ^ acc[base]:
            return "checksum"
        return text[7:star].split(",")

    def _unchecked(self, text: str, star: int) -> None:
        """A sentence without a complete checksum: cut short, or sent without one."""
        kind = text[3:6]
        if star < 0:
            if text[1:2] != "P" and kind in _NEEDED_FIELDS and text.count(",") < _NEEDED_FIELDS[kind] - 1:
                self._reject("truncated")
            else:
                self._reject("no checksum")
        elif star > len(text) - 3:
            self._reject("truncated")
        else:
            self._reject("malformed")

    # ---- time ------------------------------------------------------------------------

    def _merge_hhmmss(self, text: str) -> bool:
        hms = _HHMMSS.get(text)
        if hms is None:
            hms = _decode_hhmmss(text)
        if not hms:
            return False
        old_hour = self._hour
        self._hour = hms[0]
        self._tod = hms[1]
        if hms[0] < old_hour:       # midnight wrap
            self._mday += 1
            self._day0 += 86400.0
        return True

    def _merge_time_of_day(self, text: str) -> int:
        """A time-of-day field without a date: merged; TIME once the date is known."""
        if text and self._merge_hhmmss(text):
            self._register_frac(self._tod)
            if self._year:
                return TIME
        return 0

    def _merge_ddmmyy(self, text: str) -> str | None:
        """None when merged, else why not ('malformed' or 'placeholder date')."""
        dmy = _DDMMYY.get(text)
        if dmy is None:
            dmy = _decode_ddmmyy(text)
        if not dmy:
            return "malformed"
        year = self._two_digit_year(dmy[2])
        if year < PLACEHOLDER_YEAR:
            return "placeholder date"
        self._set_date(year, dmy[1], dmy[0])
        return None

    def _set_date(self, year: int, mon: int, mday: int) -> None:
        self._year, self._mon, self._mday = year, mon, mday
        if year == 0:
            self._day0 = 0.0
            return
        day0 = _DAY0.get((year, mon, mday))
        if day0 is None:
            day0 = (date(year, mon, 1).toordinal() - 719163 + mday - 1) * 86400.0   # 719163: 1970-01-01
            if len(_DAY0) < _CACHE_MAX:
                _DAY0[(year, mon, mday)] = day0
        self._day0 = day0

    def _two_digit_year(self, yy: int) -> int:
        year = self._century + yy
        return year - 100 if year >= 2080 else year     # gpsd wraps two-digit years there

    def _register_frac(self, tod: float) -> None:
        """gpsd's register_fractional_time, with a sentence's time of day: the cycle
        detector only compares successive values, so seconds since midnight serve as well
        as the hhmmss number gpsd uses."""
        self._last_frac = self._this_frac
        self._this_frac = tod
        self._latch_frac = True

    # ---- sentences -------------------------------------------------------------------

    def _lat_lon(self, lat: str, ns: str, lon: str, ew: str, claimed: bool) -> tuple[float, float] | str | None:
        """(lat, lon); None when the fields are empty or unreadable (gpsd: no position);
        a reason string when the position is there but not believable."""
        if not (lat and ns and lon and ew):
            return None
        la = _COORD.get(lat)
        if la is None:
            la = _decode_coord(lat)
        lo = _COORD.get(lon)
        if lo is None:
            lo = _decode_coord(lon)
        if la.__class__ is not float or lo.__class__ is not float:
            return "absurd value" if (la == "absurd" or lo == "absurd") else None
        if ns == "S":
            la = -la
        if ew == "W":
            lo = -lo
        if not claimed:     # a position given without a fix only has to be on the globe
            return (la, lo) if (la <= 90.0 and -180.0 <= lo <= 180.0) else "absurd value"
        problem = self._check.check(la, lo, self._day0 + self._tod if self._year else None)
        return (la, lo) if problem is None else problem

    def _rmc(self, f: list[str], count: int, talker: str) -> tuple[int, str | None]:
        # f[0] time, f[1] status, f[2..5] position, f[6] knots, f[7] track, f[8] date,
        # f[9..10] magnetic variation, f[11] FAA mode
        if len(f) < 12:
            f = f + [""] * (12 - len(f))
        mask = 0
        reason = None
        status = f[1]
        if status not in ("A", "D"):
            self._n_mode = 1
            if not f[0] or not f[8]:
                # no time at all: gpsd forgets the date and reports at once
                self._set_date(0, 0, 0)
                mask |= REPORT | TIME
            elif len(f[8]) == 6 and f[8].isdigit() and self._two_digit_year(int(f[8][4:6])) < PLACEHOLDER_YEAR:
                reason = "placeholder date"
            return mask | STATUS | MODE, reason
        if f[0] and count > 9 and f[8]:
            if self._merge_hhmmss(f[0]):
                why = self._merge_ddmmyy(f[8])
                if why is None:
                    mask |= TIME
                    self._register_frac(self._tod)
                else:
                    reason = why
        pos = self._lat_lon(f[2], f[3], f[4], f[5], True) if reason is None else reason
        if pos.__class__ is tuple:
            self._n_lat, self._n_lon = pos
            mask |= LATLON
            if self._last_mode <= 2:
                self._n_mode = 2
                mask |= MODE
            elif self._last_mode == 3:
                self._n_mode = 3
                mask |= MODE
        else:
            reason = pos or reason
            self._n_mode = 1
            mask |= MODE
        if f[6]:
            self._n_speed = _num(f[6]) * KNOTS_TO_MPS
            mask |= SPEED
        if f[7]:
            self._n_track = _num(f[7])
            mask |= TRACK
        if self._sats_used > 3 or self._alt == self._alt:
            self._n_mode = 3
            mask |= MODE
        self._n_status = STATUS_DGPS if (status == "D" or f[11] in ("D", "P")) else STATUS_GPS
        return mask | STATUS, reason

    def _gga(self, f: list[str], count: int, talker: str) -> tuple[int, str | None]:
        # f[0] time, f[1..4] position, f[5] quality, f[6] sats, f[7] hdop, f[8] altitude
        if len(f) < 14:
            f = f + [""] * (14 - len(f))
        mask = 0
        reason = None
        last_talker = self._last_gga_talker
        self._last_gga_talker = talker
        quality = _atoi(f[5]) if f[5] else -1
        if quality == 0 and not f[0]:
            self._set_date(0, 0, 0)
            mask |= REPORT | TIME
        if quality >= 0:
            self._n_status = STATUS_DGPS if quality == 2 else (STATUS_UNK if quality == 0 else STATUS_GPS)
            mask = STATUS       # gpsd overwrites the mask here
        if last_talker and last_talker != self._last_gga_talker:
            self._latch_mode = False
        else:
            self._latch_mode = f[0] == self._last_gga_ts
        if self._latch_mode:
            self._n_status = STATUS_UNK
            self._n_mode = 1
            mask |= MODE | STATUS
        else:
            self._last_gga_ts = f[0]
        sats = _atoi(f[6])
        self._gga_sats = sats if f[6] else None
        mask |= self._merge_time_of_day(f[0])
        pos = self._lat_lon(f[1], f[2], f[3], f[4], quality > 0)
        if pos.__class__ is tuple:
            self._n_lat, self._n_lon = pos
            self._n_mode = 2
            mask |= LATLON
            if f[8]:
                self._n_alt = _num(f[8])
                mask |= ALT
                if sats >= 4:
                    self._n_mode = 3
            if sats < 3:
                self._n_mode = 1
        else:
            if isinstance(pos, str):
                reason = pos
            self._n_mode = 1
        mask |= MODE
        if f[7]:
            hdop = _num(f[7])
            if hdop < 99.0:
                self._hdop = hdop
                mask |= DOP
        return mask, reason

    def _gsa(self, f: list[str], count: int, talker: str) -> tuple[int, None]:
        # f[0] A/M, f[1] mode, f[2..13] satellites, f[14] pdop, f[15] hdop, f[16] vdop
        mask = 0
        gsa_talker = talker
        last_last = self._last_gsa_talker
        if not self._latch_mode:
            self._n_mode = _atoi(f[1])
            if f[1][:1] != "E":
                mask = MODE
            if count <= 19 and len(f) > 15 and f[15]:
                hdop = _num(f[15])
                if hdop < 99.0:
                    self._hdop = hdop
                    mask |= DOP
            if not self._last_gsa_talker or (gsa_talker == self._last_gsa_talker and gsa_talker != "N"):
                self._sats_used = 0
            self._last_gsa_talker = gsa_talker
            if gsa_talker != "P":
                self._seen_gsa = True
            used = self._gsa_used
            if used[0] is not f:        # a repeated GSA comes back as the same list
                used = self._gsa_used = (f, sum(1 for sat in f[2:min(14, count - 4)] if sat and sat.strip("0")))
            self._sats_used += used[1]      # the 12 satellite slots (NMEA 4.10 adds a system id after the DOPs)
        if self._seen_gsa and gsa_talker == "P":
            mask = 0
        elif last_last != "N" and gsa_talker == "N":
            mask = MODE
        return mask, None

    def _gll(self, f: list[str], count: int, talker: str) -> tuple[int, str | None]:
        # f[0..3] position, f[4] time, f[5] status, f[6] FAA mode
        if len(f) < 7:
            f = f + [""] * (7 - len(f))
        mask = 0
        reason = None
        mask |= self._merge_time_of_day(f[4])
        pos = None
        if f[5] == "A" and (count < 8 or f[6] != "N"):
            pos = self._lat_lon(f[0], f[1], f[2], f[3], True)
        if isinstance(pos, tuple):
            self._n_lat, self._n_lon = pos
            mask |= LATLON
            if self._alt == self._alt or self._sats_used > 3:
                self._n_mode = 3
            elif self._mode < 2 or self._old_alt != self._old_alt:
                self._n_mode = 2
            self._n_status = STATUS_DGPS if f[6] in ("D", "P") else STATUS_GPS
        else:
            if isinstance(pos, str):
                reason = pos
            self._n_status = STATUS_UNK
            self._n_mode = 1
        return mask | STATUS | MODE, reason

    def _gns(self, f: list[str], count: int, talker: str) -> tuple[int, str | None]:
        # f[0] time, f[1..4] position, f[5] modes, f[6] sats, f[7] hdop, f[8] altitude,
        # f[12] navigation status
        if len(f) < 13:
            f = f + [""] * (13 - len(f))
        mask = 0
        reason = None
        mask |= self._merge_time_of_day(f[0])
        if not f[5] or f[5][0] == "N":
            self._n_mode = 1
            return mask | MODE, None
        if f[12][:1] in ("U", "V"):
            return mask, None
        sats = _atoi(f[6])
        pos = self._lat_lon(f[1], f[2], f[3], f[4], True)
        if isinstance(pos, tuple):
            self._n_lat, self._n_lon = pos
            mask |= LATLON
            self._n_mode = 2
            if f[8]:
                alt = _num(f[8])
                if alt == alt:
                    self._n_alt = alt
                    mask |= ALT
                    if sats > 3:
                        self._n_mode = 3
        else:
            if isinstance(pos, str):
                reason = pos
            self._n_mode = 1
            mask |= MODE
        if f[7]:
            self._hdop = _num(f[7])
            mask |= DOP
        self._n_status = STATUS_DGPS if f[5][0] in ("D", "P") else STATUS_GPS
        return mask | MODE | STATUS, reason

    def _vtg(self, f: list[str], count: int, talker: str) -> tuple[int, None]:
        if len(f) < 5 or not f[0] or not f[4]:     # gpsd reads a missing field as empty
            return 0, None
        if count > 9 and len(f) > 8 and f[8][:1] in ("E", "N"):
            return 0, None
        self._n_track = _num(f[0])
        self._n_speed = _num(f[4]) * KNOTS_TO_MPS
        return TRACK | SPEED, None

    def _gbs(self, f: list[str], count: int, talker: str) -> tuple[int, None]:
        # only its timestamp matters, for the cycle; gpsd does not merge it
        hms = _HHMMSS.get(f[0]) or _decode_hhmmss(f[0])
        if hms:
            self._register_frac(hms[1])
        return 0, None

    def _zda(self, f: list[str], count: int, talker: str) -> tuple[int, str | None]:
        if len(f) < 4 or not (f[0] and f[1] and f[2] and f[3]):
            return 0, None
        if not self._merge_hhmmss(f[0]):
            return 0, None
        year, mon, mday = _atoi(f[3]), _atoi(f[2]), _atoi(f[1])
        if not (1900 <= year <= 2200 and 1 <= mon <= 12 and 1 <= mday <= 31):
            return 0, "malformed"
        if year < PLACEHOLDER_YEAR:
            return 0, "placeholder date"
        self._century = year - year % 100
        self._set_date(year, mon, mday)
        return TIME, None

    def _psrfepe(self, f: list[str]) -> int:
        # f[0] 'EPE', f[1] time, f[2] status, f[3] hdop, f[4] EHPE metres
        mask = STATUS
        mask |= self._merge_time_of_day(f[1])
        if len(f) > 4 and f[2] == "A":
            if f[3]:
                self._hdop = _num(f[3])
                mask |= DOP
            if f[4]:
                self._n_eph = _num(f[4])
                mask |= HERR
        return mask

    # ---- the cycle: gpsd's end of nmea_parse and gpsd_poll ---------------------------

    def _after(self, tag: str, mask: int) -> None:
        if mask & TIME:
            self._n_time = 0.0 if (self._year == 0 and self._mday == 0) else self._day0 + self._tod
        enders = self._enders
        latch = self._latch_frac
        if latch:
            if abs(self._this_frac - self._last_frac) > 0.01:
                mask |= CLEAR
                lasttag = self._lasttag
                if lasttag and not enders.get(lasttag) and not self._cycle_continue:
                    enders[lasttag] = True
            self._lasttag = tag
        elif self._cycle_continue:
            enders[self._lasttag] = False
            enders[tag] = True
        if enders.get(tag) and (latch or self._cycle_continue):
            mask |= REPORT
        # don't downgrade a 3D fix to 2D on a sentence (RMC) that cannot tell 3D
        if mask & MODE and self._mode == 3 and self._n_mode != 1 and (
                self._last_alt == self._last_alt or self._old_alt == self._old_alt):
            self._n_mode = 3
        if mask & CLEAR:
            if self._cycle_has_data and not self._cycle_reported:
                self._out.append(self._snapshot())     # that cycle had no detectable end
            self._clear_fix()
            if not mask & DOP:
                self._hdop = NAN
            self._cycle_reported = False
            self._cycle_has_data = False
        if mask & (TIME | LATLON | MODE):
            self._cycle_has_data = True
            # gps_merge_fix
            if mask & TIME:
                self._time = self._n_time
            if mask & LATLON:
                self._lat = self._n_lat
                self._lon = self._n_lon
            if mask & MODE:
                self._mode = self._n_mode
        if mask & (STATUS | ALT | SPEED | TRACK | HERR):
            if mask & STATUS:
                self._status = self._n_status
            if mask & ALT:
                self._alt = self._n_alt
            if mask & SPEED:
                self._speed = self._n_speed
            if mask & TRACK:
                self._track = self._n_track
            if mask & HERR:
                self._eph = self._n_eph
        # gpsd_error_model: what it keeps of this fix for the next one's mode rules
        t = self._time
        if t > 0 and mask & (TIME | MODE | ALT | CLEAR):
            if abs(t - self._last_t) > 0.0099:
                self._old_alt = self._last_alt
            self._last_mode = self._mode
            self._last_alt = self._alt
            self._last_t = t
        if mask & REPORT and self._cycle_has_data:
            self._cycle_reported = True
            self._out.append(self._snapshot())

    def _clear_fix(self) -> None:
        self._time = 0.0
        self._lat = self._lon = NAN
        self._alt = NAN
        self._mode = 0
        self._status = 0
        self._speed = self._track = self._eph = NAN

    def _snapshot(self) -> Fix:
        self.stats.fixes += 1
        return self.current()

    def current(self) -> Fix:
        """The fix merged so far (gpsd's TPV after the last sentence)."""
        mode = self._mode
        lat, lon = self._lat, self._lon
        if mode >= 2 and lat == lat and lon == lon:
            alt = self._alt if (mode == 3 and self._alt == self._alt) else None
            speed = self._speed if self._speed == self._speed else None
            track = self._track if self._track == self._track else None
        else:
            mode = 1
            lat = lon = alt = speed = track = None
        t = self._time
        when = _fromtimestamp(t, UTC) if t > 0 else None
        hdop = self._hdop if self._hdop == self._hdop else None
        eph = self._eph if self._eph == self._eph else None
        if eph is None and hdop is not None and lat is not None:
            eph = hdop * (4.75 if self._status == STATUS_DGPS else 19.0)
        return Fix(when, lat, lon, alt, mode, self._sats_used or self._gga_sats, hdop, eph, speed, track,
                   self._clock())

    def __repr__(self) -> str:
        s = self.stats
        return (f"<NmeaReader read={s.read} used={s.used} ignored={s.ignored} "
                f"rejected={sum(s.rejected.values())} fixes={s.fixes}>")
