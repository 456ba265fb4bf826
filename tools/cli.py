"""The `pieton` command. Each subcommand lives in the module that owns it; that module
exposes ``register(subparsers)``, which adds its parser and sets ``func`` to a function
taking the parsed arguments and returning the exit code."""

from __future__ import annotations

import argparse
import importlib
import sys

import recorder
from recorder.arguments import refuse_argv
from recorder.errors import PietonError
from recorder.inputs import explain_os_error

# Modules that add subcommands, in the order `pieton --help` lists them.
COMMAND_MODULES = [
    "recorder.cli",        # run, simulate, ctl
    "tools.demo",          # demo
    "tools.config_cmd",    # config check / sign / flash
    "tools.notice_cmd",    # notice build
    "tools.keys",          # keys chief / technician, provision
    "tools.verify_cmd",    # verify
    "tools.gps_cmd",       # gps parse
    "tools.assign",        # assign
    "tools.selftest_cmd",  # selftest
    "tools.vault_cmd",     # vault ...
    "tools.desk.cli",      # desk VAULT
    "tools.bench",         # bench NAME
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pieton", description="Body-worn camera for municipal police: recorder, evidence and vault tools.")
    parser.add_argument("--version", action="version", version=f"pieton {recorder.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    _describe(parser)
    return parser


def _describe(parser: argparse.ArgumentParser) -> None:
    """Each command's --help opens with what it does: the line its parent's --help lists."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for listed in action._choices_actions:
                command = action.choices[listed.dest]
                command.description = command.description or listed.help
                _describe(command)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    refused = refuse_argv(argv)
    if refused:  # said before anything is opened or written
        parser.print_usage(sys.stderr)
        print(f"pieton: error: {refused}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except PietonError as exc:  # what a command let through: bad input, said plainly
        print(f"pieton {args.command}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file or folder the system refused: name it and say why
        print(f"pieton {args.command}: {explain_os_error(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
