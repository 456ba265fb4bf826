"""`pieton assign`: assign a camera to an agent for a shift, or end the assignment
(``--end``, a camera handed over), over its serial link or into a file.

The assignment is signed by the technician, bound to the camera id, carries a counter
above the camera's last one (asked over the link, or --counter) and ends at --until.
With --out it is written to a file instead, to carry to the camera later or for a
scenario's ``do = "assign"``; with no link to ask, its counter is then the time in
milliseconds unless --counter says otherwise, so files written one after the other are
taken in that order. The file reaches the camera through the ``inbox/`` of its spool (the
dock) or of its SD card, named ``*.assignment``.

Signed with an assigner's key (``[keys] assigners``) or, on a camera whose configuration
lists none, a technician's key.
"""

from __future__ import annotations

import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recorder.arguments import bounded_int
from recorder.assignment import sign_assignment, sign_assignment_end
from recorder.bundle import load_technician_key
from recorder.errors import AssignmentError, BundleError, LinkError
from recorder.evidence.chain import write_atomic
from recorder.inputs import InputError, check_name_length
from recorder.localtime import DEFAULT_ZONE, format_local, parse_time, zone
from tools.config_cmd import describe
from tools.link_client import CameraReplyError, FlashClient
from tools.outputs import refuse_overwrite


def register(subparsers) -> None:
    assign = subparsers.add_parser("assign", help="assign a camera to an agent until the end of the shift, "
                                                  "or end its assignment (--end)")
    assign.add_argument("--agent", metavar="NUMBER", help="the agent number (never a name)")
    assign.add_argument("--device", required=True, metavar="ID", help="the camera id")
    assign.add_argument("--end", action="store_true",
                        help="end the camera's assignment now (a camera handed over): its next "
                             "recordings carry no agent number until it is assigned again")
    assign.add_argument("--until", metavar="TIME",
                        help="end of the shift: HH:MM (next occurrence), +8h / +90m, or a date and time "
                             "(27/11/2026 22:00, 2026-11-27T22:00); local time in --timezone unless an "
                             "offset is given")
    assign.add_argument("--timezone", default=DEFAULT_ZONE, metavar="ZONE",
                        help=f"the zone of times given without an offset (default {DEFAULT_ZONE}, the "
                             "camera's [device] timezone)")
    to = assign.add_mutually_exclusive_group(required=True)
    to.add_argument("--port", help="the camera's serial port (or simcable://NAME/host)")
    to.add_argument("--out", metavar="FILE", help="write the signed assignment to FILE instead of sending it")
    assign.add_argument("--baud", type=bounded_int(50, 4_000_000, " baud"), default=115200,
                        help="the serial link's speed (default 115200)")
    assign.add_argument("--key", required=True, help="the assigner's key, or a technician's where the camera "
                                                     "lists no [keys] assigners (pieton keys technician)")
    assign.add_argument("--counter", type=bounded_int(0, 2**63 - 1), help="the anti-replay counter (default: the camera's last + 1, "
                                                    "or with --out the time in milliseconds)")
    assign.set_defaults(func=cmd_assign)


def parse_until(text: str, zone_name: str | None = None, now: datetime | None = None) -> float:
    """An end-of-shift time as a UTC timestamp: +8h / +90m, HH:MM (its next occurrence), or a
    date and time read by the one rule for times (recorder.localtime: local in ``zone_name``
    unless an offset is given, French dates accepted, changes of clocks asked about)."""
    tz = zone(zone_name)
    now = (now or datetime.now(UTC)).astimezone(tz)
    if m := re.fullmatch(r"\+(\d+(?:\.\d+)?)([hm])", text):
        amount = float(m.group(1))
        return (now + (timedelta(hours=amount) if m.group(2) == "h" else timedelta(minutes=amount))).timestamp()
    if m := re.fullmatch(r"(\d{1,2})[:h](\d{2})", text):
        hour, minute = int(m.group(1)), int(m.group(2))
        if hour > 23 or minute > 59:
            raise ValueError(f"--until {text!r}: not a time of day")
        day = now.date() if (hour, minute) > (now.hour, now.minute) else now.date() + timedelta(days=1)
        return parse_time(f"{day.isoformat()}T{hour:02d}:{minute:02d}", tz.key, what="--until")
    return parse_time(text, tz.key, what="--until")


