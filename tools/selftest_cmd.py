"""`pieton selftest`: commission a camera before it goes on a uniform.

Run on the camera (or wherever its control socket is reachable) while it is armed and not
recording. The daemon checks each part in turn (recorder/selftest.py) and records nothing;
this command asks the technician for what only a person can judge: a press of the record
button, and whether the red and green lights and the vibration motor were seen and felt.
It prints one row per part and "ready" (exit 0) only when every part passed; otherwise
each failed part with what to check (exit 1).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from recorder.arguments import bounded_float
from recorder.control import DEFAULT_STATE_DIR, Connection, socket_path
from recorder.errors import ControlError

SHOW_S = 1.0          # lights shown before a --confirm-lights answer counts
CHECK_TIMEOUT_S = 20.0
QUESTIONS = {
    "red": "Is the RED light on (steady)?",
    "green": "Is the GREEN light blinking?",
    "haptic": "Is the vibration motor buzzing?",
}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "selftest", help="commissioning self-test of a camera (armed, not recording): ready or not",
        description="Check every part of the camera through its running daemon: camera frames and rate, "
                    "IR night mode, microphone level, speaker test tone heard back, GPS fix, record button, "
                    "lights and vibration motor (you confirm them), battery, storage write speed, clock. "
                    "Exit 0 only when the camera is ready.")
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                   help=f"the daemon's state dir (default {DEFAULT_STATE_DIR})")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--confirm-lights", choices=("yes", "no"), default=None,
                   help="answer the lights and motor questions without asking (you watched them)")
    p.add_argument("--button-timeout", type=float, default=30.0, metavar="S",
                   help="seconds to wait for the record button press (default 30, at most 60)")
    p.add_argument("--fix-wait", type=float, default=20.0, metavar="S",
                   help="seconds to wait for a GPS fix and a synchronised clock when there is none yet "
                        "(default 20, at most 60)")
    p.add_argument("--wait", type=bounded_float(0, 600, " seconds"), default=0.0, metavar="S",
                   help="wait up to S seconds for the daemon to be armed (just after boot)")
    p.set_defaults(func=cmd_selftest)


def cmd_selftest(args: argparse.Namespace) -> int:
    if not 0 < args.button_timeout <= 60:
        print(f"pieton selftest: --button-timeout {args.button_timeout:g}: must be from 0 to 60 seconds",
              file=sys.stderr)
        return 2
    if not 0 <= args.fix_wait <= 60:
        print(f"pieton selftest: --fix-wait {args.fix_wait:g}: must be from 0 to 60 seconds", file=sys.stderr)
        return 2
    if args.wait < 0:
        print(f"pieton selftest: --wait {args.wait:g}: must not be negative", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    try:
        with _connect(socket_path(args.state_dir), args.wait) as connection:
            report = run(connection, args)
    except ControlError as exc:
        print(f"pieton selftest: {exc}", file=sys.stderr)
        return 1
    report["wall_s"] = round(time.monotonic() - t0, 2)
    if args.json:
        print(json.dumps(report, sort_keys=True, ensure_ascii=False))
    else:
        print(format_report(report))
    return 0 if report.get("ready") else 1


def _connect(path: Path, wait_s: float) -> Connection:
    """A connection to the daemon, retried for ``wait_s`` (it may still be starting)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return Connection(path, timeout=5.0)    # the socket opens once the camera is armed
        except ControlError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(0.2)


def _say(text: str, args: argparse.Namespace) -> None:
    """Progress and questions: on the terminal, never in the JSON on stdout."""
    print(text, file=sys.stderr if args.json else sys.stdout, flush=True)


def run(connection: Connection, args: argparse.Namespace) -> dict[str, Any]:
    started = connection.request("selftest_begin", timeout=CHECK_TIMEOUT_S)
    parts = started["parts"]
    confirmed = set(started["confirmed"])
    _say(f"self-test of {started.get('camera_id', 'the camera')}: {len(parts)} parts", args)
    automatic = [p for p in parts if p not in confirmed and p != "button"]
    try:
        _say(f"  checking {', '.join(automatic)}...", args)
        for row in connection.request("selftest_check", parts=automatic, fix_wait_s=args.fix_wait,
                                      timeout=args.fix_wait + CHECK_TIMEOUT_S):
            _say(f"  {row['part']:<11}{'pass' if row['ok'] else 'FAIL'}", args)
        if "button" in parts:
            _say(f"  -> press the record button now (within {args.button_timeout:g} s)", args)
            row = connection.request("selftest_check", part="button", timeout_s=args.button_timeout,
                                     timeout=args.button_timeout + CHECK_TIMEOUT_S)
            _say(f"  {'button':<11}{'pass' if row['ok'] else 'FAIL'}", args)
        _lights(connection, [p for p in parts if p in confirmed], args)
        return connection.request("selftest_end", timeout=CHECK_TIMEOUT_S)
    except KeyboardInterrupt:
        raise ControlError("self-test interrupted: the camera left its test state") from None


def _lights(connection: Connection, parts: list[str], args: argparse.Namespace) -> None:
    if args.confirm_lights is not None:
        # Shown together for a moment, then the answer given on the command line.
        shown = [p for p in parts if connection.request("selftest_check", part=p, timeout=CHECK_TIMEOUT_S)["ok"]]
        if shown:
            _say(f"  -> look: {', '.join(shown)} shown for {SHOW_S:g} s", args)
            time.sleep(SHOW_S)
        for part in shown:
            connection.request("selftest_confirm", part=part, seen=args.confirm_lights == "yes",
                               timeout=CHECK_TIMEOUT_S)
        return
    for part in parts:
        if not connection.request("selftest_check", part=part, timeout=CHECK_TIMEOUT_S)["ok"]:
            continue
        seen = _ask(QUESTIONS[part], args)
        connection.request("selftest_confirm", part=part, seen=seen, timeout=CHECK_TIMEOUT_S)


def _ask(question: str, args: argparse.Namespace) -> bool:
    """y/n on the terminal; an end of input is a no (nobody confirmed it)."""
    while True:
        _say(f"  -> {question} [y/n] ", args)
        line = sys.stdin.readline()
        if not line:
            return False
        answer = line.strip().lower()
        if answer in ("y", "yes", "o", "oui"):
            return True
        if answer in ("n", "no", "non"):
            return False


def format_report(report: dict[str, Any]) -> str:
    """The table: one row per part, then the verdict and the time it took."""
    rows = report.get("rows", [])
    width = max((len(r["part"]) for r in rows), default=4) + 2
    lines = [f"{'part':<{width}}{'result':<8}measured"]
    for row in rows:
        lines.append(f"{row['part']:<{width}}{'pass' if row['ok'] else 'FAIL':<8}{row['measured']}")
        if not row["ok"] and row.get("check"):
            lines.append(f"{'':<{width}}{'':<8}check: {row['check']}")
    failed = report.get("failed", [])
    lines.append("verdict: READY" if report.get("ready") else
                 f"verdict: NOT READY: {len(failed)} part(s) failed: {', '.join(failed)}")
    lines.append(f"self-test took {report.get('wall_s', report.get('seconds', 0)):.1f} s")
    return "\n".join(lines)


