"""The one rule for the times people type and read: local by default, French dates,
changes of clocks refused with the offset asked for, printed times with their zone."""

from datetime import UTC, datetime

import pytest

from recorder.localtime import TimeError, format_local, parse_time


def utc(*args) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


@pytest.mark.parametrize("text", ["27/11/2026 14:05", "27/11/2026 14h05", "2026-11-27T14:05",
                                  "2026-11-27 14:05:00", "2026-11-27T14:05+01:00", "2026-11-27T13:05Z"])
def test_winter_local_time_in_paris(text):
    assert parse_time(text) == utc(2026, 11, 27, 13, 5)


def test_summer_local_time_and_a_day_alone():
    assert parse_time("01/07/2026 12:00") == utc(2026, 7, 1, 10, 0)
    assert parse_time("27/11/2026") == utc(2026, 11, 26, 23, 0)


def test_overseas_zone():
    assert parse_time("27/11/2026 14:05", "America/Cayenne") == utc(2026, 11, 27, 17, 5)


def test_time_that_happens_twice_asks_for_the_offset():
    with pytest.raises(TimeError, match=r"happens twice.*\+02:00 \(the first\).*\+01:00 \(the second\)"):
        parse_time("25/10/2026 02:30", what="--start")
    assert parse_time("2026-10-25T02:30+02:00") == utc(2026, 10, 25, 0, 30)


def test_time_that_does_not_exist_asks_for_the_offset():
    with pytest.raises(TimeError, match="does not exist in Europe/Paris"):
        parse_time("29/03/2026 02:30")


@pytest.mark.parametrize("text", ["", "yesterday", "31/02/2026 10:00", "2026-13-01", "27/11/2026 25:00"])
def test_unreadable_times_say_how_to_write_them(text):
    with pytest.raises(TimeError, match="write 27/11/2026 14:05"):
        parse_time(text, what="--from")


def test_unknown_zone():
    with pytest.raises(TimeError, match="unknown time zone 'Mars/Olympus'"):
        parse_time("27/11/2026 14:05", "Mars/Olympus")


def test_printed_times_carry_their_zone_across_a_change_of_clocks():
    assert format_local(utc(2026, 11, 27, 17, 41, 11)) == "2026-11-27 18:41:11 CET"
    assert format_local(utc(2026, 3, 29, 0, 59, 59)) == "2026-03-29 01:59:59 CET"
    assert format_local(utc(2026, 3, 29, 1, 0, 0)) == "2026-03-29 03:00:00 CEST"


def test_a_folder_of_zones_is_not_a_zone():
    with pytest.raises(TimeError, match="unknown time zone 'Europe'"):
        parse_time("27/11/2026 14:05", "Europe")
