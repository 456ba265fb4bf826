"""One sentence: its type, its fields, and the values in them.

Sentences are checked and split exactly as pynmea2 does: position sentences in their
plain form are split here, for speed, to the same fields; pynmea2, the parser of record,
takes the rest (tests/test_gps_fastpath.py holds the two to agree). Field strings repeat
within a cycle (GGA, RMC and GLL share their time and position), so their decoding is
cached, in bounded caches.
"""

from __future__ import annotations

import math
from datetime import date
from functools import lru_cache

import pynmea2

from drivers.nmea.fix import Rejection
from drivers.nmea.framing import checksum_matches, running_xor

# Sentence types gpsd decodes (they reset the "cycle continues" flag); the value is
# (minimum field count, does it continue the cycle). Others are ignored like unknown ones.
DECODED = {
    "GGA": (13, False), "GLL": (7, True), "GNS": (13, False), "GSA": (18, False),
    "GSV": (0, False), "RMC": (8, False), "VTG": (5, False), "ZDA": (4, False),
    "TXT": (5, False), "GBS": (7, False), "GST": (8, False), "DTM": (2, False),
    "HDT": (1, False), "HDG": (0, False), "THS": (0, False), "DBT": (7, False),
    "BWC": (12, False), "MWD": (0, False), "MWV": (0, False),
}
USED = frozenset(("GGA", "GLL", "GNS", "GSA", "RMC", "VTG", "ZDA"))
PARSED = USED | {"GBS"}
UNTIMED = frozenset(("GSA", "VTG"))      # no timestamp: receivers repeat them word for word
NEEDED_FIELDS = {"GGA": 14, "GLL": 7, "GNS": 13, "RMC": 12, "GSA": 18, "VTG": 9, "ZDA": 6}
_TALKER_TYPES = frozenset(pynmea2.TalkerSentence.sentence_types) | set(DECODED)

# The plain form of a sentence we merge, where splitting it ourselves gives by
# construction what pynmea2's regular expression gives: '$', a talker of two upper-case
# letters or digits (a first 'P' or 'p' makes pynmea2 read a proprietary sentence, so
# lower case is left to it), the type, ',', no other '*', two hex digits.
_TALKER_FIRST = frozenset("ABCDEFGHIJKLMNOQRSTUVWXYZ0123456789")
_TALKER_SECOND = _TALKER_FIRST | {"P"}
_HEX_PAIRS = frozenset(a + b for a in "0123456789ABCDEFabcdef" for b in "0123456789ABCDEFabcdef")


def plain_form(text: str, star: int) -> bool:
    """``text`` is in the plain form (``star``: the index of its checksum's '*')."""
    return (star == len(text) - 3 and star > 6 and text[0] == "$" and text[6] == ","
            and text[1] in _TALKER_FIRST and text[2] in _TALKER_SECOND and text[3:6] in PARSED
            and text.find("*") == star and text[star + 1:] in _HEX_PAIRS)


def parsed_fields(text: str) -> list[str] | Rejection:
    """pynmea2.parse(text, check=True).data, or why it refuses the sentence."""
    try:
        return pynmea2.parse(text, check=True).data
    except pynmea2.ChecksumError:
        return Rejection.CHECKSUM
    except (pynmea2.ParseError, ValueError):
        return Rejection.MALFORMED


def sentence_fields(text: str, acc: bytes | None = None, start: int = 0) -> list[str] | Rejection:
    """The data fields of a sentence as pynmea2.parse(text, check=True).data gives them,
    or why it is rejected. ``acc``: the running XOR of the bytes ``text`` was read from,
    its '$' at ``start`` (computed here when not given)."""
    star = len(text) - 3
    if not plain_form(text, star):
        return parsed_fields(text)
    if acc is None:
        try:
            acc = running_xor(text.encode("ascii"))
        except UnicodeEncodeError:
            return parsed_fields(text)
    if not checksum_matches(acc, start, star, text[star + 1:]):
        return Rejection.CHECKSUM
    return text[7:star].split(",")


@lru_cache(maxsize=1024)
def classify(address: str) -> tuple[str, int, bool] | Rejection:
    """'$GPGSV,' -> (type, minimum fields if gpsd decodes it else 0, continues the cycle),
    or why it is rejected. Vendor sentences ('$P...') are accepted by any name."""
    name = address[1:].rstrip(",")
    if not (name.isalnum() and name.isupper() or name.isdigit()):      # NMEA addresses: A-Z, 0-9
        return Rejection.MALFORMED
    if address[1] == "P":
        return ("", 0, False)
    if len(address) != 7 or address[6] != ",":
        return Rejection.MALFORMED
    kind = address[3:6]
    if kind not in _TALKER_TYPES:
        return Rejection.UNKNOWN
    nf, cont = DECODED.get(kind, (0, False))
    return (kind, max(nf, 1) if kind in DECODED else 0, cont)


def number(text: str) -> float:
    """A decimal field; NaN when it is not a finite number (an empty field, 'inf')."""
    try:
        value = float(text)
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def atoi(text: str) -> int:
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


@lru_cache(maxsize=4096)
def time_of_day(text: str) -> tuple[int, float] | None:
    """hhmmss[.sss] -> (hour, seconds since midnight), None if malformed (gpsd's
    merge_hhmmss: six digits, then optional fractions; and a time a clock can show, where
    gpsd lets 99:99:99 run days into the future)."""
    if len(text) < 6 or not text[:6].isdigit():
        return None
    hour, minute, second = int(text[0:2]), int(text[2:4]), int(text[4:6])
    if hour > 23 or minute > 59 or second > 60:     # 60: a leap second
        return None
    nsec = 0
    frac = text[7:16]
    if text[6:7] == "." and frac[:1].isdigit():
        nsec = atoi(frac) * 10 ** (9 - len(frac))
    return hour, hour * 3600 + minute * 60 + second + nsec * 1e-9


@lru_cache(maxsize=4096)
def day_month_year(text: str) -> tuple[int, int, int] | None:
    """ddmmyy -> (day, month, two-digit year), None if malformed."""
    if len(text) != 6 or not text.isdigit():
        return None
    mday, mon = int(text[0:2]), int(text[2:4])
    if not (1 <= mon <= 12 and 1 <= mday <= 31):
        return None
    return mday, mon, int(text[4:6])


@lru_cache(maxsize=4096)
def day_start(year: int, mon: int, mday: int) -> float:
    """Epoch seconds of 00:00 UTC of that day (a 31st of a short month runs on into the
    next, as gpsd's mktime does)."""
    return (date(year, mon, 1).toordinal() - 719163 + mday - 1) * 86400.0   # 719163: 1970-01-01


@lru_cache(maxsize=4096)
def coordinate(text: str) -> float | Rejection | None:
    """NMEA (d)ddmm.mmmm -> degrees; ABSURD_VALUE for minutes of 60 or more or degrees out
    of range (placeholders such as 8960.000000); None if unreadable."""
    try:
        dot = text.index(".")
        whole = int(text[:dot]) if dot else 0
        minutes = whole % 100 + float(text[dot:])
    except ValueError:
        return None
    value = whole // 100 + minutes / 60.0
    if minutes >= 60.0 or value > 180.0 or whole < 0 or math.isnan(value):
        return Rejection.ABSURD_VALUE
    return value