def _arguments_problem(args) -> str | None:
    if args.end:
        given = [name for name in ("agent", "until") if getattr(args, name) is not None]
        if given:
            return f"--end ends the assignment in force: --{given[0]} is not allowed with it"
        return None
    missing = [f"--{name}" for name in ("agent", "until") if getattr(args, name) is None]
    return f"{' and '.join(missing)} required (or --end to end the assignment)" if missing else None


def cmd_assign(args) -> int:
    if problem := _arguments_problem(args):
        print(problem, file=sys.stderr)
        return 2
    try:
        until = None if args.end else parse_until(args.until, args.timezone)
        key = load_technician_key(args.key)
    except (ValueError, OverflowError) as exc:  # OverflowError: +99999999999h
        print(f"--until {args.until!r}: too far ahead to be a time"
              if isinstance(exc, OverflowError) else str(exc), file=sys.stderr)
        return 2
    if until is not None and until <= time.time():
        print(f"--until {args.until!r} is already past", file=sys.stderr)
        return 2
    if args.out:
        return _to_file(args, key, until)
    try:
        with FlashClient(args.port, baud=args.baud) as client:
            info = client.info()
            if info.get("camera_id") != args.device:
                print(f"warning: the camera on {args.port} is {info.get('camera_id')!r}, not {args.device!r}",
                      file=sys.stderr)
            counter = args.counter if args.counter is not None else (info.get("assignment_counter") or 0) + 1
            data = _sign(args, key, counter, until)
            answer = client.send("assignment", data)
    except (AssignmentError, BundleError) as exc:
        print(f"cannot assign [{exc.code}]: {exc.reason}", file=sys.stderr)
        return 2
    except CameraReplyError as exc:
        print(f"assign failed, the camera does not follow the protocol: {exc}", file=sys.stderr)
        return 2
    except LinkError as exc:
        print(f"assign failed: {exc}", file=sys.stderr)
        return 1
    print(f"device answer: {describe(answer)}")
    return 0 if answer.ok else 1


def _to_file(args, key, until: float) -> int:
    """Sign the assignment and write it to ``--out``, for the camera to take later."""
    out = Path(args.out)
    counter = args.counter if args.counter is not None else time.time_ns() // 1_000_000
    try:
        check_name_length(out, f"--out {out}")
        data = _sign(args, key, counter, until)
        if out.is_dir():
            raise InputError(f"--out {out}: is a folder; name the file to write")
        if not out.parent.is_dir():
            raise InputError(f"--out {out}: folder {out.parent} does not exist")
        refuse_overwrite(out, "--out", "an assignment", lambda head: b'"kind":"pieton/assignment' in head)
        write_atomic(out, data, mode=0o600)  # it names the agent: not for every user of the desk
    except (AssignmentError, BundleError) as exc:
        print(f"cannot assign [{exc.code}]: {exc.reason}", file=sys.stderr)
        return 2
    except InputError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"--out {out}: cannot write ({exc.strerror or exc})", file=sys.stderr)
        return 2
    if until is None:
        print(f"signed end of assignment written to {out}: camera {args.device}, counter {counter}")
        return 0
    ends = format_local(until, args.timezone, seconds=False)
    print(f"signed assignment written to {out}: camera {args.device}, counter {counter}, until {ends}")
    return 0


def _sign(args, key, counter: int, until: float | None) -> bytes:
    if until is None:
        return sign_assignment_end(key, args.device, counter)
    return sign_assignment(key, args.agent, args.device, counter, until)
