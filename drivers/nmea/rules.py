"""What each sentence type brings to the merged fix: gpsd's processRMC, processGGA...
(driver_nmea0183.c), talker-agnostic, with the same fix-mode rules; on top of gpsd,
positions no receiver can mean are refused (plausibility.py) and counted by reason.

Each rule takes the sentence's fields, its field count as gpsd counts it (the address
included) and its talker's second letter, and returns gpsd's mask of what it set and
the reason it refused part of the sentence, if it did. A sentence whose fix is refused
brings only its time to the cycle: the good fix another sentence of the same second gave
is kept, never downgraded by the refused one.
"""

from __future__ import annotations

from drivers.nmea.fix import Rejection
from drivers.nmea.merge import (
    ALT,
    DOP,
    HERR,
    LATLON,
    MODE,
    REPORT,
    SPEED,
    STATUS,
    STATUS_DGPS,
    STATUS_GPS,
    STATUS_UNK,
    TIME,
    TRACK,
    FixMerge,
    isnan,
)
from drivers.nmea.plausibility import PLACEHOLDER_YEAR
from drivers.nmea.sentences import atoi, coordinate, number, time_of_day

KNOTS_TO_MPS = 0.51444444

Verdict = tuple[int, Rejection | None]


class SentenceRules(FixMerge):
    """The per-sentence rules, and the GGA/GSA bookkeeping they share."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self._last_gga_talker = ""
        self._last_gga_ts = ""
        self._latch_mode = False
        self._last_gsa_talker = ""
        self._seen_gsa = False        # a non-GP GSA was seen (multi-GNSS receiver)
        self._gsa_used: tuple = (None, 0)

    def _lat_lon(self, lat: str, ns: str, lon: str, ew: str,
                 claimed: bool) -> tuple[float, float] | Rejection | None:
        """(lat, lon); None when the fields are empty or unreadable (gpsd: no position);
        the reason when the position is there but not believable."""
        if not (lat and ns and lon and ew):
            return None
        la, lo = coordinate(lat), coordinate(lon)
        if type(la) is not float or type(lo) is not float:
            return Rejection.ABSURD_VALUE if Rejection.ABSURD_VALUE in (la, lo) else None
        if ns == "S":
            la = -la
        if ew == "W":
            lo = -lo
        if not claimed:     # a position given without a fix only has to be on the globe
            return (la, lo) if (la <= 90.0 and -180.0 <= lo <= 180.0) else Rejection.ABSURD_VALUE
        problem = self._check.check(la, lo, self._day0 + self._tod if self._year else None)
        return (la, lo) if problem is None else problem

    def _rmc(self, f: list[str], count: int, talker: str) -> Verdict:
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
                reason = Rejection.PLACEHOLDER_DATE
            return mask | STATUS | MODE, reason
        if f[0] and count > 9 and f[8]:
            if self._merge_hhmmss(f[0], dated=True):
                reason = self._merge_ddmmyy(f[8])
                if reason is None:
                    mask |= TIME
                    self._register_frac(self._tod)
        pos = self._lat_lon(f[2], f[3], f[4], f[5], True) if reason is None else reason
        if type(pos) is Rejection:
            return mask, pos
        if type(pos) is tuple:
            self._n_lat, self._n_lon = pos
            mask |= LATLON
            if self._last_mode <= 2:
                self._n_mode = 2
                mask |= MODE
            elif self._last_mode == 3:
                self._n_mode = 3
                mask |= MODE
        else:
            self._n_mode = 1
            mask |= MODE
        if f[6]:
            self._n_speed = number(f[6]) * KNOTS_TO_MPS
            mask |= SPEED
        if f[7]:
            self._n_track = number(f[7])
            mask |= TRACK
        if self._sats_used > 3 or not isnan(self._alt):
            self._n_mode = 3
            mask |= MODE
        self._n_status = STATUS_DGPS if (status == "D" or f[11] in ("D", "P")) else STATUS_GPS
        return mask | STATUS, reason

    def _gga(self, f: list[str], count: int, talker: str) -> Verdict:
        # f[0] time, f[1..4] position, f[5] quality, f[6] sats, f[7] hdop, f[8] altitude
        if len(f) < 14:
            f = f + [""] * (14 - len(f))
        mask = 0
        reason = None
        last_talker = self._last_gga_talker
        self._last_gga_talker = talker
        quality = atoi(f[5]) if f[5] else -1
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
        sats = atoi(f[6])
        self._gga_sats = sats if f[6] else None
        mask |= self._merge_time_of_day(f[0])
        pos = self._lat_lon(f[1], f[2], f[3], f[4], quality > 0)
        if type(pos) is Rejection and quality > 0:
            return mask & TIME, pos
        if type(pos) is tuple:
            self._n_lat, self._n_lon = pos
            self._n_mode = 2
            mask |= LATLON
            if f[8]:
                self._n_alt = number(f[8])
                mask |= ALT
                if sats >= 4:
                    self._n_mode = 3
            if sats < 3:
                self._n_mode = 1
        else:
            reason = pos
            self._n_mode = 1
        mask |= MODE
        if f[7]:
            hdop = number(f[7])
            if hdop < 99.0:
                self._hdop = hdop
                mask |= DOP
        return mask, reason

    def _gsa(self, f: list[str], count: int, talker: str) -> Verdict:
        # f[0] A/M, f[1] mode, f[2..13] satellites, f[14] pdop, f[15] hdop, f[16] vdop
        mask = 0
        gsa_talker = talker
        last_last = self._last_gsa_talker
        if not self._latch_mode:
            self._n_mode = atoi(f[1])
            if f[1][:1] != "E":
                mask = MODE
            if count <= 19 and len(f) > 15 and f[15]:
                hdop = number(f[15])
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

    def _gll(self, f: list[str], count: int, talker: str) -> Verdict:
        # f[0..3] position, f[4] time, f[5] status, f[6] FAA mode
        if len(f) < 7:
            f = f + [""] * (7 - len(f))
        mask = self._merge_time_of_day(f[4])
        pos = None
        if f[5] == "A" and (count < 8 or f[6] != "N"):
            pos = self._lat_lon(f[0], f[1], f[2], f[3], True)
        if type(pos) is Rejection:
            return mask, pos
        if type(pos) is tuple:
            self._n_lat, self._n_lon = pos
            mask |= LATLON
            if not isnan(self._alt) or self._sats_used > 3:
                self._n_mode = 3
            elif self._mode < 2 or isnan(self._old_alt):
                self._n_mode = 2
            self._n_status = STATUS_DGPS if f[6] in ("D", "P") else STATUS_GPS
        else:
            self._n_status = STATUS_UNK
            self._n_mode = 1
        return mask | STATUS | MODE, None

    def _gns(self, f: list[str], count: int, talker: str) -> Verdict:
        # f[0] time, f[1..4] position, f[5] modes, f[6] sats, f[7] hdop, f[8] altitude,
        # f[12] navigation status
        if len(f) < 13:
            f = f + [""] * (13 - len(f))
        mask = self._merge_time_of_day(f[0])
        if not f[5] or f[5][0] == "N":
            self._n_mode = 1
            return mask | MODE, None
        if f[12][:1] in ("U", "V"):
            return mask, None
        sats = atoi(f[6])
        pos = self._lat_lon(f[1], f[2], f[3], f[4], True)
        if type(pos) is Rejection:
            return mask, pos
        if type(pos) is tuple:
            self._n_lat, self._n_lon = pos
            mask |= LATLON
            self._n_mode = 2
            if f[8]:
                alt = number(f[8])
                if not isnan(alt):
                    self._n_alt = alt
                    mask |= ALT
                    if sats > 3:
                        self._n_mode = 3
        else:
            self._n_mode = 1
            mask |= MODE
        if f[7]:
            self._hdop = number(f[7])
            mask |= DOP
        self._n_status = STATUS_DGPS if f[5][0] in ("D", "P") else STATUS_GPS
        return mask | MODE | STATUS, None

    def _vtg(self, f: list[str], count: int, talker: str) -> Verdict:
        if len(f) < 5 or not f[0] or not f[4]:     # gpsd reads a missing field as empty
            return 0, None
        if count > 9 and len(f) > 8 and f[8][:1] in ("E", "N"):
            return 0, None
        self._n_track = number(f[0])
        self._n_speed = number(f[4]) * KNOTS_TO_MPS
        return TRACK | SPEED, None

    def _gbs(self, f: list[str], count: int, talker: str) -> Verdict:
        # only its timestamp matters, for the cycle; gpsd does not merge it
        hms = time_of_day(f[0])
        if hms is not None:
            self._register_frac(hms[1])
        return 0, None

    def _zda(self, f: list[str], count: int, talker: str) -> Verdict:
        if len(f) < 4 or not (f[0] and f[1] and f[2] and f[3]):
            return 0, None
        if not self._merge_hhmmss(f[0], dated=True):
            return 0, None
        year, mon, mday = atoi(f[3]), atoi(f[2]), atoi(f[1])
        if not (1900 <= year <= 2200 and 1 <= mon <= 12 and 1 <= mday <= 31):
            return 0, Rejection.MALFORMED
        if year < PLACEHOLDER_YEAR:
            return 0, Rejection.PLACEHOLDER_DATE
        self._century = year - year % 100
        self._set_date(year, mon, mday)
        return TIME, None

    def _psrfepe(self, f: list[str]) -> int:
        # f[0] 'EPE', f[1] time, f[2] status, f[3] hdop, f[4] EHPE metres
        mask = STATUS | self._merge_time_of_day(f[1])
        if len(f) > 4 and f[2] == "A":
            if f[3]:
                self._hdop = number(f[3])
                mask |= DOP
            if f[4]:
                self._n_eph = number(f[4])
                mask |= HERR
        return mask

