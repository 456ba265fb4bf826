"""`pieton assign`: assign a camera to an agent for a shift, over its serial link.

The assignment is signed by the technician, bound to the camera id, carries a counter
above the camera's last one (asked over the link, or --counter) and ends at --until.
"""

from __future__ import annotations

import re
import sys
import time
from datetime import UTC, datetime, timedelta

from recorder.assignment import sign_assignment
from recorder.bundle import load_technician_key
from recorder.errors import AssignmentError, BundleError, LinkError
from tools.config_cmd import describe
from tools.link_client import CameraReplyError, FlashClient


def register(subparsers) -> None:
    assign = subparsers.add_parser("assign", help="assign a camera to an agent until the end of the shift")
    assign.add_argument("--agent", required=True, metavar="NUMBER", help="the agent number (never a name)")
    assign.add_argument("--device", required=True, metavar="ID", help="the camera id")
    assign.add_argument("--until", required=True, metavar="TIME",
                        help="end of the shift: HH:MM (next occurrence, local time), +8h / +90m, "
                             "or an ISO time such as 2026-11-27T22:00:00+01:00")
    assign.add_argument("--port", required=True, help="the camera's serial port")
    assign.add_argument("--baud", type=int, default=115200)
    assign.add_argument("--key", required=True, help="the technician key (pieton keys technician)")
    assign.add_argument("--counter", type=int, help="the anti-replay counter (default: the camera's last + 1)")
    assign.set_defaults(func=cmd_assign)


def parse_until(text: str, now: datetime | None = None) -> float:
    """An end-of-shift time as a UTC timestamp; ValueError names what is expected."""
    now = now or datetime.now().astimezone()
    if m := re.fullmatch(r"\+(\d+(?:\.\d+)?)([hm])", text):
        amount = float(m.group(1))
        return (now + (timedelta(hours=amount) if m.group(2) == "h" else timedelta(minutes=amount))).timestamp()
    if m := re.fullmatch(r"(\d{1,2}):(\d{2})", text):
        hour, minute = int(m.group(1)), int(m.group(2))
        if hour > 23 or minute > 59:
            raise ValueError(f"--until {text!r}: not a time of day")
        local = now.astimezone()
        at = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if at <= local:
            at += timedelta(days=1)
        return at.timestamp()
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--until {text!r}: expected HH:MM, +8h, +90m or an ISO date and time") from None
    if at.tzinfo is None:
        at = at.astimezone()  # a naive time is the workstation's local time
    return at.astimezone(UTC).timestamp()


def cmd_assign(args) -> int:
    try:
        until = parse_until(args.until)
        key = load_technician_key(args.key)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if until <= time.time():
        print(f"--until {args.until!r} is already past", file=sys.stderr)
        return 2
    try:
        with FlashClient(args.port, baud=args.baud) as client:
            info = client.info()
            if info.get("camera_id") != args.device:
                print(f"warning: the camera on {args.port} is {info.get('camera_id')!r}, not {args.device!r}",
                      file=sys.stderr)
            counter = args.counter if args.counter is not None else (info.get("assignment_counter") or 0) + 1
            data = sign_assignment(key, args.agent, args.device, counter, until)
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
