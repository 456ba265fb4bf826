"""drivers/nmea against gpsd's own expected output on real receiver logs, and against
bad input (noise, cut sentences, absurd values)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from drivers.nmea import NmeaReader, PositionCheck, sentence
from tools.benchmarks.gps import agreement, receiver_log, shared_logs

LOGS = shared_logs()


@pytest.mark.parametrize("log", LOGS, ids=[p.name for p in LOGS])
def test_merged_fix_equals_gpsd_tpv_after_every_sentence(log):
    result = agreement(log)
    print(f"\n{log.name}: fixes compared {result['compared']}, matching {result['matching']}, "
          f"gpsd dropped {result['dropped_by_gpsd']}, of which we rejected "
          f"{result['dropped_by_gpsd_rejected_by_us']}; our rejections {result['stats']['rejected']}")
    assert result["compared"] > 0
    assert result["mismatches"] == []
    assert result["matching"] == result["compared"]
    assert result["dropped_by_gpsd_rejected_by_us"] == result["dropped_by_gpsd"]
    assert result["accepted_by_gpsd_rejected_by_us"] == []


def test_every_receiver_log_is_in_the_repository():
    # a fresh clone runs every test on real receivers' logs: none may be skipped for want of them
    assert {p.name for p in LOGS} >= {"beidou-gb.log", "bu353s4.log", "haicom-305N.log", "humminbird-M37.log",
                                      "mtk-3301.log", "nl2008u.log", "triton400.log", "ublox-f9p-hpnmea.log"}
    assert (LOGS[0].parent / "COPYING.gpsd").is_file()


_log = receiver_log


def test_triton_truncated_line_is_rejected_and_the_glued_sentence_kept():
    reader = NmeaReader(comments=True)
    seen = []
    reader.on_sentence = seen.append
    reader.feed(_log("triton400.log").read_bytes())
    assert reader.stats.rejected["truncated"] == 1
    assert "$GPGLL,2638.1728,N,08011.3893,W,030131.000,A,A*41" in seen


def test_mtk_placeholder_positions_are_never_a_fix():
    reader = NmeaReader(comments=True)
    fixes = reader.feed(_log("mtk-3301.log").read_bytes()) + reader.flush()
    assert reader.stats.rejected["no checksum"] == 3          # $POLYN
    assert reader.stats.rejected["placeholder date"] > 0      # 1980 while searching
    assert reader.stats.rejected["absurd value"] > 0          # 8960.000000,N
    good = [f for f in fixes if f.has_position]
    assert good, "the receiver gets a fix at the end of the log"
    for fix in good:
        assert 52.0 < fix.lat < 52.5 and 6.8 < fix.lon < 7.0
        assert fix.time is None or fix.time.year == 2008   # no date until the first valid RMC
    assert good[-1].time.year == 2008


def test_humminbird_backwards_time_is_kept_as_received():
    reader = NmeaReader(comments=True)
    fixes = reader.feed(_log("humminbird-M37.log").read_bytes()) + reader.flush()
    times = [f.time for f in fixes if f.time]
    assert any(b < a for a, b in zip(times, times[1:], strict=False)), "the log's time jumps back"


def test_crlf_lf_mix_and_chunking_give_the_same_fixes():
    data = _log("bu353s4.log").read_bytes()
    whole = NmeaReader(comments=True)
    expected = [f.as_dict() for f in whole.feed(data) + whole.flush()]
    mixed = data.replace(b"\r\n", b"\n").replace(b"$GPRMC", b"\r\n$GPRMC")
    chunked = NmeaReader(comments=True)
    got = []
    for i in range(0, len(mixed), 7):
        got += chunked.feed(mixed[i:i + 7])
    got += chunked.flush()
    assert [f.as_dict() for f in got] == expected


def _cycle(hhmmss, lat="4657.0600", ns="N", lon="00417.9400", ew="E", date="270226", status="A"):
    q = "1" if status == "A" else "0"
    return [sentence(f"GPGGA,{hhmmss}.00,{lat},{ns},{lon},{ew},{q},08,0.9,300.0,M,48.0,M,,"),
            sentence(f"GPGSA,A,{3 if status == 'A' else 1},01,02,03,04,05,06,07,08,,,,,1.6,0.9,1.3"),
            sentence(f"GPRMC,{hhmmss}.00,{status},{lat},{ns},{lon},{ew},0.5,90.0,{date},,,A")]


def _feed(reader, lines):
    out = []
    for line in lines:
        out += reader.feed((line + "\r\n").encode())
    return out


def test_noise_checksum_and_absurd_values_are_counted_never_a_fix():
    reader = NmeaReader()
    lines = _cycle("120000") + _cycle("120001")
    good = _feed(reader, lines)
    assert good and good[-1].has_position
    bad_checksum = _cycle("120002")[0][:-2] + "00"
    lat95 = _cycle("120003", lat="9500.0000")
    noise = [b"\x00\xff\xfe\x81garbage\x07".decode("latin-1"), "$GPGGA,1200", "$$$$", "hello world"]
    reader.feed(b"\x00\x13\x88\xff\xfe binary noise \xc3\x28 $GPRMC,1\r\n")
    _feed(reader, [bad_checksum] + lat95 + noise)
    r = reader.stats.rejected
    assert r["checksum"] == 1
    assert r["absurd value"] >= 2
    assert r["noise"] >= 2
    assert r["truncated"] >= 1
    fixes = _feed(reader, _cycle("120004")) + reader.flush()
    for fix in fixes:
        assert fix.lat is None or fix.lat < 90


def test_a_500_km_jump_in_one_second_is_rejected_until_it_repeats():
    reader = NmeaReader()
    fixes = _feed(reader, _cycle("120000") + _cycle("120001"))
    assert fixes[-1].has_position
    far = _cycle("120002", lat="5130.0000")   # ~500 km north
    fixes = _feed(reader, far + _cycle("120003", lat="5130.0000"))
    assert reader.stats.rejected["jump"] >= 2
    assert all(not f.has_position or f.lat < 47 for f in fixes)
    # the receiver keeps saying so: believed after a few consistent cycles
    later = []
    for s in range(4, 9):
        later += _feed(reader, _cycle(f"12000{s}", lat="5130.0000"))
    assert later[-1].has_position and later[-1].lat > 51


def test_placeholder_date_while_searching_is_rejected():
    reader = NmeaReader()
    _feed(reader, _cycle("000001", date="060180", status="V"))
    assert reader.stats.rejected["placeholder date"] == 1
    assert not reader.current().has_position
    assert reader.current().time is None


def test_fix_time_and_fields():
    reader = NmeaReader()
    fixes = _feed(reader, _cycle("101112") + _cycle("101113"))
    assert fixes[0].time == datetime(2026, 2, 27, 10, 11, 12, tzinfo=UTC)
    fix = fixes[-1]
    assert fix.time == datetime(2026, 2, 27, 10, 11, 13, tzinfo=UTC)
    assert fix.mode == 3 and fix.sats == 8 and fix.hdop == 0.9
    assert fix.eph_m == pytest.approx(0.9 * 19.0)
    assert fix.alt == 300.0
    assert fix.speed_mps == pytest.approx(0.5 * 0.51444444)


def test_position_check_on_its_own():
    check = PositionCheck()
    assert check.check(95.0, 4.0, None) == "absurd value"
    assert check.check(46.95, 4.3, 0.0) is None
    assert check.check(46.9501, 4.3001, 1.0) is None
    assert check.check(51.5, 4.3, 2.0) == "jump"


def test_ignored_sentences_are_still_checked_and_counted():
    reader = NmeaReader()
    gsv = sentence("GPGSV,3,1,12,17,72,207,32,28,59,095,31,06,35,347,25,01,29,132,23")
    vendor = sentence("PMTK010,001")
    unknown = sentence("GPXYZ,1,2,3")
    bad = gsv[:-2] + ("00" if gsv[-2:] != "00" else "11")
    lowercase = sentence("gpgsv,1,1,00")
    reader.feed(("\r\n".join([gsv, vendor, unknown, bad, lowercase]) + "\r\n").encode())
    assert reader.stats.ignored == 2
    assert reader.stats.rejected == {"unknown": 1, "checksum": 1, "malformed": 1}
    # the same sentences one by one (no byte buffer: the other checksum path)
    one = NmeaReader()
    for text in [gsv, vendor, unknown, bad, lowercase]:
        one.feed_sentence(text)
    assert one.stats.as_dict() == reader.stats.as_dict()


def test_simulated_receiver_writes_valid_nmea():
    import asyncio

    import pynmea2

    from drivers.gps import SimulatedGps
    from recorder.clock import VirtualClockLoop

    loop = VirtualClockLoop()
    gps = SimulatedGps(wall_clock=lambda: 1_790_000_000.0 + loop.time())
    gps.start(loop, lambda fix: None)
    loop.run_until_complete(asyncio.sleep(2))
    for text in gps.nmea_cycle():
        msg = pynmea2.parse(text, check=True)
        assert msg.sentence_type in ("GGA", "GSA", "RMC")
    gps.lose_fix()
    assert [pynmea2.parse(t, check=True).sentence_type for t in gps.nmea_cycle()] == ["GGA", "GSA", "RMC"]
    gps.close()
    loop.close()


def test_a_jump_after_a_long_stop_is_still_a_jump():
    reader = NmeaReader()
    for minute in range(0, 60, 5):           # an hour parked at the same place
        _feed(reader, _cycle(f"12{minute:02d}00"))
    fixes = _feed(reader, _cycle("125901", lat="5130.0000"))   # 500 km in one second
    assert reader.stats.rejected["jump"] >= 1
    assert all(not f.has_position or f.lat < 47 for f in fixes + [reader.current()])


def test_random_bytes_and_mangled_sentences_never_crash():
    import random

    rng = random.Random(2947)
    valid = []
    for s in range(20):
        valid += _cycle(f"1300{s:02d}")
    alphabet = b"$*,.0123456789ABCDEFGNPRSTVWZ\r\n \x00\xff"
    for _trial in range(30):
        reader = NmeaReader()
        stream = bytearray()
        for text in valid:
            line = bytearray((text + "\r\n").encode())
            roll = rng.random()
            if roll < 0.2:          # flip a byte
                line[rng.randrange(len(line))] = rng.randrange(256)
            elif roll < 0.3:        # cut short
                line = line[:rng.randrange(1, len(line))]
            elif roll < 0.4:        # noise before it
                line = bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 40))) + line
            stream += line
        fixes = []
        pos = 0
        while pos < len(stream):
            step = rng.randrange(1, 300)
            fixes += reader.feed(bytes(stream[pos:pos + step]))
            pos += step
        fixes += reader.flush()
        s = reader.stats
        assert s.read == s.used + s.ignored + sum(s.rejected.values())
        for fix in fixes:
            assert fix.mode in (1, 2, 3)
            if fix.has_position:
                assert abs(fix.lat - 46.951) < 0.01 and abs(fix.lon - 4.299) < 0.01


def test_gbs_only_marks_the_cycle():
    reader = NmeaReader()
    _feed(reader, _cycle("120000"))
    _feed(reader, [sentence("GPGBS,120000.00,2.4,1.5,3.9,25,,-43.7,27.5")])
    _feed(reader, _cycle("120001"))
    assert reader.current().time.second == 1 and reader.stats.used == 6 + 1



GOOD_RMC = "GPRMC,{t}.00,A,4657.0600,N,00417.9400,E,0.5,90.0,270226,,,A"
GOOD_GGA = "GPGGA,{t}.00,4657.0600,N,00417.9400,E,1,08,0.9,300.0,M,48.0,M,,"


GOOD_GLL = "GPGLL,4657.0600,N,00417.9400,E,{t}.00,A,A"
GOOD_GNS = "GNGNS,{t}.00,4657.0600,N,00417.9400,E,AA,10,0.9,300.0,48.0,,,"


@pytest.mark.parametrize("cycle, bad", [
    # a receiver sending RMC then GGA, the GGA's latitude one no receiver can mean
    ([GOOD_RMC, GOOD_GGA], "GPGGA,{t}.00,9500.0000,N,00417.9400,E,1,08,0.9,300.0,M,48.0,M,,"),
    # ... the GGA 500 km from where the RMC of the same second put us
    ([GOOD_RMC, GOOD_GGA], "GPGGA,{t}.00,5130.0000,N,00417.9400,E,1,08,0.9,300.0,M,48.0,M,,"),
    # GGA and RMC good, then a GLL of the same second with a jump
    ([GOOD_GGA, GOOD_RMC, GOOD_GLL], "GPGLL,5130.0000,N,00417.9400,E,{t}.00,A,A"),
    # RMC good, then a GNS with an absurd position
    ([GOOD_RMC, GOOD_GNS], "GNGNS,{t}.00,4657.0600,N,18417.9400,E,AA,10,0.9,300.0,48.0,,,"),
])
def test_a_good_fix_survives_a_rejected_sentence_of_the_same_second(cycle, bad):
    reader = NmeaReader()
    for t in ("120000", "120001"):      # the receiver's rhythm, learnt from good seconds
        _feed(reader, [sentence(body.format(t=t)) for body in cycle])
    assert not reader.stats.rejected
    fixes = _feed(reader, [sentence(body.format(t="120002")) for body in cycle[:-1] + [bad]]
                  + [sentence(cycle[0].format(t="120003"))])
    assert sum(reader.stats.rejected.values()) == 1
    second = [f for f in fixes if f.time == datetime(2026, 2, 27, 12, 0, 2, tzinfo=UTC)]
    assert second, "the second with a rejected sentence is still reported"
    assert all(f.has_position for f in second), [f.as_dict() for f in second]
    assert (round(second[-1].lat, 4), round(second[-1].lon, 4)) == (46.951, 4.299)


def _gga_at(hhmmss):
    return sentence(f"GPGGA,{hhmmss}.00,4657.0600,N,00417.9400,E,1,08,0.9,300.0,M,48.0,M,,")


def test_a_time_of_day_going_backwards_never_advances_the_date():
    # each step back of an hour read as a midnight wrap made the date advance a day per
    # sentence: millions of them reached the year 10000 (and an exception)
    reader = NmeaReader()
    fixes = _feed(reader, [sentence("GPRMC,233000.00,A,4657.0600,N,00417.9400,E,0.5,90.0,270226,,,A")])
    for step in range(200):
        fixes += _feed(reader, [_gga_at(f"{23 - step % 24:02d}3000")])
    days = {f.time.date() for f in fixes if f.time is not None}
    assert days and max(days) <= datetime(2026, 2, 28).date(), sorted(days)[-3:]


def test_one_midnight_wrap_per_date_the_receiver_gives():
    reader = NmeaReader()
    fixes = _feed(reader, [sentence("GPRMC,233000.00,A,4657.0600,N,00417.9400,E,0.5,90.0,270226,,,A")])
    fixes += _feed(reader, [_gga_at("001000")])          # a real midnight: the next day
    assert reader.current().time == datetime(2026, 2, 28, 0, 10, tzinfo=UTC)
    for hhmmss in ["233000", "001000", "233000", "001000"]:   # the same midnight, again and again
        fixes += _feed(reader, [_gga_at(hhmmss)])
    assert reader.stats.rejected["time wrap"] >= 1
    assert all(f.time is None or f.time.date() <= datetime(2026, 2, 28).date() for f in fixes)
    assert reader.current().time is None            # the date is unknown until the receiver gives it
    _feed(reader, [sentence("GPRMC,001100.00,A,4657.0600,N,00417.9400,E,0.5,90.0,010326,,,A")])
    assert reader.current().time == datetime(2026, 3, 1, 0, 11, tzinfo=UTC)
    s = reader.stats
    assert s.read == s.used + s.ignored + sum(s.rejected.values())


def test_the_year_never_leaves_a_sane_range():
    reader = NmeaReader()
    _feed(reader, [sentence("GPZDA,235959.00,31,12,2200,00,00"), _gga_at("000001")])
    when = reader.current().time
    assert when is None or 2000 <= when.year <= 2200
    assert reader.stats.rejected["time wrap"] == 1


@pytest.mark.parametrize("garbage", [
    b"\x00" * 5000, bytes(range(256)) * 20, b"$" * 10_000, b"$GPGGA," + b"9" * 1_000_000,
    "$GPRMC,é,ü,中文*00\r\n".encode(), b"\xff\xfe$GPGGA\x00,1*00\r\n", b"\r\n" * 1000 + b"*" * 300,
    b"$GPGGA," + b"1" * 200 + b"*00\n", b"$GPZDA,120000.00,31,12,99999999999999999999,00,00*00\n",
])
def test_garbage_on_the_serial_line_never_raises(garbage):
    reader = NmeaReader()
    fixes = reader.feed(garbage) + reader.feed(garbage[:7]) + reader.flush()
    assert all(not f.has_position for f in fixes)
    s = reader.stats
    assert s.read == s.used + s.ignored + sum(s.rejected.values())
    assert reader.feed_sentence(garbage.decode("latin-1")[:300]) == []
