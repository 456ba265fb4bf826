"""Bytes from a receiver -> lines that may be sentences, and the NMEA checksum.

A serial line carries any mix of CR/LF, binary noise, sentences cut short by a receiver
restart and lines that never end. The framer keeps what is not yet a whole line, counts
what is noise, and gives each line with its offset in the bytes, so that its checksum
is read from the running XOR of those bytes (one numpy pass per read, instead of a
Python loop per sentence).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from drivers.nmea.fix import NmeaStats, Rejection

NMEA_MAX_LINE = 256          # longer lines are noise (real proprietary ones reach ~200)


def running_xor(data: bytes) -> bytes:
    """The one checksum routine: byte i of the result is data[0] ^ ... ^ data[i], so the
    XOR of data[a + 1:b] (a sentence's body between its '$' at a and its '*' at b) is
    result[b - 1] ^ result[a]."""
    return np.bitwise_xor.accumulate(np.frombuffer(data, np.uint8)).tobytes()


def checksum_matches(acc: bytes, start: int, star: int, digits: str) -> bool:
    """The sentence whose '$' is byte ``start`` of ``acc``'s bytes, with its '*' ``star``
    further on, carries the checksum ``digits`` of its body."""
    try:
        return int(digits, 16) == acc[start + star - 1] ^ acc[start]
    except ValueError:
        return False


def nmea_checksum(body: str) -> str:
    """The two hex digits of an NMEA checksum over ``body`` (between '$' and '*')."""
    acc = running_xor(b"$" + body.encode("ascii"))
    return f"{acc[-1] ^ acc[0]:02X}"


def sentence(body: str) -> str:
    """A complete sentence with its checksum, e.g. sentence('GPGGA,...')."""
    return f"${body}*{nmea_checksum(body)}"


class Framer:
    """Splits bytes into lines; ``xor`` is the running XOR of the bytes the lines being
    given come from, and each line comes with its offset in them."""

    def __init__(self, stats: NmeaStats, *, comments: bool = False):
        self.stats = stats
        self.comments = comments
        self.xor = b""
        self._pending = b""

    def lines(self, data: bytes) -> Iterator[tuple[str, int]]:
        """The whole lines completed by ``data``; the unterminated tail waits."""
        buf = self._pending + data
        if b"\r" in buf:
            buf = buf.replace(b"\r", b"\n")
        cut = buf.rfind(b"\n")
        joined, tail = (b"", buf) if cut < 0 else (buf[:cut], buf[cut + 1:])
        if len(tail) > NMEA_MAX_LINE:      # no line end for too long: noise, keep a last '$'
            self.stats.read += 1
            self.stats.rejected[Rejection.NOISE] += 1
            cut = tail.rfind(b"$")
            tail = tail[cut:] if 0 <= cut and len(tail) - cut <= NMEA_MAX_LINE else b""
        self._pending = tail
        if joined:
            yield from self._split(joined)

    def rest(self) -> Iterator[tuple[str, int]]:
        """End of stream: the unterminated tail is a sentence cut short, if anything."""
        tail, self._pending = self._pending, b""
        if tail:
            yield from self._split(tail)

    def single(self, text: str) -> Iterator[tuple[str, int]]:
        """One line given as text (already framed), checked as a line from the receiver:
        what is not ASCII is noise, as it would be on the wire."""
        data = text.encode("utf-8", "surrogatepass").replace(b"\r", b"\n")
        if data:
            yield from self._split(data)

    def _split(self, joined: bytes) -> Iterator[tuple[str, int]]:
        self.xor = running_xor(joined)
        # invalid bytes become lone surrogates (one per byte), which fail isprintable()
        text = joined.decode("ascii", "surrogateescape")
        # checked once for all the lines: printable, no trailing blanks, no '$' inside a line
        fast = (text.replace("\n", "").isprintable() and " \n" not in text and text[-1] != " "
                and text.count("$") == text.count("\n$") + (text[0] == "$"))
        stats, frame = self.stats, self._frame
        base = 0
        for line in text.split("\n"):
            if line:
                if fast and line[0] == "$" and len(line) <= NMEA_MAX_LINE:
                    stats.read += 1      # the common case: one clean sentence on its line
                    yield line, base
                else:
                    framed = frame(line, base)
                    if framed is not None:
                        yield framed
            base += len(line) + 1

    def _frame(self, line: str, base: int) -> tuple[str, int] | None:
        """The sentence in a line that is not plainly one, with its offset; None if
        there is none (counted)."""
        stats = self.stats
        if line[0] != "$":
            if self.comments and line[0] == "#":   # a comment in a capture file
                return None
            if "$" not in line:
                if line.strip():
                    stats.read += 1
                    stats.rejected[Rejection.NOISE] += 1
                return None
            stats.read += 1             # what comes before the first '$' is noise
            stats.rejected[Rejection.NOISE] += 1
        # a '$' inside the line: the receiver restarted mid-sentence; each piece before
        # the last '$' was cut short (gpsd resynchronises on the new '$' the same way)
        last = line.rfind("$")
        cut_short = line.count("$", 0, last)
        if cut_short:
            stats.read += cut_short
            stats.rejected[Rejection.TRUNCATED] += cut_short
        line = line[last:]
        stats.read += 1
        if len(line) > NMEA_MAX_LINE:
            stats.rejected[Rejection.TOO_LONG] += 1
            return None
        line = line.rstrip()
        if not line.isprintable():
            stats.rejected[Rejection.NOISE] += 1
            return None
        return line, base + last
