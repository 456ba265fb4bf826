"""`pieton config check`: the technician's first check of a configuration."""

from __future__ import annotations

import sys

from recorder.config import load_config
from recorder.errors import ConfigError


def register(subparsers) -> None:
    config = subparsers.add_parser("config", help="check, sign and flash device configurations")
    actions = config.add_subparsers(dest="config_command", metavar="ACTION")
    check = actions.add_parser("check", help="check a configuration file; prints OK or every error")
    check.add_argument("file", help="a configuration TOML")
    check.set_defaults(func=cmd_check)


def cmd_check(args) -> int:
    try:
        load_config(args.file)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    print("OK")
    return 0
