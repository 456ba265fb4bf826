"""Hypothesis properties for every parser of the receiver's data: NMEA sentences, the
framing of the bytes on the serial line, and gpsd's JSON answers. Whatever comes in,
nothing raises (but the gpsd backend's documented ConnectionError for a line that is not
gpsd's answer, on which it reconnects), the counts add up, and no fix carries NaN,
infinity, a position off the globe or a date no receiver can mean."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.gps import GpsdGps
from drivers.nmea import Fix, NmeaReader, Rejection, sentence
from drivers.nmea.plausibility import LAST_YEAR, PLACEHOLDER_YEAR

PROFILE = settings(max_examples=200, deadline=None, database=None)


def _assert_sane(fix: Fix) -> None:
    assert fix.mode in (1, 2, 3)
    for name in ("lat", "lon", "alt", "hdop", "eph_m", "speed_mps", "track_deg"):
        value = getattr(fix, name)
        assert value is None or math.isfinite(value), (name, value)
    if fix.has_position:
        assert -90 <= fix.lat <= 90 and -180 <= fix.lon <= 180
    else:
        assert fix.lat is None and fix.lon is None
    if fix.time is not None:
        assert fix.time.utcoffset().total_seconds() == 0
        assert PLACEHOLDER_YEAR <= fix.time.year <= LAST_YEAR + 1     # +1: the last day's midnight
    json.dumps(fix.as_dict(), allow_nan=False)


def _assert_counts(reader: NmeaReader) -> None:
    s = reader.stats
    assert s.read == s.used + s.ignored + sum(s.rejected.values())
    assert set(s.rejected) <= set(Rejection)


# ---- NMEA sentences ------------------------------------------------------------------

NUMBERS = st.sampled_from(["", "0", "1", "-1", "12.5", "nan", "inf", "-inf", "1e308", "1e999", "99.99",
                           "0000.0000", "9000.0000", "18000.0000", "8960.000000", "4657.0600", "00417.9400"])
TIMES = st.one_of(st.sampled_from(["", "000000", "235959.99", "120000.00", "995999", "246060", "000060"]),
                  st.from_regex(r"\A[0-2][0-9][0-5][0-9][0-6][0-9](\.[0-9]{1,3})?\Z"))
DATES = st.one_of(st.sampled_from(["", "010100", "310226", "290200", "060180", "311299", "999999", "000000"]),
                  st.from_regex(r"\A[0-3][0-9][01][0-9][0-9]{2}\Z"))
FIELD = st.one_of(NUMBERS, st.sampled_from(["A", "V", "D", "N", "S", "E", "W", "M", "1", "2", "0", "08"]),
                  st.text("0123456789.,-+ANSEWVDM*$ \x00é", max_size=12))

TEMPLATES = {
    "GGA": "120000.00,4657.0600,N,00417.9400,E,1,08,0.9,300.0,M,48.0,M,,",
    "RMC": "120000.00,A,4657.0600,N,00417.9400,E,0.5,90.0,270226,,,A",
    "GLL": "4657.0600,N,00417.9400,E,120000.00,A,A",
    "GNS": "120000.00,4657.0600,N,00417.9400,E,AA,10,0.9,300.0,48.0,,,",
    "VTG": "054.7,T,034.4,M,005.5,N,010.2,K,A",
    "ZDA": "120000.00,27,02,2026,00,00",
}


@st.composite
def nmea_sentences(draw) -> str:
    """A sentence of a type we merge, its fields drawn from values receivers send, from
    those they never should, and from junk; mostly with a correct checksum."""
    kind = draw(st.sampled_from(["GGA", "RMC", "GLL", "GNS", "GSA", "VTG", "ZDA", "GBS", "GSV", "TXT"]))
    talker = draw(st.sampled_from(["GP", "GN", "GL", "BD", "IN", "P"]))
    if kind in TEMPLATES and draw(st.booleans()):      # a good sentence with a few values spoilt
        fields = TEMPLATES[kind].split(",")
        for _ in range(draw(st.integers(1, 3))):
            fields[draw(st.integers(0, len(fields) - 1))] = draw(FIELD)
    else:
        fields = [draw(FIELD) for _ in range(draw(st.integers(0, 16)))]
    if fields and kind in ("GGA", "RMC", "GNS", "ZDA", "GBS"):
        fields[0] = draw(TIMES)
    if kind == "GLL" and len(fields) > 4:
        fields[4] = draw(TIMES)
    if kind == "RMC" and len(fields) > 8:
        fields[8] = draw(DATES)
    if kind == "ZDA" and len(fields) > 3:
        fields[1:4] = [draw(st.sampled_from(["31", "1", "0", "29"])), draw(st.sampled_from(["12", "2", "13", "0"])),
                       draw(st.sampled_from(["2026", "2200", "2201", "1980", "9999", "99999999999999999999"]))]
    body = f"{talker}{kind}," + ",".join(fields)
    text = sentence(body) if all(ord(c) < 128 for c in body) else f"${body}*00"
    if draw(st.integers(0, 7)) == 0:
        text = text[:-2] + draw(st.sampled_from(["00", "ZZ", "", "*", "7"]))
    return text


@PROFILE
@given(texts=st.lists(nmea_sentences(), min_size=1, max_size=40),
       line_end=st.sampled_from(["\r\n", "\n", "\r"]))
def test_nmea_sentences_never_raise_and_never_give_an_impossible_fix(texts, line_end):
    reader = NmeaReader()
    fixes = reader.feed((line_end.join(texts) + line_end).encode("utf-8")) + reader.flush()
    for text in texts:
        fixes += reader.feed_sentence(text)
    for fix in fixes + [reader.current()]:
        _assert_sane(fix)
    _assert_counts(reader)


@PROFILE
@given(start=st.sampled_from(["233000", "000500", "120000"]),
       steps=st.lists(st.integers(0, 23 * 3600 + 59 * 60 + 59), min_size=1, max_size=60))
def test_times_of_day_in_any_order_keep_the_date_within_a_day_of_the_receivers(start, steps):
    reader = NmeaReader()
    reader.feed_sentence(sentence(f"GPRMC,{start}.00,A,4657.0600,N,00417.9400,E,0.5,90.0,311226,,,A"))
    for tod in steps:
        hhmmss = f"{tod // 3600:02d}{tod // 60 % 60:02d}{tod % 60:02d}"
        reader.feed_sentence(sentence(f"GPGGA,{hhmmss}.00,4657.0600,N,00417.9400,E,1,08,0.9,300.0,M,48.0,M,,"))
        when = reader.current().time
        assert when is None or (2026, 12, 31) <= (when.year, when.month, when.day) <= (2027, 1, 1)
    _assert_counts(reader)


# ---- framing: whatever the serial line carries ---------------------------------------

GOOD = [sentence("GPGGA,120000.00,4657.0600,N,00417.9400,E,1,08,0.9,300.0,M,48.0,M,,"),
        sentence("GPRMC,120000.00,A,4657.0600,N,00417.9400,E,0.5,90.0,270226,,,A")]
PIECES = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"\r", b"\n", b"\r\n", b"\x00" * 40, b"$", b"*", b"$" * 300, b"\xff\xfe\x81",
                     "é中".encode(), b"9" * 600] + [(g + "\r\n").encode() for g in GOOD]),
    nmea_sentences().map(lambda t: (t + "\r\n").encode("utf-8")),
)


@PROFILE
@given(pieces=st.lists(PIECES, max_size=30), chunk=st.integers(1, 700))
def test_framing_never_raises_on_any_bytes_in_any_chunks(pieces, chunk):
    data = b"".join(pieces)
    reader = NmeaReader()
    fixes = []
    for i in range(0, len(data), chunk):
        fixes += reader.feed(data[i:i + chunk])
    fixes += reader.flush()
    for fix in fixes:
        _assert_sane(fix)
    _assert_counts(reader)


# ---- gpsd's JSON answers -------------------------------------------------------------

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
                         st.sampled_from([46.95, 4.3, 0.0, 91.0, -181.0, 1e308, "46.95",
                                          "2026-11-27T10:00:00.000Z", "1980-01-06T00:00:00Z",
                                          "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00",
                                          "2026-11-27T10:00:00", "not a time"]))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                  st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                           max_leaves=8)
TPV_KEYS = ("mode", "lat", "lon", "alt", "time", "track", "speed", "epx", "epy", "eps", "ept", "epv", "climb")


@st.composite
def gpsd_answers(draw) -> str:
    """A line gpsd could send after ?POLL: realistic, with odd values, odd shapes, or not
    JSON at all."""
    tpv = {"class": "TPV", "mode": draw(st.one_of(st.sampled_from([0, 1, 2, 3]), JSON_SCALARS))}
    for key in TPV_KEYS[1:]:
        if draw(st.booleans()):
            tpv[key] = draw(JSON_SCALARS)
    sats = draw(st.one_of(st.lists(st.fixed_dictionaries({"used": st.one_of(st.booleans(), JSON_SCALARS)}),
                                   max_size=4), JSON_VALUES))
    packet = {"class": "POLL", "active": draw(st.one_of(st.just(1), JSON_SCALARS)),
              "tpv": draw(st.one_of(st.just([tpv]), st.just([]), JSON_VALUES)),
              "sky": draw(st.one_of(st.just([{"satellites": sats}]), JSON_VALUES))}
    for key in draw(st.lists(st.sampled_from(["class", "active", "tpv", "sky"]), max_size=1)):
        packet.pop(key)
    line = json.dumps(packet)           # NaN and Infinity as gpsd never writes them
    mangle = draw(st.integers(0, 9))
    if mangle == 0:
        line = line[:draw(st.integers(0, len(line)))]
    elif mangle == 1:
        line = json.dumps(draw(JSON_VALUES))
    return line + ("\n" if draw(st.integers(0, 9)) else "")


@PROFILE
@given(answers=st.lists(gpsd_answers(), min_size=1, max_size=5))
def test_gpsd_answers_give_a_sane_fix_or_the_documented_connection_error(answers):
    gps = GpsdGps("127.0.0.1", 1)
    for raw in answers:
        try:
            fix = gps._fix_from_answer(raw)
        except ConnectionError:
            continue                    # the backend's documented reaction: reconnect
        _assert_sane(fix)
    assert all(reason in set(Rejection) for reason in gps.rejected)


def test_gpsd_values_no_receiver_can_mean_are_rejected_and_counted():
    gps = GpsdGps("127.0.0.1", 1)

    def answer(**tpv):
        return json.dumps({"class": "POLL", "active": 1, "sky": [{"satellites": []}],
                           "tpv": [{"class": "TPV", **tpv}]}) + "\n"

    fix = gps._fix_from_answer(answer(mode=3, lat=46.95, lon=4.3, alt="high", speed=[1],
                                      time="2026-11-27T10:00:00.000Z"))
    assert fix.has_position and fix.alt is None and fix.speed_mps is None
    fix = gps._fix_from_answer(answer(mode=2, lat="46.95", lon=4.3, time="9999-12-31T23:59:59-01:00"))
    assert not fix.has_position and fix.time is None
    assert gps.rejected == {"malformed": 2}
    for bad in ("[1, 2]\n", '{"class": "POLL", "tpv": [{"mode": NaN}]}\n', "x" * 10, ""):
        try:
            gps._fix_from_answer(bad)
        except ConnectionError as exc:
            assert "gpsd" in str(exc)
        else:
            raise AssertionError(f"{bad!r} was taken as gpsd's answer")
