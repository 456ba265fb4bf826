"""The fix merged over one reporting cycle, as gpsd's NMEA driver keeps it.

gpsd (driver_nmea0183.c) accumulates a fix over a cycle of sentences and clears it when
the receiver's timestamp moves on; it reports when the sentence it learnt ends a cycle
arrives, and keeps the last fix's mode and altitude for the next one's mode rules. This
is that bookkeeping, and the receiver's date and time of day; what each sentence type
brings to it is in rules.py.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime

from drivers.nmea.fix import Fix, NmeaStats, Rejection
from drivers.nmea.plausibility import DAY_S, LAST_YEAR, PLACEHOLDER_YEAR, PositionCheck, midnight_wrap
from drivers.nmea.sentences import day_month_year, day_start, time_of_day

NAN = math.nan
isnan = math.isnan

# gpsd's mask bits, only those the merge needs
TIME, LATLON, MODE, STATUS, ALT, SPEED, TRACK, DOP, REPORT, CLEAR, HERR = (1 << i for i in range(11))
STATUS_UNK, STATUS_GPS, STATUS_DGPS = 0, 1, 2
_fromtimestamp = datetime.fromtimestamp
WRAPS_WITHOUT_DATE = 1      # midnights crossed on time of day alone before the date is doubted
_END_OF_TIME = day_start(LAST_YEAR + 1, 1, 1)


class FixMerge:
    """gpsd's merged fix, its cycle detector and the receiver's date."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, century: int = 2000):
        self.stats = NmeaStats()
        self._clock = clock
        self._century = century
        self._check = PositionCheck()
        self._out: list[Fix] = []
        # receiver date/time as gpsd keeps it (year 0: not known yet)
        self._year = self._mon = self._mday = 0
        self._day0 = 0.0        # epoch seconds of 00:00 UTC of that day
        self._hour = 0
        self._tod = 0.0         # seconds since midnight, fractions included
        self._wraps = 0         # midnights crossed since the receiver last gave its date
        self._time_refused: Rejection | None = None     # why this sentence's time was refused
        # cycle detection
        self._this_frac = 0.0
        self._last_frac = 0.0
        self._latch_frac = False
        self._lasttag = ""
        self._enders: dict[str, bool] = {}
        self._cycle_continue = False
        self._cycle_reported = True
        self._cycle_has_data = False
        # the merged fix (gpsd's gpsdata.fix), and lastfix/oldfix for its mode rules
        self._clear_fix()
        self._hdop = NAN
        self._sats_used = 0
        self._gga_sats: int | None = None
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

    # ---- the receiver's date and time of day ------------------------------------------

    def _merge_hhmmss(self, text: str, dated: bool = False) -> bool:
        """A time of day; ``dated``: its date follows in the same sentence. gpsd takes any
        hour going back as a midnight wrap and moves the date on: a stream of times going
        backwards moved it a day per sentence, into the year 10000. A wrap is believed
        only from the day's last hour to the next one's first, once per date the receiver
        gives; past that the date is forgotten (time unknown) and the sentence refused."""
        hms = time_of_day(text)
        if hms is None:
            return False
        old_hour, old_tod = self._hour, self._tod
        self._hour = hms[0]
        self._tod = hms[1]
        if hms[0] < old_hour and self._year and not dated and midnight_wrap(old_tod, hms[1]):
            if self._wraps < WRAPS_WITHOUT_DATE and self._day0 + DAY_S < _END_OF_TIME:
                self._wraps += 1
                self._mday += 1
                self._day0 += DAY_S
            else:
                self._set_date(0, 0, 0)
                self._time_refused = Rejection.TIME_WRAP
        return True

    def _merge_time_of_day(self, text: str) -> int:
        """A time-of-day field without a date: merged; TIME once the date is known."""
        if text and self._merge_hhmmss(text):
            self._register_frac(self._tod)
            if self._year:
                return TIME
        return 0

    def _merge_ddmmyy(self, text: str) -> Rejection | None:
        """None when merged, else why not."""
        dmy = day_month_year(text)
        if dmy is None:
            return Rejection.MALFORMED
        year = self._two_digit_year(dmy[2])
        if year < PLACEHOLDER_YEAR:
            return Rejection.PLACEHOLDER_DATE
        self._set_date(year, dmy[1], dmy[0])
        return None

    def _set_date(self, year: int, mon: int, mday: int) -> None:
        self._year, self._mon, self._mday = year, mon, mday
        self._wraps = 0
        self._day0 = day_start(year, mon, mday) if year else 0.0

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
                not isnan(self._last_alt) or not isnan(self._old_alt)):
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
        if mode >= 2 and not isnan(lat) and not isnan(lon):
            alt = self._alt if (mode == 3 and not isnan(self._alt)) else None
            speed = None if isnan(self._speed) else self._speed
            track = None if isnan(self._track) else self._track
        else:
            mode = 1
            lat = lon = alt = speed = track = None
        t = self._time
        when = _fromtimestamp(t, UTC) if t > 0 else None
        hdop = None if isnan(self._hdop) else self._hdop
        eph = None if isnan(self._eph) else self._eph
        if eph is None and hdop is not None and lat is not None:
            eph = hdop * (4.75 if self._status == STATUS_DGPS else 19.0)
            if not math.isfinite(eph):
                eph = None
        return Fix(when, lat, lon, alt, mode, self._sats_used or self._gga_sats, hdop, eph, speed, track,
                   self._clock())
