"""`pieton gps parse FILE [--json]`: a technician checks a receiver's NMEA capture.

The file goes through drivers/nmea, the very code the nmea-serial backend runs; every
fix the camera would have recorded is printed (one JSON object per fix with --json),
then the count of sentences read, used, ignored and rejected by reason.
"""

from __future__ import annotations

import json
import sys

from drivers.nmea import NmeaReader
from recorder.inputs import open_without_waiting

CHUNK = 64 * 1024


def register(subparsers) -> None:
    gps = subparsers.add_parser("gps", help="GPS tools: check an NMEA capture")
    actions = gps.add_subparsers(dest="gps_command", metavar="ACTION")
    parse = actions.add_parser("parse", help="print the fixes read from an NMEA log, then sentence counts")
    parse.add_argument("file", help="an NMEA 0183 capture ('-' for standard input)")
    parse.add_argument("--json", action="store_true", help="one JSON object per fix, then one for the counts")
    parse.set_defaults(func=cmd_parse)
    gps.set_defaults(func=lambda args: (gps.print_help(), 2)[1])


def _row(fix) -> str:
    when = fix.time.isoformat(timespec="milliseconds").replace("+00:00", "Z") if fix.time else "no time"
    if not fix.has_position:
        return f"{when:24s}  no fix"
    alt = f"{fix.alt:8.1f} m" if fix.alt is not None else "      - m"
    sats = fix.sats if fix.sats is not None else "-"
    hdop = f"{fix.hdop:.1f}" if fix.hdop is not None else "-"
    return f"{when:24s}  {fix.lat:12.7f} {fix.lon:13.7f} {alt}  {fix.mode}D  sats {sats:>2}  hdop {hdop}"


def cmd_parse(args) -> int:
    reader = NmeaReader(comments=True)
    try:
        source = sys.stdin.buffer if args.file == "-" else open_without_waiting(args.file)
    except OSError as exc:
        print(f"pieton gps parse: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    fixes = 0
    pending = None      # a receiver may report twice in one cycle (gpsd does too): print the last

    def emit(fix) -> None:
        nonlocal fixes
        fixes += 1
        if args.json:
            row = fix.as_dict()
            print(json.dumps({k: row[k] for k in ("time", "lat", "lon", "alt", "mode", "sats", "hdop")}))
        else:
            print(_row(fix))

    def show(batch) -> None:
        nonlocal pending
        for fix in batch:
            if pending is not None and not (fix.time is not None and fix.time == pending.time):
                emit(pending)
            pending = fix

    try:
        with source:
            while chunk := source.read(CHUNK):
                show(reader.feed(chunk))
    except OSError as exc:
        print(f"pieton gps parse: error reading {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    show(reader.flush())
    if pending is not None:
        emit(pending)
    stats = reader.stats
    if args.json:
        print(json.dumps({"sentences": stats.as_dict()}))
    else:
        rejected = ", ".join(f"{reason} {n}" for reason, n in sorted(stats.rejected.items())) or "none"
        print(f"{fixes} fixes; sentences read {stats.read}, used {stats.used}, ignored {stats.ignored}, "
              f"rejected {sum(stats.rejected.values())} ({rejected})")
    if stats.used == 0 and stats.ignored == 0:
        # Not a receiver's capture: a technician checking the wrong file must not read "OK".
        what = "is empty" if stats.read == 0 else f"holds no NMEA sentence ({stats.read} lines rejected)"
        print(f"pieton gps parse: {args.file} {what}", file=sys.stderr)
        return 2
    return 0
