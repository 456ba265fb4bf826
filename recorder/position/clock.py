"""Where the device's time comes from, and how far it is from GPS time.

The daemon never sets the clock. On the device chrony disciplines it from gpsd
(systemd/chrony-pieton.conf); the daemon reads chrony's view (`chronyc -c tracking`) or,
without chrony, the kernel's synchronisation state (adjtimex, read-only), and measures
the offset between the system clock and the receiver's time from the fixes themselves.
Every recording carries the result; one made with an unsynchronised clock is flagged.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import statistics
import subprocess
from collections import deque
from dataclasses import asdict, dataclass

GPS_REFERENCES = ("GPS", "PPS", "NMEA", "GPSD", "SHM0", "SHM1", "SOCK")
SYNC_WITHIN_S = 1.0          # a simulated clock within this of GPS time counts as synchronised


@dataclass(frozen=True)
class ClockStatus:
    source: str                      # gps, ntp, rtc, unsynchronised
    offset_s: float | None           # system clock minus GPS time, measured from fixes
    synchronised: bool
    via: str = ""                    # chrony, kernel, simulation
    reference: str | None = None     # chrony's reference (GPS, an NTP server...)
    sync_offset_s: float | None = None   # the discipline's own offset estimate

    def as_dict(self) -> dict:
        return asdict(self)


def _has_rtc() -> bool:
    return os.path.exists("/dev/rtc0") or os.path.isdir("/sys/class/rtc/rtc0")


def parse_chronyc_tracking(text: str) -> ClockStatus:
    """`chronyc -c tracking` (CSV) -> ClockStatus."""
    fields = text.strip().splitlines()[0].split(",") if text.strip() else []
    if len(fields) < 14:
        raise ValueError(f"chronyc tracking: expected 14 CSV fields, got {len(fields)}: {text.strip()[:80]!r}")
    ref_id, ref_name, leap = fields[0], fields[1], fields[13]
    try:
        offset = float(fields[4])
    except ValueError:
        offset = None
    if leap == "Not synchronised" or ref_id.strip("0") == "":
        return ClockStatus("rtc" if _has_rtc() else "unsynchronised", None, False, "chrony", ref_name or None, offset)
    source = "gps" if ref_name.upper() in GPS_REFERENCES or ref_name.upper().startswith(("GPS", "PPS")) else "ntp"
    return ClockStatus(source, None, True, "chrony", ref_name, offset)


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h> (glibc, LP64); modes = 0 only reads it
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long), ("tick", ctypes.c_long),
                ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
                ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
                ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
                ("_padding", ctypes.c_int * 11)]


TIME_ERROR = 5
STA_UNSYNC = 0x0040
STA_NANO = 0x2000


def kernel_clock_status() -> ClockStatus:
    """The kernel's view (adjtimex): synchronised when an NTP discipline (chrony, ntpd,
    systemd-timesyncd) has set it; which reference, the kernel cannot say."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    tx = _Timex()
    state = libc.adjtimex(ctypes.byref(tx))
    if state < 0:
        raise OSError(ctypes.get_errno(), "adjtimex failed")
    synced = state != TIME_ERROR and not (tx.status & STA_UNSYNC)
    scale = 1e-9 if tx.status & STA_NANO else 1e-6
    if not synced:
        return ClockStatus("rtc" if _has_rtc() else "unsynchronised", None, False, "kernel")
    return ClockStatus("ntp", None, True, "kernel", None, tx.offset * scale)


def system_clock_status(chronyc: str | None = "chronyc", timeout_s: float = 2.0) -> ClockStatus:
    """chrony's view when chronyc is there and answers, else the kernel's."""
    exe = shutil.which(chronyc) if chronyc else None
    if exe:
        try:
            done = subprocess.run([exe, "-c", "tracking"], capture_output=True, text=True, timeout=timeout_s)
            if done.returncode == 0:
                return parse_chronyc_tracking(done.stdout)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            pass
    return kernel_clock_status()


class ClockWatch:
    """The clock source (from a probe of the system's discipline, refreshed now and
    then) combined with the offset to GPS time measured from recent fixes. With no
    probe (a simulation, whose wall clock is not the host's), the clock counts as
    disciplined by GPS when it agrees with the receiver's time."""

    def __init__(self, probe=system_clock_status, *, samples: int = 15):
        self.probe = probe
        self.system: ClockStatus | None = None
        self._offsets: deque[float] = deque(maxlen=samples)
        self.probe_error: str | None = None

    def refresh(self) -> ClockStatus | None:
        """Run the probe (blocking: call it from a worker thread)."""
        if self.probe is None:
            return None
        try:
            self.system = self.probe()
            self.probe_error = None
        except OSError as exc:
            self.probe_error = str(exc)
        return self.system

    def note_fix(self, gps_epoch: float, wall_epoch_at_receipt: float) -> None:
        """One measurement: the system's UTC when a fix arrived minus the receiver's
        UTC for it (includes the receiver's output delay, typically a few tenths)."""
        self._offsets.append(wall_epoch_at_receipt - gps_epoch)

    @property
    def gps_offset_s(self) -> float | None:
        return round(statistics.median(self._offsets), 3) if self._offsets else None

    def status(self) -> ClockStatus:
        offset = self.gps_offset_s
        if self.probe is None:
            synced = offset is not None and abs(offset) < SYNC_WITHIN_S
            return ClockStatus("gps" if synced else "unsynchronised", offset, synced, "simulation")
        system = self.system
        if system is None:
            return ClockStatus("unsynchronised", offset, False, "unknown", None, None)
        return ClockStatus(system.source, offset, system.synchronised, system.via, system.reference,
                           system.sync_offset_s)
